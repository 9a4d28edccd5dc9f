"""An invitation link: who invites to which tenant with which role; accepted by a logged-in user, or after logging
in or creating an account on the spot."""

from __future__ import annotations

import uuid

import reflex as rx

from app.auth import sessions
from app.components.auth_card import auth_card, error_callout, field
from app.context import get_context
from app.errors import HubError
from app.services import invitations
from app.state.auth import HOME_ROUTE, AuthState

ROUTE = "/invite/[token]"


class InviteState(AuthState):
    valid: bool = False
    tenant: str = ""
    invited_role: str = ""
    invited_email: str = ""
    invited_by: str = ""
    new_account: bool = False
    error: str = ""

    def _token(self) -> str:
        return str(self.router.page.params.get("token", ""))

    @rx.event
    def load(self):
        info = sessions.resolve(get_context().db, self.session_token)
        self._apply(info)
        self.error = ""
        try:
            shown = invitations.preview(get_context().db, self._token())
        except HubError as exc:
            self.valid, self.error = False, str(exc)
            return None
        self.valid = True
        self.tenant, self.invited_role = shown.tenant_name, shown.role.value
        self.invited_email, self.invited_by = shown.email or "", shown.invited_by
        self.new_account = False
        return None

    @rx.event
    def toggle_new_account(self):
        self.new_account = not self.new_account
        self.error = ""

    def _join(self):
        ctx = get_context()
        tenant_id = invitations.accept(ctx.db, self._token(), uuid.UUID(self.user_id))
        self._apply(sessions.switch_tenant(ctx.db, self.session_token, tenant_id))
        return [rx.redirect(HOME_ROUTE), rx.toast.success(f"Welcome to {self.tenant}.")]

    @rx.event
    def accept(self):
        if self.require_login() is not None:
            return rx.redirect("/login")
        try:
            return self._join()
        except HubError as exc:
            self.error = str(exc)
            return None

    @rx.event
    def sign_in_and_accept(self, form: dict[str, str]):
        email, password = form.get("email", ""), form.get("password", "")
        if not email.strip() or not password:
            self.error = "Enter your e-mail and password."
            return None
        ctx = get_context()
        try:
            if self.new_account:
                # The account exists only with the membership: no invitation, no account.
                tenant_id = invitations.accept_as_new_user(ctx.db, self._token(), email, password,
                                                           form.get("name", ""))  # fmt: skip
                self._open_session(email, password)
                self._apply(sessions.switch_tenant(ctx.db, self.session_token, tenant_id))
                return [rx.redirect(HOME_ROUTE), rx.toast.success(f"Welcome to {self.tenant}.")]
            self._open_session(email, password)
            self._apply(sessions.resolve(ctx.db, self.session_token))
            return self._join()
        except HubError as exc:
            self.error = str(exc)
            return None


def _sign_in_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            # Keyed on the address: the input is drawn before the invitation is read, and remounts with it.
            field(
                "E-mail",
                "email",
                "email",
                auto_complete="username",
                default_value=InviteState.invited_email,
                key=InviteState.invited_email,
            ),
            rx.cond(InviteState.new_account, field("Your name", "name", "text", auto_complete="name")),
            field(
                "Password",
                "password",
                "password",
                auto_complete=rx.cond(InviteState.new_account, "new-password", "current-password"),
            ),
            error_callout(InviteState.error),
            rx.button(
                rx.cond(InviteState.new_account, "Create account and join", "Log in and join"),
                type="submit",
                size="3",
                width="100%",
                data_testid="invite-join",
            ),
            rx.link(
                rx.cond(InviteState.new_account, "I have an account: log in", "I have no account yet"),
                on_click=InviteState.toggle_new_account,
                size="2",
                data_testid="invite-toggle",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=InviteState.sign_in_and_accept,
        reset_on_submit=False,
        width="100%",
    )


def invite_page() -> rx.Component:
    return auth_card(
        "Invitation",
        rx.cond(
            InviteState.valid,
            InviteState.invited_by
            + " invites you to "
            + InviteState.tenant
            + " as "
            + InviteState.invited_role
            + ".",
            "This link cannot be used.",
        ),
        rx.cond(
            InviteState.valid,
            rx.cond(
                InviteState.authenticated,
                rx.vstack(
                    rx.text("You are logged in as ", rx.text.strong(InviteState.user_email), "."),
                    error_callout(InviteState.error),
                    rx.button(
                        "Join " + InviteState.tenant,
                        on_click=InviteState.accept,
                        size="3",
                        width="100%",
                        data_testid="invite-accept",
                    ),
                    width="100%",
                    spacing="3",
                ),
                _sign_in_form(),
            ),
            error_callout(InviteState.error),
        ),
    )
