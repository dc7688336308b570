"""Filter reasons name a kind of node, never one node, and hold no comma: kube-scheduler's
FailedScheduling event counts nodes per distinct reason and joins the reasons with commas."""

from __future__ import annotations

from dataclasses import replace

from wattwise.models.eligibility import hard_reason, soft_reason, tee_reason
from wattwise.models.resources import Resources

from .builders import GPU_CC, SGX, SNP, TDX, node, node_class, snapshot, workload


def test_reasons_are_the_same_for_every_node_of_a_kind_and_have_no_comma():
    big, small = node_class("big", cores=64, tees=(TDX,)), node_class("small", cores=2, tees=(TDX,))
    w = workload(tees=[TDX], cpu=8)
    # different free room, same verdict: one reason
    busy = [node(f"n{i}", big, reserved_cpu_m=60_000 + 500 * i) for i in range(3)]
    capacity = {soft_reason(w, n) for n in busy}
    assert len(capacity) == 1 and "8000m CPU and 8192Mi memory" in next(iter(capacity))
    # different allocatable, too small for one replica either way: one reason
    tiny = [replace(node(f"t{i}", small), allocatable=Resources(1000 + 100 * i, 2048, 0)) for i in range(3)]
    model = snapshot([small], tiny, [w]).model(w, small)
    too_small = {hard_reason(w, n, small, model) for n in tiny}
    assert too_small == {"node(s) too small for one replica (8000m CPU and 8192Mi memory)"}
    # TEE missing: one reason whatever TEE the node has instead
    others = [node_class(f"c{i}", tees=t) for i, t in enumerate(((SGX,), (SNP,), ()))]
    missing = {tee_reason(w.confidentiality, node(c.name, c), c) for c in others}
    assert missing == {"node(s) lack TEE tdx"}
    not_ready = tee_reason(workload(tees=[TDX, GPU_CC]).confidentiality,
                           node("x", node_class("cc", tees=(TDX, GPU_CC)), ready=False),
                           node_class("cc", tees=(TDX, GPU_CC)))
    unschedulable = soft_reason(w, replace(node("u", big), schedulable=False))
    assert not_ready == "node(s) have TEE nvidia-cc and tdx not ready (driver/attestation/device plugin)"
    for reason in capacity | missing | too_small | {not_ready, unschedulable, Resources(1, 2, 3).describe()}:
        assert "," not in reason, reason
    assert Resources(1000, 512, 2).describe() == "1000m CPU and 512Mi memory and 2 GPUs"
