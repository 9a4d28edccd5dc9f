"""Edits of a flow's draft as the canvas asks for them: each takes the graph ({"nodes", "edges", ...} as the
draft stores it) and returns a new one, never changing its argument, so that undo can keep the old one."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

Graph = dict[str, Any]
IsTrigger = Callable[[dict[str, Any]], bool]  # node -> whether it is a trigger (no incoming edges)

PASTE_OFFSET = 40


class EditRefused(ValueError):
    """An edit that would make the draft wrong in a way the canvas can refuse at once (a loop, a duplicate)."""


def nodes_of(graph: Graph) -> list[dict[str, Any]]:
    return list(graph.get("nodes") or [])


def edges_of(graph: Graph) -> list[dict[str, Any]]:
    return list(graph.get("edges") or [])


def _with(graph: Graph, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> Graph:
    return {**graph, "nodes": nodes, "edges": edges}


def new_node_id(taken: Iterable[str], component: str) -> str:
    """A readable id ("http_2"): node ids appear in run records, logs and problems."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", component)[:50] or "node"
    used = set(taken)
    number = 1
    while f"{base}_{number}" in used:
        number += 1
    return f"{base}_{number}"


def add_node(
    graph: Graph, component: str, function: str, x: float, y: float, name: str = ""
) -> tuple[Graph, str]:
    nodes = nodes_of(graph)
    node_id = new_node_id((n["id"] for n in nodes), component)
    node = {"id": node_id, "component": component, "function": function, "name": name, "fields": {},
            "position": {"x": float(x), "y": float(y)}}  # fmt: skip
    return _with(graph, [*nodes, node], edges_of(graph)), node_id


def node_by_id(graph: Graph, node_id: str) -> dict[str, Any] | None:
    return next((n for n in nodes_of(graph) if n["id"] == node_id), None)


def edge_between(graph: Graph, source: str, target: str) -> dict[str, Any] | None:
    return next((e for e in edges_of(graph) if e["source"] == source and e["target"] == target), None)


def move_nodes(graph: Graph, moves: Iterable[dict[str, Any]]) -> Graph:
    where = {str(m["id"]): {"x": float(m["x"]), "y": float(m["y"])} for m in moves}
    nodes = [{**n, "position": where[n["id"]]} if n["id"] in where else n for n in nodes_of(graph)]
    return _with(graph, nodes, edges_of(graph))


def _reaches(edges: list[dict[str, Any]], start: str, goal: str) -> bool:
    following: dict[str, list[str]] = {}
    for edge in edges:
        following.setdefault(edge["source"], []).append(edge["target"])
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(following.get(current, []))
    return False


def connect(graph: Graph, source: str, target: str, is_trigger: IsTrigger) -> Graph:
    nodes = {n["id"]: n for n in nodes_of(graph)}
    edges = edges_of(graph)
    if source not in nodes or target not in nodes:
        raise EditRefused("Both ends of a connection must be steps of this flow.")
    if source == target:
        raise EditRefused("A step cannot be connected to itself.")
    if is_trigger(nodes[target]):
        raise EditRefused(f"{_label(nodes[target])} is a trigger: it starts the flow and takes no input.")
    if any(e["source"] == source and e["target"] == target for e in edges):
        raise EditRefused("These two steps are already connected.")
    if _reaches(edges, target, source):
        raise EditRefused("This connection would make a loop: a message would go round for ever.")
    return _with(graph, nodes_of(graph), [*edges, {"source": source, "target": target}])


def _label(node: dict[str, Any]) -> str:
    return repr(node.get("name") or node["id"])


def delete(graph: Graph, node_ids: Iterable[str], edges: Iterable[dict[str, Any]] = ()) -> Graph:
    """Nodes go with their edges; the edges named go alone."""
    gone = set(node_ids)
    cut = {(str(e["source"]), str(e["target"])) for e in edges}
    kept_edges = [
        e
        for e in edges_of(graph)
        if e["source"] not in gone and e["target"] not in gone and (e["source"], e["target"]) not in cut
    ]
    return _with(graph, [n for n in nodes_of(graph) if n["id"] not in gone], kept_edges)


