"""scalerMetadata validation: every key, every refusal names the key and what is accepted."""

from __future__ import annotations

import pytest

from wattwise.models.tee import TeeKind
from wattwise.models.trigger_metadata import ACCEPTED_KEYS, MetadataError, parse_metadata
from wattwise.scaler.metadata import MetadataCache


def parse(**md):
    return parse_metadata("so", "shop", {k: str(v) for k, v in md.items()})


def test_minimal_query_metadata():
    r = parse(workload="cams", query="sum(streams)")
    assert r.workload_key == "shop/cams"
    assert r.demand.query == "sum(streams)" and r.demand.unit == "streams" and r.demand.streams is None
    assert r.metric_name == "wattwise-shop-cams"
    assert (r.objective, r.tee, r.min_replicas, r.max_replicas, r.headroom) == (None, None, None, None, None)


def test_every_key_parses():
    r = parse(workload="other/cams", streams="12.5", fpsPerStream="25", objective="balanced", carbonWeight="0.7",
              tee="tdx, sev-snp+nvidia-cc", minReplicas="2", maxReplicas="9", headroom="0.2", model="detector-int8",
              cpu="500m", memory="2Gi", gpu="1", scalerAddress="wattwise:6000", enableTLS="true")
    assert r.workload_key == "other/cams"
    assert r.demand.streams == 12.5 and r.fps_per_stream == 25
    assert (r.objective, r.carbon_weight) == ("balanced", 0.7)
    assert r.tee.any_of == frozenset({frozenset({TeeKind.TDX}), frozenset({TeeKind.SEV_SNP, TeeKind.NVIDIA_CC})})
    assert (r.min_replicas, r.max_replicas, r.headroom) == (2, 9, 0.2)
    assert (r.model, r.cpu_m, r.memory_mib, r.gpu) == ("detector-int8", 500, 2048, 1)


def test_from_env_suffix_counts_as_the_key():
    r = parse(workload="cams", queryFromEnv="sum(x)")
    assert r.demand.query == "sum(x)"


@pytest.mark.parametrize("md, key, accepted", [
    ({"query": "x"}, "workload", "DNS label"),
    ({"workload": "Cams!", "query": "x"}, "workload", "DNS label"),
    ({"workload": "cams"}, "query", "exactly one of"),
    ({"workload": "cams", "query": "x", "streams": "3"}, "query", "exactly one of"),
    ({"workload": "cams", "streams": "-1"}, "streams", ">= 0"),
    ({"workload": "cams", "streams": "nan"}, "streams", ">= 0"),
    ({"workload": "cams", "streams": "many"}, "streams", ">= 0"),
    ({"workload": "cams", "query": "x", "queryUnit": "frames"}, "queryUnit", "streams or fps"),
    ({"workload": "cams", "streams": "1", "fpsPerStream": "0"}, "fpsPerStream", "> 0"),
    ({"workload": "cams", "streams": "1", "objective": "cheap"}, "objective", "energy, carbon or balanced"),
    ({"workload": "cams", "streams": "1", "carbonWeight": "0.5"}, "carbonWeight", "balanced"),
    ({"workload": "cams", "streams": "1", "tee": "tdx,trustzone"}, "tee", "tdx, sev-snp, sgx, nvidia-cc"),
    ({"workload": "cams", "streams": "1", "minReplicas": "1.5"}, "minReplicas", "integer"),
    ({"workload": "cams", "streams": "1", "maxReplicas": "0"}, "maxReplicas", "integer >= 1"),
    ({"workload": "cams", "streams": "1", "minReplicas": "5", "maxReplicas": "3"}, "maxReplicas", "at least"),
    ({"workload": "cams", "streams": "1", "headroom": "10%"}, "headroom", "fraction"),
    ({"workload": "cams", "streams": "1", "cpu": "four"}, "cpu", "CPU quantity"),
    ({"workload": "cams", "streams": "1", "memory": "8 gigs"}, "memory", "memory quantity"),
    # no CPU for a CPU replica: no class could run it, and the plan would ask for 0 whatever the demand
    ({"workload": "cams", "streams": "1", "cpu": "0"}, "cpu", "CPU one replica requests"),
    ({"workload": "cams", "streams": "1", "cpu": "0m", "gpu": "0"}, "cpu", "CPU one replica requests"),
    # found by tests/fuzz: float overflow escaped as OverflowError / ValueError (gRPC UNKNOWN)
    ({"workload": "cams", "streams": "1", "cpu": "1" + "0" * 400}, "cpu", "CPU quantity"),
    ({"workload": "cams", "streams": "1", "memory": "1" + "0" * 400 + "Ki"}, "memory", "memory quantity"),
    ({"workload": "cams", "streams": "1", "minReplica": "1"}, "minReplica", "accepted keys"),
])
def test_invalid_metadata_names_the_key_and_what_is_accepted(md, key, accepted):
    with pytest.raises(MetadataError) as e:
        parse_metadata("so", "shop", md)
    assert e.value.key == key
    assert str(e.value).startswith(f"scalerMetadata.{key}")
    assert accepted in str(e.value)


@pytest.mark.parametrize("key, named", [
    (" workload", "scalerMetadata[' workload']: unknown key"),       # found by tests/fuzz: read as `workload`
    ("streams ", "scalerMetadata['streams ']: unknown key"),
    ("", "scalerMetadata['']: unknown key"),                         # was `scalerMetadata.: unknown key`
    ("a\nb", "scalerMetadata['a\\nb']: unknown key"),              # one line, the newline shown
    ("x" * 81, "scalerMetadata['" + "x" * 80 + "'... (81 characters)]: unknown key"),
    ("x" * 80, "scalerMetadata." + "x" * 80 + ": unknown key"),
    ("gpu.count_2-b", "scalerMetadata.gpu.count_2-b: unknown key"),
])
def test_a_key_that_is_not_plain_is_quoted_so_the_message_shows_it(key, named):
    with pytest.raises(MetadataError) as e:
        parse_metadata("so", "shop", {"workload": "cams", "streams": "1", key: "1"})
    assert str(e.value).startswith(named), str(e.value)


def test_accepted_keys_are_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "scaler.md").read_text()
    for key in ACCEPTED_KEYS:
        assert f"`{key}`" in doc, key


def test_cache_returns_same_request_and_repeats_errors():
    cache = MetadataCache(max_bytes=4096)
    a = cache.parse("so", "ns", {"workload": "w", "streams": "1"})
    assert cache.parse("so", "ns", {"streams": "1", "workload": "w"}) is a
    for _ in range(2):
        with pytest.raises(MetadataError, match="scalerMetadata.streams"):
            cache.parse("so", "ns", {"workload": "w", "streams": "x"})
    assert len(cache) == 1                                        # a refused input is never kept
    for i in range(10):                                           # outgrows the byte budget: oldest dropped
        cache.parse(f"b{i}", "ns", {"workload": f"w{i}", "streams": "1"})
    assert cache.bytes <= cache.max_bytes and len(cache) < 11
    assert cache.parse("so", "ns", {"workload": "w", "streams": "1"}) == a     # still right
    cache.discard(a)
    assert ("so", "ns") not in {(k[0], k[1]) for k in cache._items}


def test_a_gpu_replica_may_ask_for_no_cpu():
    assert parse_metadata("so", "shop", {"workload": "cams", "streams": "1", "cpu": "0", "gpu": "1"}).cpu_m == 0
