"""The compiler rejects each kind of bad flow with a problem that names the node."""

from __future__ import annotations

import pytest

from runtime.components.builtin import builtin_registry
from runtime.flows.compiler import FlowValidationError, compile_flow


class Credentials:
    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = kinds

    def kind_of(self, credential_id: str) -> str | None:
        return self.kinds.get(credential_id)

    def component_of(self, credential_id: str) -> str | None:
        return None


def node(node_id: str, component: str, function: str, **extra) -> dict:
    return {"id": node_id, "component": component, "function": function, **extra}


TRIGGER = node("start", "manual", "start")
TRANSFORM = node("shape", "jsonata", "transform", fields={"expression": "{'x': a}"})
HTTP = node("call", "http", "request", fields={"url": "https://api.example.com"})


def problems(graph: dict, credentials=None) -> list[tuple[str, str | None]]:
    with pytest.raises(FlowValidationError) as caught:
        compile_flow(graph, builtin_registry(), credentials)
    return [(p.code, p.node_id) for p in caught.value.problems]


def test_valid_flow_compiles_to_a_plan() -> None:
    graph = {
        "nodes": [TRIGGER, TRANSFORM, node("log", "log", "log")],
        "edges": [
            {"source": "start", "target": "shape"},
            {"source": "shape", "target": "log", "condition": "x > 1"},
        ],
    }
    plan = compile_flow(graph, builtin_registry(), flow_id="f", version_id="v")
    assert plan.entry == "start"
    assert [r.target for r in plan.steps["start"].routes] == ["shape"]
    assert plan.steps["shape"].routes[0].condition_source == "x > 1"
    assert plan.steps["log"].routes == ()


def test_empty_flow() -> None:
    assert problems({"nodes": [], "edges": []}) == [("empty_flow", None)]


def test_malformed_document_names_the_location() -> None:
    with pytest.raises(FlowValidationError, match=r"nodes\.0\.id"):
        compile_flow({"nodes": [{"id": "bad id!", "component": "x", "function": "y"}]}, builtin_registry())


def test_unknown_component_and_function() -> None:
    graph = {
        "nodes": [TRIGGER, node("a", "nope", "x"), node("b", "jsonata", "explode")],
        "edges": [{"source": "start", "target": "a"}, {"source": "start", "target": "b"}],
    }
    assert problems(graph) == [("unknown_component", "a"), ("unknown_function", "b")]


def test_dangling_edge() -> None:
    graph = {"nodes": [TRIGGER], "edges": [{"source": "start", "target": "ghost"}]}
    assert problems(graph) == [("dangling_edge", "start")]


def test_cycle_names_a_node_of_the_loop() -> None:
    graph = {
        "nodes": [TRIGGER, TRANSFORM, node("log", "log", "log")],
        "edges": [
            {"source": "start", "target": "shape"},
            {"source": "shape", "target": "log"},
            {"source": "log", "target": "shape"},
        ],
    }
    found = problems(graph)
    assert found == [("cycle", "shape")]


def test_trigger_must_be_at_the_start() -> None:
    graph = {
        "nodes": [TRANSFORM, TRIGGER],
        "edges": [{"source": "shape", "target": "start"}],
    }
    assert ("trigger_position", "start") in problems(graph)


def test_two_triggers() -> None:
    graph = {"nodes": [TRIGGER, node("hook", "webhook", "receive")], "edges": []}
    assert problems(graph) == [("trigger_position", "hook")]


def test_no_trigger() -> None:
    assert problems({"nodes": [TRANSFORM], "edges": []}) == [("no_trigger", None)]


def test_missing_required_field() -> None:
    graph = {
        "nodes": [TRIGGER, node("shape", "jsonata", "transform", fields={"expression": ""})],
        "edges": [{"source": "start", "target": "shape"}],
    }
    assert problems(graph) == [("missing_field", "shape")]


def test_bad_condition() -> None:
    graph = {
        "nodes": [TRIGGER, TRANSFORM],
        "edges": [{"source": "start", "target": "shape", "condition": "a ="}],
    }
    assert problems(graph) == [("invalid_condition", "start")]


def test_credentials_missing_unknown_and_wrong_type() -> None:
    creds = Credentials({"c-basic": "basic", "c-fields": "fields"})
    ok = {
        "nodes": [TRIGGER, {**HTTP, "credential_id": "c-basic"}],
        "edges": [{"source": "start", "target": "call"}],
    }
    compile_flow(ok, builtin_registry(), creds)

    unknown = {"nodes": [TRIGGER, {**HTTP, "credential_id": "c-gone"}], "edges": []}
    assert problems(unknown, creds) == [("unknown_credential", "call")]
    wrong = {"nodes": [TRIGGER, {**HTTP, "credential_id": "c-fields"}], "edges": []}
    assert problems(wrong, creds) == [("wrong_credential", "call")]
    unexpected = {"nodes": [TRIGGER, {**TRANSFORM, "credential_id": "c-basic"}], "edges": []}
    assert problems(unexpected, creds) == [("unexpected_credential", "shape")]


def test_missing_credential_when_required() -> None:
    from runtime.components.registry import spec_from_descriptor

    needs = spec_from_descriptor(
        "crm",
        {
            "credentials": {"fields": {"apiKey": {"required": True}}},
            "actions": {"upsert": {"x-hub": {"credential_required": True}, "fields": {}}},
        },
    )
    registry = builtin_registry().with_components(needs)
    graph = {
        "nodes": [TRIGGER, node("crm", "crm", "upsert")],
        "edges": [{"source": "start", "target": "crm"}],
    }
    with pytest.raises(FlowValidationError) as caught:
        compile_flow(graph, registry, Credentials({}))
    assert [(p.code, p.node_id) for p in caught.value.problems] == [("missing_credential", "crm")]
    assert "crm: This step needs a credential" in str(caught.value)
