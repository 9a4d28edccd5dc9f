"""Auto-layout: steps in columns by their distance from the start, left to right, ordered within a column to
keep edges from crossing (the barycentre of their predecessors), as n8n's and Node-RED's tidy-up do."""

from __future__ import annotations

from typing import Any

COLUMN = 280
ROW = 120


def layered_positions(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]]
) -> dict[str, dict[str, float]]:
    ids = [n["id"] for n in nodes]
    known = set(ids)
    links = _without_back_edges(ids, [(e["source"], e["target"]) for e in edges
                                      if e["source"] in known and e["target"] in known])  # fmt: skip
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for source, target in links:
        preds[target].append(source)
        succs[source].append(target)
    # Longest path from a root gives the column (Kahn's order over what is now acyclic).
    column = {i: 0 for i in ids}
    waiting = {i: len(preds[i]) for i in ids}
    ready = [i for i in ids if waiting[i] == 0]
    while ready:
        current = ready.pop(0)
        for target in succs[current]:
            column[target] = max(column[target], column[current] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    columns: dict[int, list[str]] = {}
    for node_id in ids:
        columns.setdefault(column[node_id], []).append(node_id)
    row: dict[str, float] = {}
    for number in sorted(columns):
        members = columns[number]
        if number > 0:
            members.sort(key=lambda i: _barycentre(preds[i], row, ids.index(i)))
        for index, node_id in enumerate(members):
            row[node_id] = index - (len(members) - 1) / 2
    return {i: {"x": float(column[i] * COLUMN), "y": float(row[i] * ROW)} for i in ids}


def _barycentre(predecessors: list[str], row: dict[str, float], fallback: int) -> float:
    known = [row[p] for p in predecessors if p in row]
    return sum(known) / len(known) if known else float(fallback)


def _without_back_edges(ids: list[str], links: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The links minus those that close a loop (the compiler reports loops; the layout must still finish and
    keep everything else left to right). Depth first from the roots, then from whatever a loop left unvisited."""
    following: dict[str, list[str]] = {i: [] for i in ids}
    has_input = set()
    for source, target in links:
        following[source].append(target)
        has_input.add(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    back: set[tuple[str, str]] = set()
    for start in [i for i in ids if i not in has_input] + ids:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(following[start]))]
        while stack:
            current, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                state[current] = 2
                stack.pop()
            elif state.get(target) == 1:
                back.add((current, target))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(following[target])))
    return [link for link in links if link not in back]
