"""Fuzz the extender over real HTTP: recorded ExtenderArgs and preemption args mutated (wrong
types, missing and respelled keys, huge numbers, NaN, deep nesting, truncated and non-UTF-8
bodies, other content types, both Nodes and NodeNames forms, unknown pods, labels and nodes),
documents generated from scratch, and GET /plan. Never a 5xx, a dropped connection or a logged
error; every refusal (400 with the Error field) names what it refuses; the door still answers a
valid request afterwards on the same keep-alive connection."""

from __future__ import annotations

import json

from hypothesis import example, given

from tests.fuzz.cases import HttpCase, extender_cases, extender_seeds, fuzz_settings
from tests.fuzz.judges import judge_http
from tests.fuzz.mutate import dumps

SEED = extender_seeds()["filter"][0]   # a managed TDX pod, NodeNames form
POD = SEED["Pod"]
NODE_LIST = extender_seeds()["filter"][2]["Nodes"]


def _case(body: bytes, names=None, content_type="application/json", path="/filter") -> HttpCase:
    return HttpCase("POST", path, body, content_type, frozenset(names) if names is not None else None, "example")


@given(case=extender_cases())
@example(case=_case(b""))
@example(case=_case(b'{"Pod": {"metadata": {"name": "p"}}, "NodeNames": [NaN]}', {"NodeNames"}))
@example(case=_case(dumps({"Pod": POD, "NodeNames": ["a"] * 3, "Nodes": NODE_LIST}), {"Nodes", "NodeNames"}))
@example(case=_case(dumps({"Pod": POD, "NodeNames": [[[[[[]]]]]] * 2 + [{"a": [1] * 10}] * 2}), {"NodeNames"}))
@example(case=_case(b'{"Pod": ' + b"[" * 400 + b"]" * 400 + b', "NodeNames": []}', {"Pod"}))
@example(case=_case(dumps({"Pod": {"metadata": {"labels": {"a": {"b": [1] * 300}}}}, "NodeNames": []}),
                    {"labels"}))
@example(case=_case(dumps(SEED)[:-7], {"JSON"}))
@example(case=_case(dumps(SEED).replace(b"checkout", b"\xff\xfeout"), {"JSON"}))
@example(case=_case(dumps({"Pod": POD, "NodeNames": [10 ** 400]}), {"NodeNames"}))
@example(case=_case(dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": 1e308}}]}}), {"name"}))
@example(case=_case(dumps(SEED), content_type="text/plain"))
@example(case=_case(dumps({"Pod": {**POD, "metadata": {**POD["metadata"], "labels": {
    "wattwise.io/workload": "no/such-workload"}}}, "NodeNames": ["ghost-node"]})))
@example(case=_case(dumps({"Pod": POD, "NodeNameToVictims": {"spr-tdx-1": {"Pods": [{"metadata": []}]}}}),
                    {"metadata"}, path="/preempt"))
@fuzz_settings()
def test_no_5xx_and_every_refusal_names_the_problem(http_client, error_log, case):
    mark = len(error_log.records)
    status, body, transport = http_client.send(case)
    verdict = judge_http(case, status, body, transport)
    assert not verdict.problems, verdict.problems
    assert not error_log.since(mark), error_log.since(mark)


def test_the_door_still_answers_a_valid_request_afterwards(http_client, error_log):
    status, body, _ = http_client.send(_case(dumps(SEED)))
    assert status == 200
    reply = json.loads(body)
    assert reply["Error"] == "" and set(reply["NodeNames"]) == {"spr-tdx-1", "spr-tdx-2"}, reply
    assert http_client.reconnects == 0                  # one keep-alive connection throughout
    assert not error_log.records
