"""Two scaler replicas (KEDA round-robins across them) give the same answers for the same inputs."""

from __future__ import annotations

from tests.scaler.helpers import SettableDemand, keda_poll, ref, start_live, stub_for

T0 = 1_700_000_000.0


def test_two_replicas_answer_alike_even_when_refreshed_at_different_moments():
    queries = {f'sum(streams{{w="{i}"}})': float(v) for i, v in enumerate((48, 60, 0, 7, 130))}
    refs = [ref(f"so-{i}", "shop", workload=f"cams-{i}", query=q, objective=("carbon" if i % 2 else "energy"))
            for i, q in enumerate(queries)]
    replicas = []
    for offset_s in (1.0, 13.5):      # same 15 s plan interval, different wall-clock moments
        def clock(offset_s=offset_s):
            return T0 + offset_s
        replicas.append(start_live(SettableDemand(queries), clock=clock, start_refresher=False, interval_s=15.0))
    answers = []
    for scaler in replicas:
        channel, stub = stub_for(scaler.grpc_port)
        for r in reversed(refs) if scaler is replicas[1] else refs:    # registered in another order
            stub.GetMetricSpec(r, timeout=5)
        scaler.scaler.refresher.refresh_once()
        answers.append([tuple(x.SerializeToString(deterministic=True) for x in keda_poll(stub, r)) for r in refs])
        channel.close()
    for scaler in replicas:
        scaler.stop(1.0)
    assert answers[0] == answers[1]
