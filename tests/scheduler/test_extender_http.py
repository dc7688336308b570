"""The extender over real HTTP on loopback, as kube-scheduler calls it, in both node modes and
with both key cases, on recorded Node and Pod JSON (NFD TDX/SNP/SGX/AMX, NVIDIA CC labels)."""

from __future__ import annotations

import copy
import json
import logging
import socket
import time

import pytest

from .helpers import args_names, args_nodes, get, node_names, passed_names, post, recorded_node_list, recorded_pods

PODS = recorded_pods()
NODE_LIST = recorded_node_list()
NAMES = node_names()
MODES = [("names", False), ("names", True), ("nodes", False), ("nodes", True)]


def request(pod: dict, mode: str, lower: bool, names=None) -> dict:
    if mode == "names":
        return args_names(pod, names or NAMES, lower)
    return args_nodes(pod, NODE_LIST, lower)


@pytest.mark.parametrize("mode,lower", MODES)
def test_tdx_pod_only_on_ready_tdx_nodes(extender, mode, lower):
    status, reply = post(extender.url + "/filter", request(PODS["managed_tdx"], mode, lower))
    assert status == 200
    assert reply["Error"] == ""
    assert passed_names(reply) == ["spr-tdx-1", "spr-tdx-2"]
    hard = reply["FailedAndUnresolvableNodes"]
    assert set(hard) == {"spr-tdx-pending", "icx-sgx-1", "milan-snp-1", "clx-plain-1", "h100-cc-1"}
    assert "not ready" in hard["spr-tdx-pending"]
    # one reason per kind of node, as kube-scheduler's FailedScheduling event counts them
    assert hard["milan-snp-1"] == hard["clx-plain-1"] == hard["icx-sgx-1"] == "node(s) lack TEE tdx"
    assert set(reply["FailedNodes"]) == {"spr-tdx-cordoned"}
    assert "not schedulable" in reply["FailedNodes"]["spr-tdx-cordoned"]


@pytest.mark.parametrize("mode,lower", MODES)
def test_reply_has_the_documented_keys_in_the_request_form(extender, mode, lower):
    _, reply = post(extender.url + "/filter", request(PODS["managed_tdx"], mode, lower))
    assert set(reply) == {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}
    if mode == "names":
        assert reply["Nodes"] is None
    else:
        assert reply["NodeNames"] is None
        assert reply["Nodes"]["kind"] == "NodeList"
        by_name = {n["metadata"]["name"]: n for n in NODE_LIST["items"]}
        for item in reply["Nodes"]["items"]:
            assert item == by_name[item["metadata"]["name"]]  # the whole Node object, unchanged


@pytest.mark.parametrize("mode,lower", MODES)
def test_unmanaged_pod_passes_straight_through(extender, mode, lower):
    pod = PODS["unmanaged_plain"]
    _, reply = post(extender.url + "/filter", request(pod, mode, lower, names=NAMES + ["not-in-cache"]))
    expected = NAMES + ["not-in-cache"] if mode == "names" else NAMES
    assert passed_names(reply) == expected
    assert reply["FailedNodes"] == {} and reply["FailedAndUnresolvableNodes"] == {}
    status, scores = post(extender.url + "/prioritize", request(pod, mode, lower))
    assert status == 200 and scores == []


@pytest.mark.parametrize("mode,lower", MODES)
def test_unmanaged_coco_pod_still_gets_the_tee_check(extender, mode, lower):
    _, reply = post(extender.url + "/filter", request(PODS["coco_unmanaged_snp"], mode, lower))
    assert passed_names(reply) == ["milan-snp-1", "h100-cc-1"]
    assert reply["FailedNodes"] == {}  # only the TEE check: no capacity or SLA verdicts
    assert all("TEE sev-snp" in r for r in reply["FailedAndUnresolvableNodes"].values())


@pytest.mark.parametrize("mode,lower", MODES[:1] + MODES[2:3])
def test_gpu_tee_pod_needs_the_confidential_gpu(extender, mode, lower):
    _, reply = post(extender.url + "/filter", request(PODS["managed_gpu_snp"], mode, lower))
    assert passed_names(reply) == ["h100-cc-1"]
    assert "nvidia-cc+sev-snp" in reply["FailedAndUnresolvableNodes"]["milan-snp-1"]


def test_tee_from_annotation_allows_either_tee(extender):
    _, reply = post(extender.url + "/filter", request(PODS["managed_tee_annotation"], "names", False))
    assert {"spr-tdx-1", "spr-tdx-2", "milan-snp-1"} <= set(passed_names(reply))
    assert "icx-sgx-1" in reply["FailedAndUnresolvableNodes"]


