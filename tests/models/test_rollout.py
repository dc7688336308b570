from wattwise.models.rollout import deletion_cost, desired_replicas


def test_no_surge_when_running_matches_the_plan():
    assert desired_replicas(4, {"a": 4}, {"a": 4}, {"a": 4}) == 4


def test_surge_covers_a_move_until_the_new_replicas_are_ready():
    # plan moves 3 replicas from a to b; b's are still booting
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 0}) == 6
    # two of b's are ready: nothing is removed yet (the controller would remove the starting one first)
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 2}) == 6
    # all ready: back to the plan, the old ones go
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 3}) == 3


def test_a_move_to_fewer_replicas_first_creates_the_planned_ones():
    """B:3 running, plan A:1. Answering 2 (the plan plus one old pod to cover it) let the HPA
    remove one B pod and stop there, B:2 and no A pod, for good."""
    assert desired_replicas(1, {"A": 1}, {"B": 3}, {"B": 3}) == 4            # make: A's pod is created
    assert desired_replicas(1, {"A": 1}, {"A": 1, "B": 3}, {"B": 3}) == 4    # hold while it starts
    assert desired_replicas(1, {"A": 1}, {"A": 1, "B": 3}, {"A": 1, "B": 3}) == 1   # break


def test_a_pod_landing_off_the_plan_is_not_asked_for_again_while_it_starts():
    # the plan wants A:1, A has no room: the new pod went to C and is starting
    assert desired_replicas(1, {"A": 1}, {"B": 3, "C": 1}, {"B": 3}) == 4
    # planned pods starting are not counted as off the plan
    assert desired_replicas(4, {"a": 2, "b": 2}, {"a": 4, "b": 1}, {"a": 4, "b": 0}) == 6


def test_closed_loop_reaches_the_plan_and_stops():
    """The HPA follows the answer; the ReplicaSet controller removes not-ready pods first, then
    those over the plan; a new pod lands on a planned node lacking pods and is ready a step later."""
    plan = {"A": 1}
    pods = [("B", True)] * 3                       # (node, ready)
    for _ in range(10):
        running = {n: sum(1 for m, _ in pods if m == n) for n in {m for m, _ in pods}}
        ready = {n: sum(1 for m, r in pods if m == n and r) for n in running}
        want = desired_replicas(1, plan, running, ready)
        pods = [(n, True) for n, _ in pods]        # what started last step is ready now
        while len(pods) < want:
            gap = next((n for n, c in plan.items() if running.get(n, 0) < c), "A")
            pods.append((gap, False))
            running[gap] = running.get(gap, 0) + 1
        while len(pods) > want:
            over = [i for i, (n, _) in enumerate(pods) if sum(1 for m, _ in pods if m == n) > plan.get(n, 0)]
            pods.pop(over[0])
    assert sorted(pods) == [("A", True)]


def test_surge_never_exceeds_what_runs_off_plan():
    assert desired_replicas(5, {"b": 5}, {"a": 1}, {"a": 1}) == 6


def test_pods_over_plan_are_deleted_first():
    planned, running = {"a": 1, "b": 3}, {"a": 4, "b": 3}
    assert deletion_cost("a", planned, running) < 0 < deletion_cost("b", planned, running)
    assert deletion_cost("c", planned, {"c": 2}) < 0


def test_the_surge_applies_only_where_the_scale_down_removes_the_off_plan_pods():
    from wattwise.models.rollout import surge_applies

    # pod-deletion costs set: the ReplicaSet controller removes the off-plan pods after the surge
    assert surge_applies(True, "Deployment") and surge_applies(True, None)      # unknown: KEDA's default kind
    # no costs: it removes by its own order (often the planned pods just started), and the surge repeats
    assert not surge_applies(False, "Deployment") and not surge_applies(False, None)
    # a StatefulSet removes its highest ordinal whatever the costs
    assert not surge_applies(True, "StatefulSet") and not surge_applies(False, "StatefulSet")
