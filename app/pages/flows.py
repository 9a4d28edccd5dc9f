"""Flows: the tenant's integration flows (the list and the designer arrive with the designer issue)."""

from __future__ import annotations

import reflex as rx

from app.templates.layout import coming_next, page_layout

ROUTE = "/flows"


def flows_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Flows",
        "Integration flows of this tenant: a trigger and the steps that process its messages.",
        coming_next(
            "This page will list your flows and open them in the visual designer:",
            [
                "name, trigger (webhook, schedule, manual, polling), status, last run and its result",
                "create, rename, duplicate, delete, and the activate switch",
                "a drag-and-drop canvas with the component palette, node configuration and test runs",
            ],
        ),
    )