def test_unknown_node_name_fails_with_a_reason(extender):
    status, reply = post(extender.url + "/filter", args_names(PODS["managed_tdx"], ["spr-tdx-1", "ghost-7"]))
    assert status == 200
    assert passed_names(reply) == ["spr-tdx-1"]
    assert "not yet in the WattWise extender's node cache" in reply["FailedAndUnresolvableNodes"]["ghost-7"]
    _, scores = post(extender.url + "/prioritize", args_names(PODS["managed_tdx"], ["spr-tdx-1", "ghost-7"]))
    assert {s["Host"]: s["Score"] for s in scores}["ghost-7"] == 0


def test_unreadable_tee_annotation_fails_every_node_with_the_reason(extender):
    _, reply = post(extender.url + "/filter", args_names(PODS["managed_bad_tee"], NAMES))
    assert passed_names(reply) == []
    assert set(reply["FailedAndUnresolvableNodes"]) == set(NAMES)
    assert "trustzone" in reply["FailedAndUnresolvableNodes"]["spr-tdx-1"]


@pytest.mark.parametrize("mode,lower", MODES)
def test_prioritize_scores_every_candidate_0_to_10(extender, mode, lower):
    status, scores = post(extender.url + "/prioritize", request(PODS["managed_tdx"], mode, lower))
    assert status == 200
    assert [s["Host"] for s in scores] == NAMES
    assert all(set(s) == {"Host", "Score"} and 0 <= s["Score"] <= 10 for s in scores)
    by = {s["Host"]: s["Score"] for s in scores}
    assert by["clx-plain-1"] == 0 and by["milan-snp-1"] == 0  # not allowed at all
    assert max(by["spr-tdx-1"], by["spr-tdx-2"]) == 10


def test_preempt_keeps_only_nodes_whose_tee_the_pod_allows(extender):
    """A node the cache has not seen (its TEE never checked) is not offered for eviction either."""
    victims = {"spr-tdx-1": {"Pods": [{"UID": "a"}], "NumPDBViolations": 0},
               "milan-snp-1": {"Pods": [{"UID": "b"}], "NumPDBViolations": 1},
               "ghost-7": {"Pods": [{"UID": "c"}], "NumPDBViolations": 0}}
    status, reply = post(extender.url + "/preempt", {"Pod": PODS["managed_tdx"], "NodeNameToMetaVictims": victims})
    assert status == 200
    assert reply == {"NodeNameToMetaVictims": {"spr-tdx-1": victims["spr-tdx-1"]}}


def test_preempt_with_full_victims_answers_meta_victims(extender):
    victim = PODS["unmanaged_plain"]
    status, reply = post(extender.url + "/preempt", {
        "pod": PODS["managed_tdx"],
        "nodeNameToVictims": {"spr-tdx-2": {"pods": [victim], "numPDBViolations": 0}, "icx-sgx-1": {"pods": [victim]}}})
    assert status == 200
    assert reply == {"NodeNameToMetaVictims": {"spr-tdx-2": {"Pods": [{"UID": victim["metadata"]["uid"]}],
                                                             "NumPDBViolations": 0}}}


@pytest.mark.parametrize("raw,needle", [
    (b"{not json", "not valid JSON"),
    (b"", "empty request body"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"NodeNames": ["a"]}', "Pod: missing"),
    (b'{"Pod": {"metadata": {}}, "NodeNames": "a,b"}', "NodeNames: must be a list"),
    (b'{"Pod": {"metadata": {}}}', "neither NodeNames"),
    (b'{"Pod": {"metadata": {}}, "NodeNames": [], "Nodes": {"items": []}}', "not both"),
    (b'{"Pod": {"metadata": {}}, "Nodes": {"items": [{"metadata": {}}]}}', "Nodes.items[0].metadata.name"),
    (b'{"Pod": {"metadata": {"labels": {"a": 1}}}, "NodeNames": []}', "Pod.metadata.labels"),
    (b'{"Pod": "x", "NodeNames": []}', "must be a Pod object"),
])
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_malformed_requests_get_400_with_a_message(extender, verb, raw, needle):
    status, reply = post(f"{extender.url}/{verb}", raw=raw)
    assert status == 400
    assert needle in reply["Error"]


def test_malformed_preemption_args_get_400(extender):
    status, reply = post(extender.url + "/preempt", {"Pod": PODS["managed_tdx"], "NodeNameToMetaVictims": [1]})
    assert status == 400 and "NodeNameToMetaVictims" in reply["Error"]


def node_list_where(change) -> dict:
    """The recorded NodeList with `change(first node)` applied."""
    nodes = copy.deepcopy(NODE_LIST)
    change(nodes["items"][0])
    return nodes


