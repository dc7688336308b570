"""Node grouping: nodes share a group only when every placement rule judges them alike."""

from dataclasses import replace

from wattwise.models.admission import PlacementRules, Requirement, SelectorOperator, Term
from wattwise.models.grouping import group_nodes
from wattwise.models.resources import Resources

from .builders import node, node_class

CPU = node_class("cpu")


def _groups(nodes, placements):
    return [[n.name for n in g.nodes] for g in group_nodes(nodes, {CPU.name: CPU}, exact_below=0, placements=placements)]


def test_alike_nodes_share_a_group():
    nodes = [node(f"n{i}", CPU) for i in range(4)]
    assert _groups(nodes, (PlacementRules(),)) == [["n0", "n1", "n2", "n3"]]


def test_a_rule_naming_nodes_splits_nodes_alike_in_labels_and_taints():
    nodes = [node(f"n{i}", CPU) for i in range(4)]
    by_name = PlacementRules(required_terms=(Term(fields=(Requirement("metadata.name", SelectorOperator.IN, ("n1", "n2")),)),))
    assert sorted(_groups(nodes, (PlacementRules(), by_name))) == [["n0", "n3"], ["n1", "n2"]]


def test_a_rule_on_labels_splits_by_label():
    nodes = [replace(node(f"n{i}", CPU), labels=(("pool", "a" if i % 2 else "b"),)) for i in range(4)]
    selector = PlacementRules(node_selector=(("pool", "a"),))
    assert sorted(_groups(nodes, (selector,))) == [["n0", "n2"], ["n1", "n3"]]


def test_powered_on_nodes_first_then_most_free_room():
    big = node_class("cpu", cores=40)
    nodes = [node("a", big, on=False), node("b", big, on=False),
             replace(node("c", big), per_node_reserved=Resources(1000, 0, 0)), node("d", big)]
    (group,) = group_nodes(nodes, {big.name: big}, exact_below=0)
    assert [n.name for n in group.nodes] == ["d", "c", "a", "b"] and group.on_count == 2
    assert group.free_per_node == Resources(39000, 40 * 4 * 1024, 0)
