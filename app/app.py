"""The Reflex application: every page and its on-load guard. Run with `hub web` (or `hub up`)."""

from __future__ import annotations

import reflex as rx

from app.api.health import mount_health
from app.api.metrics import mount_metrics
from app.api.oauth import mount_oauth
from app.api.sso import mount_sso
from app.api.v1 import mount_api
from app.api.v1.wiring import hub_from_context
from app.api.webhooks import mount_webhooks
from app.pages import (
    activity,
    audit,
    catalog,
    credentials,
    dashboard,
    flow,
    flows,
    invite,
    login,
    members,
    run,
    runs,
    settings,
    setup,
    templates,
    tokens,
)
from app.state.auth import AuthState


def index() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")


class HubApp(rx.App):
    """Reflex's app with the webhooks in front of its whole stack: a webhook request is answered before Reflex's
    own middleware sees it (measured: ~1.5x the throughput of mounting it inside, through `api_transformer`).
    The REST API (/api/v1), the OAuth2 callback, single sign-on, /metrics, /healthz and /readyz sit there
    too: no pages."""

    def __call__(self):
        pages = super().__call__()
        return mount_webhooks(
            mount_health(mount_metrics(mount_api(mount_oauth(mount_sso(pages)), hub_from_context)))
        )


app = HubApp(
    head_components=[rx.el.link(rel="icon", href="/favicon.ico")],
)
app.add_page(index, route="/", title="Integration Hub", on_load=AuthState.require_login_home)
app.add_page(
    login.login_page, route=login.ROUTE, title="Log in · Integration Hub", on_load=login.LoginState.on_load
)
app.add_page(
    setup.setup_page, route=setup.ROUTE, title="Set up · Integration Hub", on_load=setup.SetupState.on_load
)
app.add_page(
    dashboard.dashboard_page,
    route=dashboard.ROUTE,
    title="Dashboard · Integration Hub",
    on_load=dashboard.DashboardState.load,
)
app.add_page(
    flows.flows_page, route=flows.ROUTE, title="Flows · Integration Hub", on_load=flows.FlowsState.load
)
app.add_page(
    flow.flow_page, route=flow.ROUTE, title="Flow · Integration Hub", on_load=flow.DesignerState.load_designer
)
app.add_page(
    credentials.credentials_page,
    route=credentials.ROUTE,
    title="Credentials · Integration Hub",
    on_load=credentials.CredentialsState.load,
)
app.add_page(runs.runs_page, route=runs.ROUTE, title="Runs · Integration Hub", on_load=runs.RunsState.load)
app.add_page(run.run_page, route=run.ROUTE, title="Run · Integration Hub", on_load=run.RunState.load)
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
app.add_page(
    activity.activity_page,
    route=activity.ROUTE,
    title="Activity · Integration Hub",
    on_load=activity.ActivityState.load,
)
app.add_page(
    members.members_page,
    route=members.ROUTE,
    title="Members · Integration Hub",
    on_load=members.MembersState.load,
)
app.add_page(
    tokens.tokens_page,
    route=tokens.ROUTE,
    title="API tokens · Integration Hub",
    on_load=tokens.TokensState.load,
)
app.add_page(
    audit.audit_page, route=audit.ROUTE, title="Audit log · Integration Hub", on_load=audit.AuditState.load
)
app.add_page(
    invite.invite_page,
    route=invite.ROUTE,
    title="Invitation · Integration Hub",
    on_load=invite.InviteState.load,
)
app.add_page(
    templates.templates_page,
    route=templates.ROUTE,
    title="Templates · Integration Hub",
    on_load=templates.TemplatesState.load,
)
