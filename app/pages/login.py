"""The login page: local accounts, one generic message on failure, attempts limited per account and address."""

from __future__ import annotations

import reflex as rx

from app.api import notices
from app.auth import sessions
from app.auth.sso import LOGIN_PATH
from app.components.auth_card import auth_card, error_callout, field
from app.context import get_context
from app.errors import AuthenticationError, RateLimitedError
from app.services.accounts import any_user_exists
from app.state.auth import HOME_ROUTE, AuthState

ROUTE = "/login"


class LoginState(AuthState):
    error: str = ""
    busy: bool = False
    sso_name: str = ""  # "" when single sign-on is not configured

    @rx.event
    def on_load(self):
        ctx = get_context()
        handle = self.router.url.query_parameters.get("sso_error", "")
        self.error = (
            (notices.take(ctx.redis, handle) or "Single sign-on did not log you in.") if handle else ""
        )
        self.sso_name = ctx.settings.oidc_name if ctx.settings.oidc_issuer else ""
        if not any_user_exists(ctx.db):
            return rx.redirect("/setup")
        if sessions.resolve(ctx.db, self.session_token) is not None:
            return rx.redirect(HOME_ROUTE)
        return None

    @rx.event
    def single_sign_on(self):
        # A full page load: rx.redirect to this host would stay inside the app's own router.
        return rx.call_script(f"window.location.assign({LOGIN_PATH!r})")

    @rx.event
    def submit(self, form: dict[str, str]):
        email, password = form.get("email", ""), form.get("password", "")
        if not email.strip() or not password:
            self.error = "Enter your e-mail and password."
            return None
        try:
            self._open_session(email, password)
        except (AuthenticationError, RateLimitedError) as exc:
            self.error = str(exc)
            return None
        self.error = ""
        return rx.redirect(HOME_ROUTE)


def login_page() -> rx.Component:
    return auth_card(
        "Log in",
        "Use the account your hub administrator gave you.",
        rx.form(
            rx.vstack(
                field("E-mail", "email", "email", auto_complete="username", auto_focus=True),
                field("Password", "password", "password", auto_complete="current-password"),
                error_callout(LoginState.error),
                rx.button("Log in", type="submit", size="3", width="100%", data_testid="login-submit"),
                spacing="3",
                width="100%",
            ),
            on_submit=LoginState.submit,
            reset_on_submit=False,
            width="100%",
        ),
        rx.cond(
            LoginState.sso_name != "",
            rx.vstack(
                rx.divider(),
                rx.button(
                    "Log in with " + LoginState.sso_name,
                    on_click=LoginState.single_sign_on,
                    variant="outline",
                    size="3",
                    width="100%",
                    data_testid="login-sso",
                ),
                width="100%",
                spacing="3",
            ),
        ),
    )
