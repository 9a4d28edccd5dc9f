"""Turns a flow graph into an execution plan, or rejects it with problems that name the node.

Checked: unknown component or function, dangling edge, cycle, the trigger not at the start (or not exactly
one), missing required field, missing / unknown / wrong-type credential, conditions that do not parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from runtime.components.spec import (
    ComponentResolver,
    ComponentSpec,
    CredentialLookup,
    FunctionSpec,
)
from runtime.flows.expressions import ExpressionError, compile_expression
from runtime.flows.schema import FlowGraph, Node, RetryPolicy


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    node_id: str | None = None

    def __str__(self) -> str:
        return f"{self.node_id}: {self.message}" if self.node_id else self.message


class FlowValidationError(ValueError):
    """The flow cannot run. `problems` lists every reason, each naming its node where there is one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Route:
    target: str
    condition: Any = None  # a compiled JSONata expression, or None for "always"
    condition_source: str | None = None


@dataclass(frozen=True)
class PlanStep:
    node: Node
    component: ComponentSpec
    function: FunctionSpec
    routes: tuple[Route, ...]

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def retry(self) -> RetryPolicy:
        return self.node.settings.retry


@dataclass(frozen=True)
class ExecutionPlan:
    flow_id: str
    version_id: str
    graph: FlowGraph
    entry: str
    steps: Mapping[str, PlanStep] = field(default_factory=dict)

    @property
    def entry_step(self) -> PlanStep:
        return self.steps[self.entry]