def nested(levels: int):
    """A list nested `levels` deep."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("change,needle", [
    (lambda n: n.update(status=["Ready"]), "Nodes.items[0].status: must be an object"),
    (lambda n: n.update(spec="unschedulable"), "Nodes.items[0].spec: must be an object"),
    (lambda n: n["status"].update(conditions={"type": "Ready"}), "Nodes.items[0].status.conditions: must be a list"),
    (lambda n: n["status"].update(conditions=["Ready"]), "Nodes.items[0].status.conditions: must be a list"),
    # deeper than a reply can carry (the NodeList comes back in the filter's reply)
    (lambda n: n["status"].update(images=nested(260)), "Nodes.items[0].status.images[0]..."),
])
@pytest.mark.parametrize("verb", ["filter", "prioritize", "preempt"])
def test_a_node_list_of_the_wrong_shape_is_refused_naming_the_field(extender, verb, change, needle):
    status, reply = post(f"{extender.url}/{verb}", {"Pod": PODS["managed_tdx"], "Nodes": node_list_where(change),
                                                   "NodeNameToMetaVictims": None} if verb == "preempt" else
                         args_nodes(PODS["managed_tdx"], node_list_where(change)))
    if verb == "preempt":   # preempt reads no NodeList: only the depth applies to it
        assert (status == 400) == ("images" in needle)
        return
    assert status == 400, reply
    assert needle in reply["Error"]


@pytest.mark.parametrize("where", [("capacity", "nvidia.com/gpu"), ("allocatable", "tdx.intel.com/keys")])
@pytest.mark.parametrize("count", ["1e400", "Infinity", "-inf"])
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_a_node_with_an_infinite_device_count_is_unreadable_not_an_internal_error(extender, verb, where, count):
    """Found by tests/fuzz: `int(float("1e400"))` raised OverflowError in the node conversion: HTTP 500."""
    nodes = node_list_where(lambda n: n["status"][where[0]].update({where[1]: count}))
    status, reply = post(f"{extender.url}/{verb}", args_nodes(PODS["managed_tdx"], nodes))
    assert status == 200, reply
    if verb == "filter":
        assert "cannot read" in reply["FailedAndUnresolvableNodes"]["spr-tdx-1"], reply
        assert passed_names(reply) == ["spr-tdx-2"]


def test_anything_nested_deeper_than_a_reply_can_carry_is_refused(extender):
    pod = copy.deepcopy(PODS["managed_tdx"])
    pod["spec"]["affinity"] = {"x": nested(300)}
    for verb in ("filter", "prioritize"):
        status, reply = post(f"{extender.url}/{verb}", args_names(pod, NAMES))
        assert status == 400 and "Pod.spec.affinity.x[0][0]" in reply["Error"]
        assert "254 levels" in reply["Error"]
    pod["spec"]["affinity"] = {"x": nested(200)}
    assert post(f"{extender.url}/filter", args_names(pod, NAMES))[0] == 200


@pytest.mark.parametrize("victims,needle", [
    ({"spr-tdx-1": {"Pods": [{"metadata": ["uid", "a"]}]}}, "NodeNameToVictims.'spr-tdx-1'.Pods[0].metadata: must be an object"),
    ({"spr-tdx-1": {"Pods": [{"metadata": {"uid": {"a": 1}}}]}}, "Pods[0].metadata.uid: must be a string"),
    ({"spr-tdx-1": {"Pods": ["pod-a"]}}, "NodeNameToVictims.'spr-tdx-1'.Pods: must be a list of objects"),
    ({"spr-tdx-1": {"Pods": [], "NumPDBViolations": "1"}}, "NumPDBViolations: must be an integer"),
])
def test_malformed_victims_get_400_naming_the_field(extender, victims, needle):
    status, reply = post(extender.url + "/preempt", {"Pod": PODS["managed_tdx"], "NodeNameToVictims": victims})
    assert status == 400 and needle in reply["Error"], reply


def test_refusals_quote_only_a_short_prefix_of_a_bad_value(extender):
    long_name = "n" * 100_000
    status, reply = post(extender.url + "/preempt", {"Pod": PODS["managed_tdx"],
                                                     "NodeNameToVictims": {long_name: {"Pods": "x"}}})
    assert status == 400 and "NodeNameToVictims.'nnnn" in reply["Error"] and len(reply["Error"]) < 200
    pod = copy.deepcopy(PODS["managed_bad_tee"])
    pod["metadata"]["annotations"]["wattwise.io/tee"] = "trustzone" + "z" * 100_000
    _, reply = post(extender.url + "/filter", args_names(pod, NAMES))
    reasons = set(reply["FailedAndUnresolvableNodes"].values())
    assert len(reasons) == 1 and "trustzone" in next(iter(reasons)) and len(next(iter(reasons))) < 300


def test_a_client_that_disconnects_mid_body_is_no_internal_error(extender, caplog):
    caplog.set_level(logging.INFO, logger="wattwise.scheduler")
    with socket.create_connection(("127.0.0.1", extender.port)) as s:
        s.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n" + json.dumps(args_names(PODS["managed_tdx"], NAMES)).encode()[:500])
    deadline = time.monotonic() + 5
    while "disconnected" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "disconnected before sending the whole request body" in caplog.text
    assert "internal error" not in caplog.text
    _, metrics = get(extender.url + "/metrics")
    assert 'code="500"' not in metrics
    assert post(extender.url + "/filter", args_names(PODS["managed_tdx"], NAMES))[0] == 200
