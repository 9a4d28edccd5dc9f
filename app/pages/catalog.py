"""Catalog: the components (triggers and actions) flows are built from."""

from __future__ import annotations

import reflex as rx

from app.templates.layout import coming_next, page_layout

ROUTE = "/catalog"


def catalog_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Catalog",
        "Components flows are built from: the hub's built-ins, global ones, and your tenant's own.",
        coming_next(
            "This page will show the component catalog:",
            [
                "search and filters (triggers or actions, tags, global or this tenant's)",
                "a detail view of each component: its functions, fields, credentials and documentation",
                "import of elastic.io / Open Integration Hub component.json descriptors, with per-field warnings",
            ],
        ),
    )
