"""The palette: triggers first, then actions, then the tenant's own actions, each sorted by title."""

from __future__ import annotations

from typing import Any

from designer.palette import PaletteComponent, palette_items
from runtime.components.builtin import builtin_descriptors
from runtime.components.descriptor import Descriptor, parse_descriptor


def parsed(name: str, document: dict[str, Any]) -> Descriptor:
    return parse_descriptor(document, name=name).descriptor


def builtin(name: str) -> Descriptor:
    return parsed(name, builtin_descriptors()[name])


def component(name: str, document: dict[str, Any], scope: str = "global") -> PaletteComponent:
    return PaletteComponent(parsed(name, document), icon=f"/icons/{name}.svg", scope=scope)


def action(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "main": "x.py", **extra}


def all_builtins() -> list[PaletteComponent]:
    return [PaletteComponent(builtin(name), icon=f"/icons/{name}.svg") for name in builtin_descriptors()]


def test_a_single_function_component_is_titled_by_the_component():
    items = palette_items([PaletteComponent(builtin("http"), icon="/icons/http.svg")])
    assert items == [
        {
            "component": "http",
            "function": "request",
            "title": "HTTP request",
            "subtitle": "",
            "description": builtin("http").description,
            "icon": "/icons/http.svg",
            "kind": "action",
            "group": "Actions",
        }
    ]


def test_a_component_with_several_functions_is_titled_by_function():
    items = palette_items([PaletteComponent(builtin("router"), icon="/icons/router.svg")])
    assert [(i["function"], i["title"], i["subtitle"]) for i in items] == [
        ("all", "Every matching branch", "Router"),
        ("first", "First matching branch", "Router"),
    ]


def test_a_trigger_goes_into_the_triggers_group():
    item = palette_items([PaletteComponent(builtin("webhook"), icon="/w.svg")])[0]
    assert (item["group"], item["kind"], item["title"]) == ("Triggers", "trigger", "Webhook")


def test_a_tenant_components_actions_go_into_their_own_group():
    items = palette_items([component("crm", {"title": "CRM", "actions": {"push": action("Push")}}, "tenant")])
    assert items[0]["group"] == "This tenant's actions"


def test_a_tenant_components_triggers_stay_with_the_triggers():
    document = {"title": "CRM", "triggers": {"watch": action("Watch")}}
    assert palette_items([component("crm", document, "tenant")])[0]["group"] == "Triggers"


def test_the_default_scope_is_global():
    assert PaletteComponent(builtin("log"), icon="/l.svg").scope == "global"


def test_groups_come_triggers_then_actions_then_the_tenants():
    items = palette_items(
        [
            component("mine", {"title": "Aaa mine", "actions": {"a": action("A")}}, "tenant"),
            component("act", {"title": "Bbb action", "actions": {"a": action("A")}}),
            component("trig", {"title": "Zzz trigger", "triggers": {"t": action("T")}}),
        ]
    )
    assert [(i["group"], i["title"]) for i in items] == [
        ("Triggers", "Zzz trigger"),
        ("Actions", "Bbb action"),
        ("This tenant's actions", "Aaa mine"),
    ]


def test_items_are_sorted_by_title_ignoring_case():
    items = palette_items(
        [
            component("b", {"title": "beta", "actions": {"a": action("A")}}),
            component("c", {"title": "Gamma", "actions": {"a": action("A")}}),
            component("a", {"title": "ALPHA", "actions": {"a": action("A")}}),
        ]
    )
    assert [i["title"] for i in items] == ["ALPHA", "beta", "Gamma"]


def test_equal_titles_are_sorted_by_subtitle():
    items = palette_items(
        [
            component("z", {"title": "zeta", "actions": {"send": action("Send"), "get": action("Get")}}),
            component("a", {"title": "Alpha", "actions": {"send": action("Send"), "get": action("Get")}}),
        ]
    )
    assert [(i["title"], i["subtitle"]) for i in items] == [
        ("Get", "Alpha"),
        ("Get", "zeta"),
        ("Send", "Alpha"),
        ("Send", "zeta"),
    ]


