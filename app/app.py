"""The Reflex application: every page and its on-load guard. Run with `hub web` (or `hub up`)."""

from __future__ import annotations

import reflex as rx

from app.pages import catalog, credentials, flows, login, runs, settings, setup
from app.state.auth import AuthState


def index() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")


app = rx.App(
    head_components=[rx.el.link(rel="icon", href="/favicon.ico")],
)
app.add_page(index, route="/", title="Integration Hub", on_load=AuthState.require_login_home)
app.add_page(
    login.login_page, route=login.ROUTE, title="Log in · Integration Hub", on_load=login.LoginState.on_load
)
app.add_page(
    setup.setup_page, route=setup.ROUTE, title="Set up · Integration Hub", on_load=setup.SetupState.on_load
)
for route, component, title in (
    (flows.ROUTE, flows.flows_page, "Flows"),
    (credentials.ROUTE, credentials.credentials_page, "Credentials"),
    (runs.ROUTE, runs.runs_page, "Runs"),
):
    app.add_page(component, route=route, title=f"{title} · Integration Hub", on_load=AuthState.require_login)
app.add_page(
    catalog.catalog_page,
    route=catalog.ROUTE,
    title="Catalog · Integration Hub",
    on_load=catalog.CatalogState.load,
)
app.add_page(
    settings.settings_page,
    route=settings.ROUTE,
    title="Settings · Integration Hub",
    on_load=settings.SettingsState.load,
)
