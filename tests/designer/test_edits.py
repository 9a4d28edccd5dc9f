"""The designer's graph edits: each returns a new graph, refuses what would make the draft wrong, and never
changes the graph it was given (undo keeps the old one)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from designer import edits
from designer.edits import PASTE_OFFSET, EditRefused

TRIGGERS = {"webhook", "manual", "schedule"}


def is_trigger(node: dict[str, Any]) -> bool:
    return node.get("component") in TRIGGERS


def node(
    node_id: str, component: str = "http", x: float = 0.0, y: float = 0.0, **extra: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "component": component,
        "function": "request",
        "name": "",
        "fields": {},
        "position": {"x": x, "y": y},
        **extra,
    }


def edge(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **extra}


def chain() -> dict[str, Any]:
    """webhook_1 -> http_1 -> log_1, and an unconnected jsonata_1; with a trigger setting beside them."""
    return {
        "nodes": [
            node("webhook_1", "webhook", 0, 0),
            node("http_1", "http", 280, 0, fields={"url": "https://example.org"}),
            node("log_1", "log", 560, 0),
            node("jsonata_1", "jsonata", 280, 200),
        ],
        "edges": [edge("webhook_1", "http_1"), edge("http_1", "log_1", condition="$.ok")],
        "trigger": {"kind": "webhook"},
    }


def ids(graph: dict[str, Any]) -> list[str]:
    return [n["id"] for n in graph["nodes"]]


def pairs(graph: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["source"], e["target"]) for e in graph["edges"]]


# -- new_node_id ----------------------------------------------------------------------------------------------


def test_new_node_id_starts_at_one():
    assert edits.new_node_id([], "http") == "http_1"


def test_new_node_id_takes_the_first_free_number():
    assert edits.new_node_id(["http_1", "http_2", "http_4"], "http") == "http_3"


def test_new_node_id_ignores_ids_of_other_components():
    assert edits.new_node_id(["log_1", "log_2"], "http") == "http_1"


def test_new_node_id_replaces_characters_a_node_id_may_not_hold():
    assert edits.new_node_id([], "@acme/sales.force v2") == "_acme_sales_force_v2_1"


def test_new_node_id_keeps_dashes_and_underscores():
    assert edits.new_node_id([], "my-comp_x") == "my-comp_x_1"


def test_new_node_id_of_an_empty_component_is_node():
    assert edits.new_node_id(["node_1"], "") == "node_2"


def test_new_node_id_cuts_a_long_component_name_to_fifty_characters():
    assert edits.new_node_id([], "a" * 80) == "a" * 50 + "_1"


def test_new_node_id_accepts_any_iterable_of_taken_ids():
    assert edits.new_node_id((i for i in ["sql_1"]), "sql") == "sql_2"


def test_new_node_id_matches_the_flow_schema_pattern():
    from runtime.flows.schema import Node

    node_id = edits.new_node_id([], "ünïcode component" + "x" * 60)
    assert Node(id=node_id, component="c", function="f").id == node_id


# -- add_node -------------------------------------------------------------------------------------------------


def test_add_node_appends_a_complete_node_and_returns_its_id():
    graph, node_id = edits.add_node(chain(), "http", "request", 10, 20.5, name="Fetch")
    assert node_id == "http_2"
    assert graph["nodes"][-1] == {
        "id": "http_2",
        "component": "http",
        "function": "request",
        "name": "Fetch",
        "fields": {},
        "position": {"x": 10.0, "y": 20.5},
    }


def test_add_node_stores_positions_as_floats():
    graph, _ = edits.add_node({"nodes": [], "edges": []}, "log", "log", 3, 4)
    assert type(graph["nodes"][0]["position"]["x"]) is float
    assert type(graph["nodes"][0]["position"]["y"]) is float


def test_add_node_keeps_edges_and_other_keys():
    before = chain()
    graph, _ = edits.add_node(before, "log", "log", 0, 0)
    assert graph["edges"] == before["edges"]
    assert graph["trigger"] == {"kind": "webhook"}
    assert ids(graph) == ["webhook_1", "http_1", "log_1", "jsonata_1", "log_2"]


def test_add_node_to_an_empty_dict_makes_nodes_and_edges():
    graph, node_id = edits.add_node({}, "manual", "start", 0, 0)
    assert node_id == "manual_1"
    assert ids(graph) == ["manual_1"]
    assert graph["edges"] == []


def test_add_node_twice_gives_two_unique_ids():
    graph, first = edits.add_node({"nodes": [], "edges": []}, "http", "request", 0, 0)
    graph, second = edits.add_node(graph, "http", "request", 0, 0)
    assert (first, second) == ("http_1", "http_2")


def test_add_node_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.add_node(before, "http", "request", 1, 2)
    assert before == kept


# -- move_nodes -----------------------------------------------------------------------------------------------


def test_move_nodes_sets_the_positions_named():
    graph = edits.move_nodes(chain(), [{"id": "http_1", "x": 1, "y": 2}, {"id": "log_1", "x": -5.5, "y": 7}])
    positions = {n["id"]: n["position"] for n in graph["nodes"]}
    assert positions == {
        "webhook_1": {"x": 0, "y": 0},
        "http_1": {"x": 1.0, "y": 2.0},
        "log_1": {"x": -5.5, "y": 7.0},
        "jsonata_1": {"x": 280, "y": 200},
    }


def test_move_nodes_ignores_unknown_ids():
    before = chain()
    graph = edits.move_nodes(before, [{"id": "gone_1", "x": 1, "y": 1}])
    assert graph["nodes"] == before["nodes"]


def test_move_nodes_keeps_the_rest_of_the_node():
    graph = edits.move_nodes(chain(), [{"id": "http_1", "x": 9, "y": 9}])
    moved = graph["nodes"][1]
    assert moved["fields"] == {"url": "https://example.org"}
    assert moved["component"] == "http"


def test_move_nodes_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.move_nodes(before, [{"id": "http_1", "x": 100, "y": 100}])
    assert before == kept


# -- connect --------------------------------------------------------------------------------------------------


def test_connect_appends_a_plain_edge():
    graph = edits.connect(chain(), "http_1", "jsonata_1", is_trigger)
    assert graph["edges"][-1] == {"source": "http_1", "target": "jsonata_1"}
    assert pairs(graph) == [("webhook_1", "http_1"), ("http_1", "log_1"), ("http_1", "jsonata_1")]


def test_connect_keeps_the_nodes_and_other_keys():
    before = chain()
    graph = edits.connect(before, "http_1", "jsonata_1", is_trigger)
    assert graph["nodes"] == before["nodes"]
    assert graph["trigger"] == {"kind": "webhook"}


def test_connect_allows_a_second_parent_of_a_step():
    graph = edits.connect(chain(), "jsonata_1", "log_1", is_trigger)
    assert ("jsonata_1", "log_1") in pairs(graph)


def test_connect_refuses_a_step_to_itself():
    with pytest.raises(EditRefused, match=r"^A step cannot be connected to itself\.$"):
        edits.connect(chain(), "http_1", "http_1", is_trigger)


def test_connect_refuses_an_edge_into_a_trigger_naming_it_by_id():
    with pytest.raises(EditRefused) as refused:
        edits.connect(chain(), "jsonata_1", "webhook_1", is_trigger)
    assert str(refused.value) == "'webhook_1' is a trigger: it starts the flow and takes no input."


def test_connect_refuses_an_edge_into_a_trigger_naming_it_by_name():
    graph = chain()
    graph["nodes"][0]["name"] = "Orders in"
    with pytest.raises(EditRefused) as refused:
        edits.connect(graph, "jsonata_1", "webhook_1", is_trigger)
    assert str(refused.value) == "'Orders in' is a trigger: it starts the flow and takes no input."


def test_connect_asks_is_trigger_about_the_target_node():
    asked = []

    def spy(target: dict[str, Any]) -> bool:
        asked.append(target["id"])
        return False

    edits.connect(chain(), "http_1", "jsonata_1", spy)
    assert asked == ["jsonata_1"]


def test_connect_refuses_a_duplicate_edge():
    with pytest.raises(EditRefused) as refused:
        edits.connect(chain(), "webhook_1", "http_1", is_trigger)
    assert str(refused.value) == "These two steps are already connected."


def test_connect_refuses_a_duplicate_of_an_edge_with_a_condition():
    with pytest.raises(EditRefused, match="already connected"):
        edits.connect(chain(), "http_1", "log_1", is_trigger)


def test_connect_refuses_a_direct_loop():
    with pytest.raises(EditRefused) as refused:
        edits.connect(chain(), "log_1", "http_1", is_trigger)
    assert str(refused.value) == "This connection would make a loop: a message would go round for ever."


def test_connect_refuses_a_long_loop():
    graph = edits.connect(chain(), "log_1", "jsonata_1", is_trigger)
    # http_1 -> log_1 -> jsonata_1, so jsonata_1 -> http_1 would close the circle
    with pytest.raises(EditRefused, match="would make a loop"):
        edits.connect(graph, "jsonata_1", "http_1", is_trigger)


def test_connect_allows_a_diamond_which_is_not_a_loop():
    graph = edits.connect(chain(), "webhook_1", "jsonata_1", is_trigger)
    graph = edits.connect(graph, "jsonata_1", "log_1", is_trigger)
    assert pairs(graph)[-2:] == [("webhook_1", "jsonata_1"), ("jsonata_1", "log_1")]


def test_connect_refuses_an_unknown_source():
    with pytest.raises(EditRefused) as refused:
        edits.connect(chain(), "ghost_1", "http_1", is_trigger)
    assert str(refused.value) == "Both ends of a connection must be steps of this flow."


def test_connect_refuses_an_unknown_target():
    with pytest.raises(EditRefused, match=r"^Both ends of a connection must be steps of this flow\.$"):
        edits.connect(chain(), "http_1", "ghost_1", is_trigger)


def test_connect_refuses_an_unknown_node_to_itself_as_unknown():
    with pytest.raises(EditRefused, match="Both ends"):
        edits.connect(chain(), "ghost_1", "ghost_1", is_trigger)


def test_edit_refused_is_a_value_error():
    assert issubclass(EditRefused, ValueError)


def test_connect_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.connect(before, "http_1", "jsonata_1", is_trigger)
    assert before == kept


def test_a_refused_connect_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    with pytest.raises(EditRefused):
        edits.connect(before, "log_1", "webhook_1", is_trigger)
    assert before == kept


# -- delete ---------------------------------------------------------------------------------------------------


def test_delete_removes_a_node_with_all_its_edges():
    graph = edits.delete(chain(), ["http_1"])
    assert ids(graph) == ["webhook_1", "log_1", "jsonata_1"]
    assert graph["edges"] == []


def test_delete_keeps_edges_not_touching_the_deleted_node():
    graph = edits.delete(chain(), ["jsonata_1"])
    assert pairs(graph) == [("webhook_1", "http_1"), ("http_1", "log_1")]


def test_delete_removes_several_nodes():
    graph = edits.delete(chain(), ["webhook_1", "log_1"])
    assert ids(graph) == ["http_1", "jsonata_1"]
    assert graph["edges"] == []


def test_delete_removes_an_edge_alone():
    graph = edits.delete(chain(), [], [{"source": "webhook_1", "target": "http_1"}])
    assert ids(graph) == ["webhook_1", "http_1", "log_1", "jsonata_1"]
    assert graph["edges"] == [{"source": "http_1", "target": "log_1", "condition": "$.ok"}]


def test_delete_matches_an_edge_by_its_ends_whatever_else_it_carries():
    graph = edits.delete(chain(), [], [{"source": "http_1", "target": "log_1", "id": "http_1->log_1"}])
    assert pairs(graph) == [("webhook_1", "http_1")]


def test_delete_of_an_edge_does_not_cut_the_reverse_direction():
    graph = edits.delete(chain(), [], [{"source": "http_1", "target": "webhook_1"}])
    assert pairs(graph) == [("webhook_1", "http_1"), ("http_1", "log_1")]


def test_delete_of_unknown_ids_changes_nothing():
    before = chain()
    graph = edits.delete(before, ["ghost_1"], [{"source": "a", "target": "b"}])
    assert graph == before


def test_delete_keeps_other_keys():
    assert edits.delete(chain(), ["http_1"])["trigger"] == {"kind": "webhook"}


def test_delete_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.delete(before, ["http_1"], [{"source": "webhook_1", "target": "http_1"}])
    assert before == kept


# -- copy_nodes -----------------------------------------------------------------------------------------------


def test_copy_nodes_keeps_only_the_edges_between_the_chosen_nodes():
    clipboard = edits.copy_nodes(chain(), ["http_1", "log_1", "jsonata_1"])
    assert ids(clipboard) == ["http_1", "log_1", "jsonata_1"]
    assert clipboard["edges"] == [{"source": "http_1", "target": "log_1", "condition": "$.ok"}]


def test_copy_nodes_of_one_node_has_no_edges():
    clipboard = edits.copy_nodes(chain(), ["http_1"])
    assert clipboard == {"nodes": [chain()["nodes"][1]], "edges": []}


def test_copy_nodes_holds_only_nodes_and_edges():
    assert set(edits.copy_nodes(chain(), ["http_1"])) == {"nodes", "edges"}


def test_copy_nodes_ignores_unknown_ids():
    assert edits.copy_nodes(chain(), ["ghost_1"]) == {"nodes": [], "edges": []}


def test_copy_nodes_is_a_deep_copy():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["http_1", "log_1"])
    clipboard["nodes"][0]["fields"]["url"] = "changed"
    clipboard["nodes"][0]["position"]["x"] = -1
    clipboard["edges"][0]["condition"] = "changed"
    assert graph == chain()


def test_copy_nodes_keeps_the_credential_reference():
    graph = chain()
    graph["nodes"][1]["credential_id"] = "cred-1"
    assert edits.copy_nodes(graph, ["http_1"])["nodes"][0]["credential_id"] == "cred-1"


# -- paste ----------------------------------------------------------------------------------------------------


def test_paste_gives_fresh_ids_and_returns_them():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["http_1", "log_1"])
    pasted, new_ids = edits.paste(graph, clipboard)
    assert new_ids == ["http_2", "log_2"]
    assert ids(pasted) == ["webhook_1", "http_1", "log_1", "jsonata_1", "http_2", "log_2"]


def test_paste_remaps_internal_edges_to_the_fresh_ids():
    graph = chain()
    pasted, _ = edits.paste(graph, edits.copy_nodes(graph, ["http_1", "log_1"]))
    assert pasted["edges"] == [*graph["edges"], {"source": "http_2", "target": "log_2", "condition": "$.ok"}]


def test_paste_without_a_place_offsets_the_copies():
    graph = chain()
    pasted, _ = edits.paste(graph, edits.copy_nodes(graph, ["http_1", "jsonata_1"]))
    assert PASTE_OFFSET == 40
    assert [n["position"] for n in pasted["nodes"][-2:]] == [
        {"x": 320.0, "y": 40.0},
        {"x": 320.0, "y": 240.0},
    ]


def test_paste_at_a_place_puts_the_top_left_corner_there():
    graph = chain()
    pasted, _ = edits.paste(graph, edits.copy_nodes(graph, ["http_1", "jsonata_1"]), 1000, 500)
    assert [n["position"] for n in pasted["nodes"][-2:]] == [
        {"x": 1000.0, "y": 500.0},
        {"x": 1000.0, "y": 700.0},
    ]


def test_paste_anchors_on_the_smallest_x_and_y_of_different_nodes():
    clipboard = {"nodes": [node("a", "http", 100, 50), node("b", "log", 20, 300)], "edges": []}
    pasted, _ = edits.paste({"nodes": [], "edges": []}, clipboard, 0, 0)
    assert [n["position"] for n in pasted["nodes"]] == [{"x": 80.0, "y": 0.0}, {"x": 0.0, "y": 250.0}]


def test_paste_keeps_the_relative_layout():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["webhook_1", "http_1", "log_1", "jsonata_1"])
    pasted, _ = edits.paste(graph, clipboard, -10, -10)
    assert [(n["position"]["x"], n["position"]["y"]) for n in pasted["nodes"][4:]] == [
        (-10.0, -10.0),
        (270.0, -10.0),
        (550.0, -10.0),
        (270.0, 190.0),
    ]


def test_paste_of_a_node_without_a_position_places_it_from_zero():
    clipboard = {"nodes": [{"id": "x", "component": "log", "function": "log"}], "edges": []}
    pasted, _ = edits.paste({"nodes": [], "edges": []}, clipboard)
    assert pasted["nodes"][0]["position"] == {"x": 40.0, "y": 40.0}


def test_paste_keeps_everything_but_id_and_position():
    graph = chain()
    graph["nodes"][1].update(name="Fetch", credential_id="cred-1", settings={"timeout_s": 5})
    pasted, _ = edits.paste(graph, edits.copy_nodes(graph, ["http_1"]))
    assert pasted["nodes"][-1] == {
        "id": "http_2",
        "component": "http",
        "function": "request",
        "name": "Fetch",
        "fields": {"url": "https://example.org"},
        "position": {"x": 320.0, "y": 40.0},
        "credential_id": "cred-1",
        "settings": {"timeout_s": 5},
    }


def test_paste_twice_gives_different_ids_each_time():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["http_1"])
    graph, first = edits.paste(graph, clipboard)
    graph, second = edits.paste(graph, clipboard)
    assert (first, second) == (["http_2"], ["http_3"])
    assert len(set(ids(graph))) == len(ids(graph))


def test_paste_of_two_nodes_of_one_component_numbers_them_apart():
    clipboard = {"nodes": [node("a", "http"), node("b", "http")], "edges": [edge("a", "b")]}
    pasted, new_ids = edits.paste({"nodes": [node("http_1")], "edges": []}, clipboard)
    assert new_ids == ["http_2", "http_3"]
    assert pasted["edges"] == [{"source": "http_2", "target": "http_3"}]


def test_paste_of_an_empty_clipboard_changes_nothing():
    graph = chain()
    pasted, new_ids = edits.paste(graph, {"nodes": [], "edges": []})
    assert new_ids == []
    assert pasted == chain()


def test_pasted_nodes_share_nothing_with_the_clipboard():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["http_1"])
    kept = copy.deepcopy(clipboard)
    pasted, _ = edits.paste(graph, clipboard)
    pasted["nodes"][-1]["fields"]["url"] = "changed"
    assert clipboard == kept


def test_paste_does_not_change_the_graph_or_the_clipboard():
    graph = chain()
    clipboard = edits.copy_nodes(graph, ["http_1", "log_1"])
    kept_graph, kept_clipboard = copy.deepcopy(graph), copy.deepcopy(clipboard)
    edits.paste(graph, clipboard, 5, 5)
    assert graph == kept_graph
    assert clipboard == kept_clipboard


# -- update_node ----------------------------------------------------------------------------------------------


def test_update_node_changes_only_the_named_node():
    graph = edits.update_node(chain(), "http_1", name="Fetch", fields={"url": "https://b.example"})
    assert graph["nodes"][1]["name"] == "Fetch"
    assert graph["nodes"][1]["fields"] == {"url": "https://b.example"}
    assert graph["nodes"][1]["position"] == {"x": 280, "y": 0}
    assert [graph["nodes"][i] for i in (0, 2, 3)] == [chain()["nodes"][i] for i in (0, 2, 3)]


def test_update_node_keeps_edges_and_other_keys():
    graph = edits.update_node(chain(), "http_1", name="Fetch")
    assert graph["edges"] == chain()["edges"]
    assert graph["trigger"] == {"kind": "webhook"}


def test_update_node_sets_a_credential():
    graph = edits.update_node(chain(), "http_1", credential_id="cred-1")
    assert graph["nodes"][1]["credential_id"] == "cred-1"


def test_update_node_with_no_credential_removes_the_key():
    graph = edits.update_node(chain(), "http_1", credential_id="cred-1")
    graph = edits.update_node(graph, "http_1", credential_id=None)
    assert "credential_id" not in graph["nodes"][1]


def test_update_node_keeps_other_keys_set_to_none():
    graph = edits.update_node(chain(), "http_1", settings=None)
    assert graph["nodes"][1]["settings"] is None


def test_update_node_refuses_a_missing_node():
    with pytest.raises(EditRefused) as refused:
        edits.update_node(chain(), "ghost_1", name="x")
    assert str(refused.value) == "There is no step 'ghost_1' in this flow any more."


def test_update_node_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.update_node(before, "http_1", name="Fetch", credential_id=None, fields={})
    assert before == kept


# -- set_condition --------------------------------------------------------------------------------------------


def test_set_condition_sets_a_trimmed_condition():
    graph = edits.set_condition(chain(), "webhook_1", "http_1", "  $.amount > 10 \n")
    assert graph["edges"][0] == {"source": "webhook_1", "target": "http_1", "condition": "$.amount > 10"}


def test_set_condition_replaces_a_condition():
    graph = edits.set_condition(chain(), "http_1", "log_1", "$.failed")
    assert graph["edges"][1] == {"source": "http_1", "target": "log_1", "condition": "$.failed"}


def test_set_condition_clears_on_an_empty_string():
    graph = edits.set_condition(chain(), "http_1", "log_1", "")
    assert graph["edges"][1] == {"source": "http_1", "target": "log_1"}


def test_set_condition_clears_on_blank_text():
    graph = edits.set_condition(chain(), "http_1", "log_1", " \t\n ")
    assert graph["edges"][1] == {"source": "http_1", "target": "log_1"}


def test_set_condition_keeps_the_order_of_edges():
    graph = edits.set_condition(chain(), "webhook_1", "http_1", "$.x")
    assert pairs(graph) == [("webhook_1", "http_1"), ("http_1", "log_1")]
    assert graph["edges"][1] == {"source": "http_1", "target": "log_1", "condition": "$.ok"}


def test_set_condition_keeps_nodes_and_other_keys():
    graph = edits.set_condition(chain(), "webhook_1", "http_1", "$.x")
    assert graph["nodes"] == chain()["nodes"]
    assert graph["trigger"] == {"kind": "webhook"}


def test_set_condition_refuses_a_missing_edge():
    with pytest.raises(EditRefused) as refused:
        edits.set_condition(chain(), "webhook_1", "log_1", "$.x")
    assert str(refused.value) == "This connection is not in the flow any more."


def test_set_condition_refuses_the_reverse_of_an_edge():
    with pytest.raises(EditRefused, match="not in the flow any more"):
        edits.set_condition(chain(), "http_1", "webhook_1", "$.x")


def test_set_condition_does_not_change_its_input():
    before = chain()
    kept = copy.deepcopy(before)
    edits.set_condition(before, "http_1", "log_1", "")
    edits.set_condition(before, "webhook_1", "http_1", "$.x")
    assert before == kept


# -- helpers --------------------------------------------------------------------------------------------------


def test_nodes_of_and_edges_of_treat_missing_or_none_as_empty():
    assert edits.nodes_of({}) == []
    assert edits.edges_of({"edges": None}) == []


def test_nodes_of_returns_a_new_list():
    graph = chain()
    edits.nodes_of(graph).append({"id": "x"})
    assert ids(graph) == ["webhook_1", "http_1", "log_1", "jsonata_1"]


def test_edits_return_a_new_graph_object():
    before = chain()
    assert edits.move_nodes(before, []) is not before
    assert edits.delete(before, []) is not before


def test_with_pins_pins_new_imported_components_keeps_old_pins_and_drops_unused_ones() -> None:
    graph = {"nodes": [{"id": "a", "component": "crm"}, {"id": "b", "component": "log"}], "edges": [],
             "pins": {"crm": "1.0.0", "gone": "3.0.0"}}  # fmt: skip
    before = copy.deepcopy(graph)
    pinned = edits.with_pins(graph, {"crm": "2.0.0", "erp": "5.0.0"})
    assert pinned["pins"] == {"crm": "1.0.0"}  # kept at the version it was added with; unused pins dropped
    assert graph == before
    added = edits.with_pins({**pinned, "nodes": [*pinned["nodes"], {"id": "c", "component": "erp"}]},
                            {"crm": "2.0.0", "erp": "5.0.0"})  # fmt: skip
    assert added["pins"] == {"crm": "1.0.0", "erp": "5.0.0"}
    bare = {"nodes": [{"id": "b", "component": "log"}], "edges": []}
    assert edits.with_pins(bare, {}) is bare  # nothing imported: no pins key at all
    assert "pins" not in edits.with_pins({**bare, "pins": {"crm": "1"}}, {})


def test_set_pin_upgrades_a_used_component_only() -> None:
    graph = {"nodes": [{"id": "a", "component": "crm"}], "edges": [], "pins": {"crm": "1.0.0"}}
    assert edits.set_pin(graph, "crm", "2.0.0")["pins"] == {"crm": "2.0.0"}
    assert graph["pins"] == {"crm": "1.0.0"}
    with pytest.raises(edits.EditRefused, match="No step of this flow uses 'erp' any more"):
        edits.set_pin(graph, "erp", "1.0.0")
