"""The draft as React Flow draws it."""

from __future__ import annotations

import copy
from typing import Any

from designer.view import DEFAULT_POSITION, UNKNOWN, NodeLook, canvas_edges, canvas_nodes, edge_id

LOOKS = {
    ("http", "request"): NodeLook("HTTP request", "", "/icons/http.svg", False),
    ("router", "all"): NodeLook("Router", "Every matching branch", "/icons/router.svg", False),
    ("webhook", "receive"): NodeLook("Webhook", "", "/icons/webhook.svg", True),
}


def node(node_id: str, component: str, function: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "component": component,
        "function": function,
        "position": {"x": 1.0, "y": 2.0},
        **extra,
    }


def graph(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"nodes": list(nodes), "edges": edges or []}


def drawn(
    one: dict[str, Any], problems: dict[str, list[str]] | None = None, runs: Any = None
) -> dict[str, Any]:
    return canvas_nodes(graph(one), LOOKS, problems or {}, runs)[0]


# -- nodes ----------------------------------------------------------------------------------------------------


def test_an_unnamed_node_is_titled_by_its_component_with_its_id_below():
    assert drawn(node("http_1", "http", "request")) == {
        "id": "http_1",
        "type": "hub",
        "position": {"x": 1.0, "y": 2.0},
        "data": {
            "title": "HTTP request",
            "subtitle": "http_1",
            "icon": "/icons/http.svg",
            "trigger": False,
            "problems": [],
        },
    }


def test_a_named_node_is_titled_by_its_name():
    data = drawn(node("http_1", "http", "request", name="Fetch orders"))["data"]
    assert (data["title"], data["subtitle"]) == ("Fetch orders", "")


def test_an_unnamed_node_of_several_functions_has_the_function_below():
    data = drawn(node("router_1", "router", "all"))["data"]
    assert (data["title"], data["subtitle"]) == ("Router", "Every matching branch")


def test_a_named_node_of_several_functions_keeps_the_function_below():
    data = drawn(node("router_1", "router", "all", name="Branch"))["data"]
    assert (data["title"], data["subtitle"]) == ("Branch", "Every matching branch")


def test_an_empty_name_counts_as_no_name():
    data = drawn(node("http_1", "http", "request", name=""))["data"]
    assert (data["title"], data["subtitle"]) == ("HTTP request", "http_1")


def test_a_trigger_is_drawn_as_a_trigger():
    data = drawn(node("webhook_1", "webhook", "receive"))["data"]
    assert (data["trigger"], data["icon"]) == (True, "/icons/webhook.svg")


def test_an_unknown_component_is_drawn_as_unknown():
    data = drawn(node("gone_1", "gone", "run"))["data"]
    assert data == {
        "title": "Unknown component",
        "subtitle": "not in the catalog",
        "icon": "/components/component.svg",
        "trigger": False,
        "problems": [],
    }


def test_a_known_component_with_an_unknown_function_is_drawn_as_unknown():
    assert drawn(node("http_1", "http", "delete"))["data"]["title"] == UNKNOWN.title


def test_a_named_unknown_component_keeps_its_name():
    data = drawn(node("gone_1", "gone", "run", name="Legacy"))["data"]
    assert (data["title"], data["subtitle"]) == ("Legacy", "not in the catalog")


def test_a_node_without_component_or_function_is_drawn_as_unknown():
    data = canvas_nodes(graph({"id": "bare"}), LOOKS, {})[0]["data"]
    assert (data["title"], data["icon"]) == ("Unknown component", "/components/component.svg")


def test_a_nodes_problems_are_drawn_on_it():
    problems = {"http_1": ["url: required", "no credential"], "other_1": ["x"], "": ["flow-wide"]}
    data = drawn(node("http_1", "http", "request"), problems)["data"]
    assert data["problems"] == ["url: required", "no credential"]


def test_a_node_without_problems_has_an_empty_list():
    assert drawn(node("http_1", "http", "request"), {"other_1": ["x"]})["data"]["problems"] == []


def test_a_test_run_result_is_drawn_on_its_node():
    runs = {"http_1": {"status": "failed", "error": "HTTP 500"}}
    assert drawn(node("http_1", "http", "request"), runs=runs)["data"]["run"] == {
        "status": "failed",
        "error": "HTTP 500",
    }


