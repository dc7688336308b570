from wattwise.models.rollout import deletion_cost, desired_replicas


def test_no_surge_when_running_matches_the_plan():
    assert desired_replicas(4, {"a": 4}, {"a": 4}, {"a": 4}) == 4


def test_surge_covers_a_move_until_the_new_replicas_are_ready():
    # plan moves 3 replicas from a to b; b's are still booting
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 0}) == 6
    # two of b's are ready: only one of a's is still needed
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 2}) == 4
    # all ready: back to the plan, the old ones go
    assert desired_replicas(3, {"b": 3}, {"a": 3, "b": 3}, {"a": 3, "b": 3}) == 3


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
