"""Auto-layout: columns by the longest path from a start, rows ordered by the predecessors' barycentre."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from designer.layout import COLUMN, ROW, layered_positions


def nodes(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "component": "c", "function": "f"} for i in ids]


def edges(*pairs: str) -> list[dict[str, Any]]:
    """Each "a>b" is an edge from a to b."""
    return [{"source": p.split(">")[0], "target": p.split(">")[1]} for p in pairs]


def columns(positions: dict[str, dict[str, float]]) -> dict[str, int]:
    return {i: int(p["x"] // COLUMN) for i, p in positions.items()}


def crossings(positions: dict[str, dict[str, float]], links: list[dict[str, Any]]) -> int:
    """Edges between the same two columns that cross."""
    count = 0
    for first, second in itertools.combinations(links, 2):
        a, b = positions[first["source"]], positions[first["target"]]
        c, d = positions[second["source"]], positions[second["target"]]
        if a["x"] != c["x"] or b["x"] != d["x"]:
            continue
        if (a["y"] - c["y"]) * (b["y"] - d["y"]) < 0:
            count += 1
    return count


def test_the_grid_is_280_by_120():
    assert (COLUMN, ROW) == (280, 120)


def test_no_nodes_no_positions():
    assert layered_positions([], []) == {}


def test_a_single_node_sits_at_the_origin():
    assert layered_positions(nodes("a"), []) == {"a": {"x": 0.0, "y": 0.0}}


def test_positions_are_floats():
    where = layered_positions(nodes("a", "b"), edges("a>b"))
    assert all(type(v) is float for p in where.values() for v in p.values())


def test_a_chain_goes_left_to_right_in_one_row():
    where = layered_positions(nodes("a", "b", "c"), edges("a>b", "b>c"))
    assert where == {"a": {"x": 0.0, "y": 0.0}, "b": {"x": 280.0, "y": 0.0}, "c": {"x": 560.0, "y": 0.0}}


def test_a_chain_listed_backwards_still_goes_left_to_right():
    where = layered_positions(nodes("c", "b", "a"), edges("b>c", "a>b"))
    assert columns(where) == {"a": 0, "b": 1, "c": 2}


def test_successors_are_in_later_columns():
    links = edges("t>a", "t>b", "a>c", "b>c", "c>d", "t>d", "b>e")
    where = layered_positions(nodes("e", "d", "c", "b", "a", "t"), links)
    assert all(where[e["source"]]["x"] < where[e["target"]]["x"] for e in links)


def test_the_column_is_the_longest_path_from_a_start():
    # t -> d directly, and t -> a -> b -> d: d goes after b, not next to a
    where = layered_positions(nodes("t", "a", "b", "d"), edges("t>d", "t>a", "a>b", "b>d"))
    assert columns(where) == {"t": 0, "a": 1, "b": 2, "d": 3}


def test_a_fan_out_is_centred_on_the_row_of_its_source():
    where = layered_positions(nodes("t", "a", "b", "c"), edges("t>a", "t>b", "t>c"))
    assert where == {
        "t": {"x": 0.0, "y": 0.0},
        "a": {"x": 280.0, "y": -120.0},
        "b": {"x": 280.0, "y": 0.0},
        "c": {"x": 280.0, "y": 120.0},
    }


def test_two_in_a_column_sit_half_a_row_either_side_of_the_middle():
    where = layered_positions(nodes("t", "a", "b"), edges("t>a", "t>b"))
    assert (where["a"]["y"], where["b"]["y"]) == (-60.0, 60.0)


def test_unconnected_nodes_stack_in_the_first_column_in_their_order():
    where = layered_positions(nodes("a", "b", "c"), [])
    assert where == {"a": {"x": 0.0, "y": -120.0}, "b": {"x": 0.0, "y": 0.0}, "c": {"x": 0.0, "y": 120.0}}


def test_an_unconnected_node_goes_into_the_first_column_beside_the_start():
    where = layered_positions(nodes("t", "a", "lone"), edges("t>a"))
    assert where == {"t": {"x": 0.0, "y": -60.0}, "a": {"x": 280.0, "y": 0.0}, "lone": {"x": 0.0, "y": 60.0}}


def test_barycentre_orders_a_column_to_avoid_a_crossing():
    # listed order would draw a>d and b>c crossing; the barycentre puts d (below a) above c (below b)
    links = edges("a>d", "b>c")
    where = layered_positions(nodes("a", "b", "c", "d"), links)
    assert (where["d"]["y"], where["c"]["y"]) == (-60.0, 60.0)
    assert crossings(where, links) == 0


def test_barycentre_ordering_leaves_no_crossings_where_the_listed_order_had_three():
    links = edges("a>z", "b>y", "c>x")
    listed = {
        **{i: {"x": 0.0, "y": float(n)} for n, i in enumerate("abc")},
        **{i: {"x": 280.0, "y": float(n)} for n, i in enumerate("xyz")},
    }
    assert crossings(listed, links) == 3
    where = layered_positions(nodes("a", "b", "c", "x", "y", "z"), links)
    assert crossings(where, links) == 0
    assert [i for i in "xyz" if where[i]["y"] == -120.0] == ["z"]


def test_barycentre_uses_the_mean_of_all_predecessors():
    # rows in the first column: a -1, b 0, c +1; q's predecessors a and c average 0,
    # r has only a (-1) and so comes first, s has only c (+1) and comes last
    where = layered_positions(nodes("a", "b", "c", "s", "q", "r"), edges("c>s", "a>q", "c>q", "a>r"))
    order = sorted(["s", "q", "r"], key=lambda i: where[i]["y"])
    assert order == ["r", "q", "s"]


def test_equal_barycentres_keep_the_listed_order():
    where = layered_positions(nodes("t", "b", "a"), edges("t>a", "t>b"))
    assert (where["b"]["y"], where["a"]["y"]) == (-60.0, 60.0)


def test_edges_to_unknown_nodes_are_ignored():
    where = layered_positions(nodes("a", "b"), edges("a>b", "a>ghost", "ghost>b"))
    assert where == {"a": {"x": 0.0, "y": 0.0}, "b": {"x": 280.0, "y": 0.0}}


def test_every_node_gets_a_position_and_only_nodes_do():
    where = layered_positions(nodes("t", "a", "b", "lone"), edges("t>a", "a>b", "b>ghost"))
    assert list(where) == ["t", "a", "b", "lone"]


def test_a_duplicate_edge_does_not_push_a_node_further():
    where = layered_positions(nodes("a", "b"), edges("a>b", "a>b"))
    assert columns(where) == {"a": 0, "b": 1}


@pytest.mark.timeout(5)
def test_a_loop_does_not_hang_and_places_every_node():
    where = layered_positions(nodes("a", "b"), edges("a>b", "b>a"))
    assert set(where) == {"a", "b"}


@pytest.mark.timeout(5)
def test_a_self_loop_does_not_hang():
    where = layered_positions(nodes("t", "a"), edges("t>a", "a>a"))
    assert columns(where)["t"] == 0
    assert columns(where)["a"] > 0


@pytest.mark.timeout(5)
def test_a_loop_is_laid_out_as_if_its_closing_edge_were_not_there():
    where = layered_positions(nodes("t", "x", "y", "a", "b"), edges("t>x", "x>y", "t>a", "a>b", "b>a"))
    assert columns(where) == {"t": 0, "x": 1, "y": 2, "a": 1, "b": 2}


@pytest.mark.timeout(5)
def test_a_loop_listed_in_order_keeps_what_follows_it_to_the_right():
    links = edges("t>a", "a>b", "b>a", "b>c", "c>d")
    where = layered_positions(nodes("t", "a", "b", "c", "d"), links)
    assert columns(where) == {"t": 0, "a": 1, "b": 2, "c": 3, "d": 4}


@pytest.mark.timeout(5)
def test_steps_after_a_loop_stay_right_of_their_predecessors_whatever_the_listed_order():
    links = edges("t>a", "a>b", "b>a", "b>c", "c>d")
    where = layered_positions(nodes("t", "d", "c", "b", "a"), links)
    assert where["c"]["x"] < where["d"]["x"]
    assert where["b"]["x"] < where["c"]["x"]


def test_layout_does_not_change_its_input():
    given_nodes = nodes("a", "b", "c")
    given_edges = edges("a>c", "b>c")
    layered_positions(given_nodes, given_edges)
    assert given_nodes == nodes("a", "b", "c")
    assert given_edges == edges("a>c", "b>c")


def test_layout_is_deterministic():
    links = edges("t>a", "t>b", "a>c", "b>c", "t>c")
    first = layered_positions(nodes("t", "a", "b", "c"), links)
    assert all(layered_positions(nodes("t", "a", "b", "c"), links) == first for _ in range(5))
