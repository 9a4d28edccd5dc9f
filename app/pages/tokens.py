"""API tokens: a member's personal tokens for the REST API (/api/v1), shown once, scoped, expiring, revocable.
Owners and admins see and revoke every member's tokens."""

from __future__ import annotations

import uuid

import reflex as rx

from app.components.formatting import when
from app.components.notice import notice
from app.components.shown_once import shown_once
from app.components.tables import data_table
from app.context import get_context
from app.errors import HubError
from app.services import api_tokens
from app.state.auth import AuthState
from app.templates.layout import page_layout

ROUTE = "/tokens"
EXPIRY = {"7 days": 7, "30 days": 30, "90 days": 90, "1 year": 365, "never": None}
SCOPES = [("read", "read: list and read"), ("write", "write: change flows, credentials, components, URLs"),
          ("run", "run: start and replay runs")]  # fmt: skip


class TokensState(AuthState):
    tokens: list[dict[str, str]] = []
    new_token: str = ""  # shown once, right after creation
    error: str = ""

    def _reload(self) -> None:
        found = api_tokens.list_tokens(get_context().db, uuid.UUID(self.tenant_id), uuid.UUID(self.user_id))
        self.tokens = [
            {"id": str(t.id), "name": t.name, "prefix": t.prefix + "…", "scopes": ", ".join(t.scopes),
             "owner": t.user_email, "mine": "yes" if t.user_email == self.user_email else "",
             "created": when(t.created_at), "expires": when(t.expires_at) or "never",
             "last_used": when(t.last_used_at) or "never", "state": t.state}
            for t in found
        ]  # fmt: skip

    @rx.event
    def dismiss(self):
        """Shown once: forgotten as soon as it is copied (not kept in the page's state until the next visit)."""
        self.new_token = ""

    @rx.event
    def load(self):
        redirect = self.require_login()
        self.new_token, self.error = "", ""
        if redirect is not None or not self.tenant_id:
            self.tokens = []
            return redirect
        try:
            self._reload()
        except HubError as exc:
            self.error = str(exc)
        return None

    @rx.event
    def create(self, form: dict[str, str]):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.new_token, self.error = "", ""
        scopes = [scope for scope, _ in SCOPES if form.get(f"scope_{scope}") in ("on", "true", scope)]
        try:
            token, _ = api_tokens.create_token(get_context().db, uuid.UUID(self.tenant_id), uuid.UUID(self.user_id),
                                               form.get("name", ""), scopes,
                                               expires_in_days=EXPIRY.get(form.get("expires", ""), 90))  # fmt: skip
            self.new_token = token
            self._reload()
        except HubError as exc:
            self.error = str(exc)
        return None

    @rx.event
    def revoke(self, token_id: str):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.error = ""
        try:
            api_tokens.revoke_token(get_context().db, uuid.UUID(self.tenant_id), uuid.UUID(self.user_id),
                                    uuid.UUID(token_id))  # fmt: skip
            self._reload()
        except (HubError, ValueError) as exc:
            self.error = str(exc)
        return None


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.input(
                    name="name",
                    placeholder="What uses it, e.g. deploy script",
                    width="22em",
                    data_testid="token-name",
                ),
                rx.select(list(EXPIRY), name="expires", default_value="90 days", data_testid="token-expires"),
                rx.button(
                    rx.icon("key-round", size=16), "Create token", type="submit", data_testid="token-create"
                ),
                align="center",
                wrap="wrap",
            ),
            rx.hstack(
                *[
                    rx.checkbox(
                        label,
                        name=f"scope_{scope}",
                        value=scope,
                        default_checked=scope == "read",
                        data_testid=f"token-scope-{scope}",
                    )
                    for scope, label in SCOPES
                ],
                spacing="4",
                wrap="wrap",
            ),
        ),
        on_submit=TokensState.create,
        reset_on_submit=True,
    )


def _new_token() -> rx.Component:
    return shown_once(TokensState.new_token, icon="key-round", on_done=TokensState.dismiss, test_id="token-value",
                      advice="Copy the token now: it is shown only once. Send it as 'Authorization: Bearer <token>'.")  # fmt: skip


def _row(t: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.text(t["name"], weight="medium"), rx.text(t["prefix"], size="1", color_scheme="gray")
        ),
        rx.table.cell(t["scopes"]),
        rx.table.cell(t["owner"]),
        rx.table.cell(t["created"]),
        rx.table.cell(t["expires"]),
        rx.table.cell(t["last_used"]),
        rx.table.cell(rx.badge(t["state"], color_scheme=rx.cond(t["state"] == "active", "green", "gray"))),
        rx.table.cell(
            rx.cond(
                t["state"] == "active",
                rx.button(
                    "Revoke",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=TokensState.revoke(t["id"]),
                    data_testid="token-revoke",
                ),
            )
        ),
        data_testid="token-row",
    )


def tokens_page() -> rx.Component:
    headers = ["Token", "Scopes", "Member", "Created", "Expires", "Last used", "State", ""]
    return page_layout(
        ROUTE,
        "API tokens",
        "Personal tokens for the REST API at /api/v1 (its OpenAPI document: /api/v1/openapi.json).",
        rx.text(
            "A token acts for you in this tenant, never beyond your role: a viewer's token reads, whatever "
            "its scopes.",
            size="2",
            color_scheme="gray",
        ),
        _form(),
        notice(TokensState.error, icon="triangle_alert", color="red", test_id="token-error"),
        _new_token(),
        data_table(headers, TokensState.tokens, _row, "tokens-table"),
    )
