"""First-run set-up: shown only while the hub has no user; creates the first owner and tenant."""

from __future__ import annotations

import reflex as rx

from app.components.auth_card import auth_card, error_callout, field
from app.context import get_context
from app.errors import HubError
from app.services.accounts import any_user_exists, first_run_setup
from app.state.auth import HOME_ROUTE, LOGIN_ROUTE, AuthState

ROUTE = "/setup"


class SetupState(AuthState):
    error: str = ""

    @rx.event
    def on_load(self):
        if any_user_exists(get_context().db):
            return rx.redirect(LOGIN_ROUTE)
        return None

    @rx.event
    def submit(self, form: dict[str, str]):
        ctx = get_context()
        if form.get("password", "") != form.get("password_again", ""):
            self.error = "The two passwords differ."
            return None
        try:
            first_run_setup(ctx.db, form.get("email", ""), form.get("password", ""), form.get("tenant", ""))
            self._open_session(form.get("email", ""), form.get("password", ""))
        except HubError as exc:
            self.error = str(exc)
            return None
        self.error = ""
        return rx.redirect(HOME_ROUTE)


def setup_page() -> rx.Component:
    return auth_card(
        "Set up your hub",
        "Create the first account. It administers the hub and owns your first tenant.",
        rx.form(
            rx.vstack(
                field("Your e-mail", "email", "email", auto_complete="username"),
                field(
                    "Password (10 characters or more)", "password", "password", auto_complete="new-password"
                ),
                field("Password again", "password_again", "password", auto_complete="new-password"),
                field("Tenant (team or company) name", "tenant", placeholder="Acme Inc."),
                error_callout(SetupState.error),
                rx.button(
                    "Create account", type="submit", size="3", width="100%", data_testid="setup-submit"
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=SetupState.submit,
            reset_on_submit=False,
            width="100%",
        ),
    )
