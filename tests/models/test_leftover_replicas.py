"""From 48 schedulable nodes the planner groups interchangeable nodes, and a group's room is a
sum over its nodes; replicas do not split between nodes. What its packing cannot fit goes to the
workload's other eligible groups, never asked for as unplaceable while nodes with room idle."""

from tests.models.builders import node, node_class, snapshot, workload
from wattwise.models.planner import plan

C = node_class("amx", amx=True, cores=32)


def test_a_replica_that_does_not_fit_its_group_goes_to_another_group():
    nodes = [node(f"busy{i}", C, reserved_cpu_m=4000) for i in range(2)]    # other pods: on, 28 cores free each
    nodes += [node(f"idle{i:02d}", C, on=False) for i in range(46)]         # 48 nodes: grouped
    result, _ = plan(snapshot([C], nodes, [workload("a", fps=87, cpu=16), workload("b", fps=1, cpu=16)]))
    a, b = result.workloads["default/a"], result.workloads["default/b"]
    assert (a.unplaced_replicas, b.unplaced_replicas) == (0, 0) and (a.unmet_fps, b.unmet_fps) == (0.0, 0.0)
    assert b.replicas == 1 and set(b.by_node) <= {f"idle{i:02d}" for i in range(46)}
    assert set(b.by_node) <= set(result.active_nodes)
    per_node = {}
    for wp in (a, b):
        for name, count in wp.by_node.items():
            per_node[name] = per_node.get(name, 0) + count * 16
    assert all(cores <= (28 if name.startswith("busy") else 32) for name, cores in per_node.items())
