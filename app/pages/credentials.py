"""Credentials: the tenant's vault of secrets for connected systems."""

from __future__ import annotations

import reflex as rx

from app.templates.layout import coming_next, page_layout

ROUTE = "/credentials"


def credentials_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Credentials",
        "Secrets for the systems your flows connect to, encrypted at rest and never shown again after saving.",
        coming_next(
            "This page will hold the credential vault:",
            [
                "API keys, basic auth, bearer tokens and component-defined fields, write-only after saving",
                "OAuth2 connections with one click, refreshed before they expire",
                "verify, see which flows use a credential, and personal versus shared credentials",
            ],
        ),
    )
