"""The designer's canvas as a Reflex component: React Flow (@xyflow/react) with the component palette.

The React side (assets/designer/flow_canvas.jsx) keeps positions while nodes are dragged and calls back only
with finished gestures, each as one JSON value, so a large flow costs the server a few events per edit."""

from __future__ import annotations

from typing import Any

import reflex as rx

XYFLOW = "@xyflow/react@12.12.1"


def _moves(value: rx.Var[list[dict[str, Any]]]) -> tuple[rx.Var[list[dict[str, Any]]]]:
    return (value,)


def _item(value: rx.Var[dict[str, Any]]) -> tuple[rx.Var[dict[str, Any]]]:
    return (value,)


def _ids(value: rx.Var[list[str]]) -> tuple[rx.Var[list[str]]]:
    return (value,)


def _nothing() -> tuple[()]:
    return ()


class FlowDesigner(rx.NoSSRComponent):
    """Props: `nodes` and `edges` in React Flow's shape (see designer/view.py), `palette` (see
    designer/palette.py), `read_only`, `dirty` (unsaved changes: leaving the tab asks first), `fit_signal` (a
    number: the canvas fits the view when it changes) and `selected_id` (the step the side panel shows: the
    canvas selects it too)."""

    library = "$/public/designer/flow_canvas.jsx"
    tag = "FlowDesigner"
    lib_dependencies: list[str] = [XYFLOW]

    nodes: rx.Var[list[dict[str, Any]]]
    edges: rx.Var[list[dict[str, Any]]]
    palette: rx.Var[list[dict[str, Any]]]
    read_only: rx.Var[bool]
    dirty: rx.Var[bool]
    fit_signal: rx.Var[int]
    selected_id: rx.Var[str]

    on_nodes_moved: rx.EventHandler[_moves]  # [{id, x, y}] after a drag stopped
    on_connect_nodes: rx.EventHandler[_item]  # {source, target}
    on_delete_items: rx.EventHandler[_item]  # {nodes: [id], edges: [{source, target}]}
    on_select_item: rx.EventHandler[_item]  # {node} | {source, target} | {} (the pane)
    on_add_component: rx.EventHandler[_item]  # {component, function, x, y}
    on_copy_nodes: rx.EventHandler[_ids]  # [id]
    on_paste_nodes: rx.EventHandler[_item]  # {x, y}: where the view's centre is
    on_undo: rx.EventHandler[_nothing]
    on_redo: rx.EventHandler[_nothing]
    on_layout: rx.EventHandler[_nothing]


flow_designer = FlowDesigner.create