def copy_nodes(graph: Graph, node_ids: Iterable[str]) -> Graph:
    """The nodes and the edges between them: what a paste brings back. Credentials stay referenced: the
    paste is checked like any save (a credential the editor may not use is refused)."""
    chosen = set(node_ids)
    nodes = [copy.deepcopy(n) for n in nodes_of(graph) if n["id"] in chosen]
    edges = [dict(e) for e in edges_of(graph) if e["source"] in chosen and e["target"] in chosen]
    return {"nodes": nodes, "edges": edges}


def paste(
    graph: Graph, clipboard: Graph, x: float | None = None, y: float | None = None
) -> tuple[Graph, list[str]]:
    """The clipboard's nodes under new ids, placed with their top-left corner at (x, y), or next to where
    they were copied from."""
    copied = nodes_of(clipboard)
    if not copied:
        return graph, []
    nodes = nodes_of(graph)
    taken = {n["id"] for n in nodes}
    left = min(_pos(n)["x"] for n in copied)
    top = min(_pos(n)["y"] for n in copied)
    dx = (x - left) if x is not None else PASTE_OFFSET
    dy = (y - top) if y is not None else PASTE_OFFSET
    renamed: dict[str, str] = {}
    for node in copied:
        renamed[node["id"]] = new_node_id(taken, node["component"])
        taken.add(renamed[node["id"]])
    fresh = [
        {**copy.deepcopy(n), "id": renamed[n["id"]],
         "position": {"x": _pos(n)["x"] + dx, "y": _pos(n)["y"] + dy}}
        for n in copied
    ]  # fmt: skip
    links = [
        {**e, "source": renamed[e["source"]], "target": renamed[e["target"]]} for e in edges_of(clipboard)
    ]
    return _with(graph, [*nodes, *fresh], [*edges_of(graph), *links]), [n["id"] for n in fresh]


def _pos(node: dict[str, Any]) -> dict[str, float]:
    position = node.get("position") or {}
    return {"x": float(position.get("x", 0)), "y": float(position.get("y", 0))}


def update_node(graph: Graph, node_id: str, **changes: Any) -> Graph:
    nodes = nodes_of(graph)
    if node_by_id(graph, node_id) is None:
        raise EditRefused(f"There is no step {node_id!r} in this flow any more.")
    updated = []
    for node in nodes:
        if node["id"] == node_id:
            node = {**node, **changes}
            node = {k: v for k, v in node.items() if v is not None or k not in ("credential_id",)}
        updated.append(node)
    return _with(graph, updated, edges_of(graph))


def set_condition(graph: Graph, source: str, target: str, condition: str) -> Graph:
    edges = edges_of(graph)
    if edge_between(graph, source, target) is None:
        raise EditRefused("This connection is not in the flow any more.")
    changed = []
    for edge in edges:
        if edge["source"] == source and edge["target"] == target:
            edge = {"source": source, "target": target}
            if condition.strip():
                edge["condition"] = condition.strip()
        changed.append(edge)
    return _with(graph, nodes_of(graph), changed)


def with_pins(graph: Graph, newest: dict[str, str]) -> Graph:
    """Pin each imported component the draft uses (those in `newest`: name -> newest version) to the version it
    was first added at, keep existing pins, and drop the pins of components no step uses any more."""
    used = {str(n.get("component")) for n in nodes_of(graph)}
    current = dict(graph.get("pins") or {})
    pins = {
        name: current.get(name) or newest[name] for name in sorted(used) if name in current or name in newest
    }
    if pins == current and ("pins" in graph or not pins):
        return graph
    updated = {**graph, "pins": pins}
    if not pins:
        updated.pop("pins")
    return updated


def set_pin(graph: Graph, component: str, version: str) -> Graph:
    """Upgrade (or go back): the draft's steps of `component` resolve that version from now on."""
    if not any(n.get("component") == component for n in nodes_of(graph)):
        raise EditRefused(f"No step of this flow uses {component!r} any more.")
    return {**graph, "pins": {**(graph.get("pins") or {}), component: version}}