def parse_graph(document: Mapping[str, Any]) -> FlowGraph:
    """Validate the document's shape; pydantic's messages become problems with a location."""
    try:
        return FlowGraph.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = [
            Problem("invalid_document", f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            for err in exc.errors()
        ]
        raise FlowValidationError(problems) from None


def compile_flow(
    graph: FlowGraph | Mapping[str, Any],
    components: ComponentResolver,
    credentials: CredentialLookup | None = None,
    *,
    flow_id: str = "",
    version_id: str = "",
) -> ExecutionPlan:
    if not isinstance(graph, FlowGraph):
        graph = parse_graph(graph)
    problems: list[Problem] = []

    if not graph.nodes:
        raise FlowValidationError([Problem("empty_flow", "The flow has no nodes; add a trigger first.")])

    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.id in nodes:
            problems.append(Problem("duplicate_node", "Two nodes share this id.", node.id))
        nodes[node.id] = node

    resolved: dict[str, tuple[ComponentSpec, FunctionSpec]] = {}
    for node in graph.nodes:
        spec = components.get(node.component)
        if spec is None:
            problems.append(Problem("unknown_component", f"Unknown component {node.component!r}.", node.id))
            continue
        function = spec.function(node.function)
        if function is None:
            known = ", ".join(sorted(spec.functions)) or "none"
            problems.append(
                Problem(
                    "unknown_function",
                    f"Component {node.component!r} has no function {node.function!r} (it has: {known}).",
                    node.id,
                )
            )
            continue
        resolved[node.id] = (spec, function)
        problems.extend(_field_problems(node, function))
        problems.extend(credential_problems(node, function, credentials))

    incoming: dict[str, list[str]] = {n: [] for n in nodes}
    outgoing: dict[str, list[tuple[str, Any, str | None]]] = {n: [] for n in nodes}
    for edge in graph.edges:
        missing = [end for end in (edge.source, edge.target) if end not in nodes]
        if missing:
            problems.append(
                Problem(
                    "dangling_edge",
                    f"Edge {edge.source} -> {edge.target} points to a node that does not exist ({', '.join(missing)}).",
                    edge.source if edge.source in nodes else None,
                )
            )
            continue
        compiled = None
        if edge.condition is not None and edge.condition.strip():
            try:
                compiled = compile_expression(edge.condition)
            except ExpressionError as exc:
                problems.append(
                    Problem(
                        "invalid_condition",
                        f"The condition on the edge to {edge.target} does not parse: {exc}",
                        edge.source,
                    )
                )
        incoming[edge.target].append(edge.source)
        outgoing[edge.source].append((edge.target, compiled, edge.condition))

    entry = _find_entry(graph, resolved, incoming, problems)
    problems.extend(_cycle_problems(nodes, outgoing))

    if problems:
        raise FlowValidationError(problems)

    steps = {
        node_id: PlanStep(
            node=nodes[node_id],
            component=spec,
            function=function,
            routes=tuple(Route(t, c, s) for t, c, s in outgoing[node_id]),
        )
        for node_id, (spec, function) in resolved.items()
    }
    assert entry is not None
    return ExecutionPlan(flow_id=flow_id, version_id=version_id, graph=graph, entry=entry, steps=steps)


def _field_problems(node: Node, function: FunctionSpec) -> list[Problem]:
    return [
        Problem("missing_field", f"The required field {name!r} is empty.", node.id)
        for name in function.required_fields
        if node.fields.get(name) in (None, "", [], {})
    ]


def credential_problems(
    node: Node, function: FunctionSpec, credentials: CredentialLookup | None
) -> list[Problem]:
    """With credentials=None (the worker recompiling a saved version) only the shape is checked; existence
    and ownership were checked on save and are checked again when the secret is resolved."""
    if not node.credential_id:
        if function.credential_required:
            return [Problem("missing_credential", "This step needs a credential; choose one.", node.id)]
        return []
    if not function.credential_kinds:
        return [Problem("unexpected_credential", "This step takes no credential; remove it.", node.id)]
    if credentials is None:
        return []
    kind = credentials.kind_of(node.credential_id)
    if kind is None:
        return [
            Problem(
                "unknown_credential", "The chosen credential does not exist or is not yours to use.", node.id
            )
        ]
    if kind not in function.credential_kinds:
        wanted = " or ".join(function.credential_kinds)
        return [
            Problem(
                "wrong_credential", f"The credential is of type {kind!r}; this step needs {wanted}.", node.id
            )
        ]
    holder = credentials.component_of(node.credential_id) if kind == "fields" else None
    if holder is not None and holder != node.component:
        return [
            Problem(
                "wrong_credential",
                f"The credential holds the fields of {holder!r}, not of {node.component!r}; choose one made for "
                "this component.",
                node.id,
            )
        ]
    return []


def _find_entry(
    graph: FlowGraph,
    resolved: dict[str, tuple[ComponentSpec, FunctionSpec]],
    incoming: dict[str, list[str]],
    problems: list[Problem],
) -> str | None:
    triggers = [n.id for n in graph.nodes if n.id in resolved and resolved[n.id][1].kind == "trigger"]
    if not triggers:
        if resolved or not problems:
            problems.append(Problem("no_trigger", "The flow has no trigger; start it with a trigger step."))
        return None
    if len(triggers) > 1:
        for node_id in triggers[1:]:
            problems.append(
                Problem(
                    "trigger_position", "Only one trigger per flow; this one is not at the start.", node_id
                )
            )
    entry = triggers[0]
    if incoming.get(entry):
        problems.append(
            Problem(
                "trigger_position", "A trigger must be the start of the flow: it has incoming edges.", entry
            )
        )
    return entry


def _cycle_problems(
    nodes: dict[str, Node], outgoing: dict[str, list[tuple[str, Any, str | None]]]
) -> list[Problem]:
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(nodes, white)
    problems: list[Problem] = []

    def visit(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node_id, index = stack.pop()
            if index == 0:
                colour[node_id] = grey
                path.append(node_id)
            targets = outgoing[node_id]
            if index < len(targets):
                stack.append((node_id, index + 1))
                target = targets[index][0]
                if colour[target] == grey:
                    cycle = [*path[path.index(target) :], target]
                    problems.append(
                        Problem(
                            "cycle", f"The flow loops: {' -> '.join(cycle)}. Flows must not loop.", target
                        )
                    )
                elif colour[target] == white:
                    stack.append((target, 0))
            else:
                colour[node_id] = black
                path.pop()

    for node_id in nodes:
        if colour[node_id] == white:
            visit(node_id)
    return problems
