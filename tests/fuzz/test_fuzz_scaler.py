"""Fuzz the KEDA scaler over a real gRPC channel: the demo's and the recorded ScaledObjects'
trigger metadata mutated (wrong, negative, NaN, infinite, huge and unicode numbers, empty values,
unknown, respelled and too many keys), names, namespaces and metricNames changed, metadata maps
generated from scratch, and raw bytes sent to each method path. Never INTERNAL or UNKNOWN, a
hang or a logged error; invalid metadata is INVALID_ARGUMENT naming the field it refuses, valid
metadata is never refused as such; the door still answers a valid request afterwards."""

from __future__ import annotations

import grpc
from hypothesis import example, given

from tests.fuzz.cases import GrpcCase, fuzz_settings, scaler_cases, scaler_seeds
from tests.fuzz.judges import expected_validity, judge_grpc

NAME, NAMESPACE, METADATA = next(s for s in scaler_seeds() if s[2]["workload"] == "checkout-cams")


def _case(method="GetMetricSpec", names=None, raw=None, **metadata) -> GrpcCase:
    md = {**METADATA, **metadata}
    return GrpcCase(method, NAME, NAMESPACE, {k: v for k, v in md.items() if v is not None},
                    f"wattwise-{NAMESPACE}-checkout-cams", raw, frozenset(names) if names else None, "example")


@given(case=scaler_cases())
@example(case=_case(names={"streams"}, query=None, streams="nan"))
@example(case=_case(names={"streams"}, query=None, streams="-inf"))
@example(case=_case(names={"streams"}, query=None, streams="1e400"))
@example(case=_case(names={"minReplicas"}, minReplicas="-1"))
@example(case=_case(names={"maxReplicas"}, maxReplicas="99999999999999999999"))
@example(case=_case(names={"fpsPerStream"}, fpsPerStream="\u0663"))
@example(case=_case(names={"workload"}, workload=""))
@example(case=_case(names={"minReplica"}, minReplica="1"))
@example(case=_case("GetMetrics", names={"headroom"}, headroom="inf"))
@example(case=_case("StreamIsActive", names={"tee"}, tee="tdx+"))
@example(case=_case("IsActive", raw=b"\x0a\x05\xff\xfe\xfd\xfc\xfb"))
@example(case=_case("StreamIsActive", raw=b"\x1a\x03\x0a\x01"))
@fuzz_settings()
def test_no_internal_and_every_refusal_names_the_problem(grpc_client, error_log, case):
    mark = len(error_log.records)
    valid, _ = expected_validity(case)
    code, details, reply = grpc_client.send(case, valid)
    verdict = judge_grpc(case, valid, code, details, reply)
    assert not verdict.problems, verdict.problems
    assert not error_log.since(mark), error_log.since(mark)


def test_the_door_still_answers_a_valid_request_afterwards(grpc_client, error_log):
    for method in ("GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive"):
        case = _case(method)
        code, details, reply = grpc_client.send(case, True)
        assert code == grpc.StatusCode.OK, (method, code, details)
        assert not judge_grpc(case, True, code, details, reply).problems
    assert not error_log.records
