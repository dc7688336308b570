"""Wire-format unit checks that need no server."""

from __future__ import annotations

import json

import pytest

from wattwise.scheduler import wire


@pytest.mark.parametrize("backend", ["stdlib", "orjson"])
def test_both_json_backends_round_trip_a_priority_list(backend):
    before = wire.set_json_backend(backend)
    try:
        scores = {"node-a": 10, 'odd"name\\é': 0, "n-3": 7}
        assert json.loads(wire.encode(wire.host_priority_list(scores))) == [
            {"Host": "node-a", "Score": 10}, {"Host": 'odd"name\\é', "Score": 0}, {"Host": "n-3", "Score": 7}]
        with pytest.raises(wire.BadRequest, match="not valid JSON"):
            wire.decode(b"{")
    finally:
        wire.set_json_backend(before)


def test_keys_match_case_insensitively_exact_name_first():
    args = wire.parse_extender_args({"pod": {"metadata": {}}, "NODENAMES": ["a"], "nodes": None})
    assert args.node_names == ["a"] and args.names == ["a"]
    args = wire.parse_extender_args({"Pod": {"metadata": {"name": "x"}}, "pod": None, "NodeNames": ["b"]})
    assert args.pod["metadata"]["name"] == "x"


def test_full_node_reply_keeps_the_node_list_fields():
    node_list = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
                 "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}
    args = wire.parse_extender_args({"Pod": {}, "Nodes": node_list})
    out = wire.filter_result(args, ["b"], {}, {"a": "no"})
    assert out["Nodes"] == {**node_list, "items": [{"metadata": {"name": "b"}}]}
    assert out["NodeNames"] is None and out["FailedAndUnresolvableNodes"] == {"a": "no"}