def test_the_builtin_palette_in_full_order():
    items = palette_items(all_builtins())
    assert [(i["group"], i["component"], i["function"], i["title"]) for i in items] == [
        ("Triggers", "http_poll", "poll", "HTTP polling"),
        ("Triggers", "manual", "start", "Manual trigger"),
        ("Triggers", "schedule", "tick", "Schedule"),
        ("Triggers", "webhook", "receive", "Webhook"),
        ("Actions", "aggregate", "aggregate", "Aggregate"),
        ("Actions", "batch", "batch", "Batch"),
        ("Actions", "delay", "delay", "Delay"),
        ("Actions", "router", "all", "Every matching branch"),
        ("Actions", "filter", "filter", "Filter"),
        ("Actions", "router", "first", "First matching branch"),
        ("Actions", "http", "request", "HTTP request"),
        ("Actions", "jsonata", "transform", "JSONata transform"),
        ("Actions", "log", "log", "Log"),
        ("Actions", "code", "run", "Python code"),
        ("Actions", "reply", "reply", "Reply to webhook"),
        ("Actions", "email", "send", "Send e-mail"),
        ("Actions", "split", "split", "Split"),
        ("Actions", "sql", "query", "SQL query"),
    ]


def test_deprecated_functions_are_left_out():
    document = {
        "title": "Old",
        "actions": {"new": action("New way"), "old": action("Old way", deprecated=True)},
    }
    items = palette_items([component("old", document)])
    assert [i["function"] for i in items] == ["new"]


def test_one_live_function_beside_a_deprecated_one_is_titled_by_the_component():
    document = {
        "title": "Old",
        "actions": {"new": action("New way"), "old": action("Old way", deprecated=True)},
    }
    item = palette_items([component("old", document)])[0]
    assert (item["title"], item["subtitle"]) == ("Old", "")


def test_a_component_with_only_deprecated_functions_is_not_listed():
    document = {"title": "Gone", "actions": {"old": action("Old way", deprecated=True)}}
    assert palette_items([component("gone", document), PaletteComponent(builtin("log"), "/l.svg")]) == [
        palette_items([PaletteComponent(builtin("log"), "/l.svg")])[0]
    ]


def test_a_deprecated_trigger_is_left_out_too():
    document = {
        "title": "T",
        "triggers": {"old": action("Old", deprecated=True)},
        "actions": {"a": action("A")},
    }
    assert [i["kind"] for i in palette_items([component("t", document)])] == ["action"]


def test_a_trigger_and_an_action_of_one_component_count_as_several():
    document = {
        "title": "Shop",
        "triggers": {"order": action("New order")},
        "actions": {"ship": action("Ship")},
    }
    items = palette_items([component("shop", document)])
    assert [(i["group"], i["title"], i["subtitle"]) for i in items] == [
        ("Triggers", "New order", "Shop"),
        ("Actions", "Ship", "Shop"),
    ]


def test_the_function_description_is_preferred():
    document = {
        "title": "C",
        "description": "The component.",
        "actions": {"a": action("A", description="The function.")},
    }
    assert palette_items([component("c", document)])[0]["description"] == "The function."


def test_without_a_function_description_the_component_description_is_used():
    document = {"title": "C", "description": "The component.", "actions": {"a": action("A")}}
    assert palette_items([component("c", document)])[0]["description"] == "The component."


def test_without_any_description_the_description_is_empty():
    assert (
        palette_items([component("c", {"title": "C", "actions": {"a": action("A")}})])[0]["description"] == ""
    )


def test_every_item_carries_its_components_icon():
    items = palette_items([PaletteComponent(builtin("router"), icon="/icons/r.svg")])
    assert [i["icon"] for i in items] == ["/icons/r.svg", "/icons/r.svg"]


def test_no_components_no_items():
    assert palette_items([]) == []


def test_palette_items_accepts_a_generator():
    items = palette_items(PaletteComponent(builtin(n), "/i.svg") for n in ("log", "delay"))
    assert [i["component"] for i in items] == ["delay", "log"]
