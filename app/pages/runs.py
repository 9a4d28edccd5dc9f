"""Runs: every execution of the tenant's flows, with its steps, data and logs."""

from __future__ import annotations

import reflex as rx

from app.templates.layout import coming_next, page_layout

ROUTE = "/runs"


def runs_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Runs",
        "Every execution of your flows: status, timing, data and logs.",
        coming_next(
            "This page will list runs and open each one:",
            [
                "filters by flow, status, trigger, time and text, newest first",
                "a timeline of step executions with their input, output, attempts and errors",
                "the run's log lines, live while it runs, and replay from the failed step",
            ],
        ),
    )
