"""The recorded API objects are what a 1.30 API server accepts, in the shape it sends them."""

from __future__ import annotations

import pytest

from tests.kube_fake import RESOURCES, recorded_list


@pytest.mark.parametrize("name, api_version, kind, builtin", [(n, v, k, b) for n, _, v, k, b in RESOURCES])
def test_recorded_lists_have_the_api_servers_shape(name, api_version, kind, builtin):
    doc = recorded_list(name)
    assert (doc["apiVersion"], doc["kind"]) == (api_version, f"{kind}List") and doc["metadata"]["resourceVersion"]
    for obj in doc["items"]:
        meta = obj["metadata"]
        assert meta["name"] and meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
        if builtin:
            pytest.importorskip("kubernetes_validate")   # a test extra: pip install -e '.[test]'
            import kubernetes_validate as kv

            kv.validate({"apiVersion": api_version, "kind": kind, **obj}, "1.30.0", strict=True)
        else:   # custom resources keep apiVersion and kind in lists
            assert (obj["apiVersion"], obj["kind"]) == (api_version, kind)


def test_the_scaled_object_is_keda_s():
    so = recorded_list("scaledobjects")["items"][0]
    assert so["metadata"]["finalizers"] == ["finalizer.keda.sh"] and so["metadata"]["generation"] >= 1
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout-cams"}
    assert so["spec"]["triggers"] == [{"type": "external", "metadata": {
        "scalerAddress": "wattwise-scaler.wattwise-system.svc:6000", "workload": "checkout-cams", "streams": "48"}}]
    assert so["status"]["hpaName"] == "keda-hpa-checkout-cams"
    assert so["status"]["scaleTargetGVKR"] == {"group": "apps", "kind": "Deployment", "resource": "deployments",
                                               "version": "v1"}
    assert {c["type"] for c in so["status"]["conditions"]} == {"Ready", "Active", "Fallback", "Paused"}