def test_a_node_the_run_did_not_reach_has_no_run_data():
    assert "run" not in drawn(node("http_1", "http", "request"), runs={"other_1": {"status": "ok"}})["data"]


def test_without_runs_no_node_has_run_data():
    assert "run" not in drawn(node("http_1", "http", "request"), runs=None)["data"]
    assert "run" not in drawn(node("http_1", "http", "request"), runs={})["data"]


def test_a_node_without_a_position_is_drawn_at_the_origin():
    one = {"id": "http_1", "component": "http", "function": "request"}
    assert drawn(one)["position"] == {"x": 0.0, "y": 0.0}


def test_a_node_with_a_none_position_is_drawn_at_the_origin():
    assert drawn(node("http_1", "http", "request", position=None))["position"] == {"x": 0.0, "y": 0.0}


def test_the_default_position_is_copied_not_shared():
    first = drawn({"id": "a", "component": "http", "function": "request"})
    first["position"]["x"] = 99.0
    assert DEFAULT_POSITION == {"x": 0.0, "y": 0.0}


def test_the_drawn_position_is_a_copy_of_the_drafts():
    draft = graph(node("http_1", "http", "request"))
    canvas_nodes(draft, LOOKS, {})[0]["position"]["x"] = 99.0
    assert draft["nodes"][0]["position"] == {"x": 1.0, "y": 2.0}


def test_nodes_are_drawn_in_draft_order():
    draft = graph(node("b", "http", "request"), node("a", "webhook", "receive"), node("c", "gone", "x"))
    assert [n["id"] for n in canvas_nodes(draft, LOOKS, {})] == ["b", "a", "c"]


def test_an_empty_draft_draws_nothing():
    assert canvas_nodes({}, LOOKS, {}) == []
    assert canvas_nodes({"nodes": None}, LOOKS, {}) == []
    assert canvas_edges({}) == []
    assert canvas_edges({"edges": None}) == []


def test_drawing_does_not_change_the_draft():
    draft = graph(
        node("http_1", "http", "request", name="x"), edges=[{"source": "a", "target": "b", "condition": "$"}]
    )
    kept = copy.deepcopy(draft)
    canvas_nodes(draft, LOOKS, {"http_1": ["p"]}, {"http_1": {"status": "ok"}})
    canvas_edges(draft)
    assert draft == kept


# -- edges ----------------------------------------------------------------------------------------------------


def test_edge_id_joins_source_and_target_with_an_arrow():
    assert edge_id("http_1", "log_1") == "http_1->log_1"


def test_an_edge_without_a_condition_has_no_label():
    assert canvas_edges(graph(edges=[{"source": "a", "target": "b"}])) == [
        {"id": "a->b", "source": "a", "target": "b"}
    ]


def test_an_edge_with_a_condition_is_labelled_with_it():
    assert canvas_edges(graph(edges=[{"source": "a", "target": "b", "condition": "$.total > 100"}])) == [
        {"id": "a->b", "source": "a", "target": "b", "label": "$.total > 100"}
    ]


def test_an_empty_or_none_condition_draws_no_label():
    drawn_edges = canvas_edges(
        graph(
            edges=[
                {"source": "a", "target": "b", "condition": ""},
                {"source": "a", "target": "c", "condition": None},
            ]
        )
    )
    assert drawn_edges == [
        {"id": "a->b", "source": "a", "target": "b"},
        {"id": "a->c", "source": "a", "target": "c"},
    ]


def test_edges_are_drawn_in_draft_order_with_unique_ids():
    links = [{"source": "b", "target": "c"}, {"source": "a", "target": "c"}, {"source": "a", "target": "b"}]
    assert [e["id"] for e in canvas_edges(graph(edges=links))] == ["b->c", "a->c", "a->b"]


def test_the_unknown_look_is_not_a_trigger():
    assert (UNKNOWN.title, UNKNOWN.subtitle, UNKNOWN.icon, UNKNOWN.trigger) == (
        "Unknown component",
        "not in the catalog",
        "/components/component.svg",
        False,
    )
