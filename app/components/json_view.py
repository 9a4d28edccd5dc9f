"""A collapsible JSON tree (assets/runs/json_view.jsx): folds objects and arrays, marks values the run recorder
cut at its size limit."""

from __future__ import annotations

from typing import Any

import reflex as rx


class JsonView(rx.NoSSRComponent):
    library = "$/public/runs/json_view.jsx"
    tag = "JsonView"

    value: rx.Var[Any]
    open: rx.Var[int]


json_view = JsonView.create
