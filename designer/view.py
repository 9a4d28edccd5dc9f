"""The draft as React Flow draws it: nodes with their title, icon, problems and test-run result; edges with
their condition as a label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_POSITION = {"x": 0.0, "y": 0.0}


@dataclass(frozen=True)
class NodeLook:
    """How a (component, function) is drawn. `trigger`: it has no input handle."""

    title: str
    subtitle: str
    icon: str
    trigger: bool


UNKNOWN = NodeLook("Unknown component", "not in the catalog", "/components/component.svg", False)


def canvas_nodes(
    graph: Mapping[str, Any],
    looks: Mapping[tuple[str, str], NodeLook],
    problems: Mapping[str, list[str]],
    runs: Mapping[str, dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    drawn = []
    for node in graph.get("nodes") or []:
        look = looks.get((node.get("component", ""), node.get("function", "")), UNKNOWN)
        data = {
            "title": node.get("name") or look.title,
            "subtitle": look.subtitle if node.get("name") else look.subtitle or node["id"],
            "icon": look.icon,
            "trigger": look.trigger,
            "problems": problems.get(node["id"], []),
        }
        if runs and node["id"] in runs:
            data["run"] = runs[node["id"]]
        drawn.append(
            {"id": node["id"], "type": "hub", "position": dict(node.get("position") or DEFAULT_POSITION),
             "data": data}
        )  # fmt: skip
    return drawn


def edge_id(source: str, target: str) -> str:
    return f"{source}->{target}"


def canvas_edges(graph: Mapping[str, Any]) -> list[dict[str, Any]]:
    drawn = []
    for edge in graph.get("edges") or []:
        item: dict[str, Any] = {"id": edge_id(edge["source"], edge["target"]), "source": edge["source"],
                                "target": edge["target"]}  # fmt: skip
        if edge.get("condition"):
            item["label"] = edge["condition"]
        drawn.append(item)
    return drawn
