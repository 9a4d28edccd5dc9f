"""A flow's webhook URLs and settings, as the flow page and the designer's webhook-trigger panel show them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from typing import Any

import reflex as rx

from app.context import get_context
from app.errors import HubError
from app.services import flows, webhooks
from app.state.auth import AuthState
from app.storage.models import FlowStatus, FlowVersion
from app.storage.scoping import tenant_session

EDIT_ROLES = ("owner", "admin", "editor")
SECRET_INPUTS = {"basic": ("username", "password"), "header": ("token",), "hmac": ("secret",)}


class WebhookState(AuthState):
    current_flow_id: str = ""
    flow_name: str = ""
    flow_status: str = ""
    version_number: int = 0
    production_url: str = ""
    test_url: str = ""
    problem: str = ""
    listening_until: str = ""
    captured: str = ""
    settings: dict[str, str] = {}
    protected: bool = False  # a secret is stored for the current protection
    error: str = ""
    message: str = ""

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @rx.var
    def active(self) -> bool:
        return self.flow_status == FlowStatus.ACTIVE.value

    def _ids(self) -> tuple[uuid.UUID, uuid.UUID]:
        return uuid.UUID(self.tenant_id), uuid.UUID(self.current_flow_id)

    def _user(self) -> uuid.UUID | None:
        return uuid.UUID(self.user_id) if self.user_id else None

    def _refresh(self) -> None:
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        with tenant_session(ctx.db.sessions, tenant_id) as session:
            flow = flows.get_flow(session, flow_id)
            self.flow_name, self.flow_status = flow.name, flow.status
            version = session.get(FlowVersion, flow.current_version_id) if flow.current_version_id else None
            self.version_number = version.number if version else 0
        view = webhooks.webhooks_of(ctx.db, ctx.bus, tenant_id, flow_id, ctx.routes)
        self.production_url = view.production.url if view.production else ""
        self.test_url = view.test.url if view.test else ""
        self.problem = view.problem or ""
        self.listening_until = (
            dt.datetime.fromtimestamp(view.listening_until_ms / 1000).strftime("%H:%M:%S")
            if view.listening_until_ms
            else ""
        )
        self.settings = {k: "" if v is None else str(v) for k, v in view.settings.model_dump().items()}
        self.protected = bool(view.settings.credential_id)
        found = webhooks.captured_request(ctx.bus, tenant_id, flow_id)
        self.captured = json.dumps(found, indent=2, ensure_ascii=False) if found else ""

    @rx.event
    def load_flow(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            return redirect
        self.current_flow_id = str(self.router.page.params.get("flow_id", ""))
        self.error = self.message = ""
        try:
            uuid.UUID(self.current_flow_id)
            self._refresh()
        except (HubError, ValueError):
            self.flow_name = ""
            self.error = "This flow does not exist (or belongs to another tenant)."
        return None

    def _guard(self) -> bool:
        """The role as it is now, not as it was when the page loaded."""
        self.error = self.message = ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return False
        if self.role not in EDIT_ROLES:
            self.error = f"Your role here ({self.role or 'none'}) cannot change this flow; ask an editor."
            return False
        return True

    def _do(self, action: str, done: str) -> Any:
        if not self._guard():
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        user = self._user()
        args = (ctx.db, ctx.bus, ctx.components_for(tenant_id), tenant_id, flow_id)
        try:
            if action == "activate":
                flows.activate_flow(*args, user_id=user, routes=ctx.routes)
            elif action == "deactivate":
                flows.deactivate_flow(*args, user_id=user, routes=ctx.routes)
            elif action in ("create", "create-test"):
                kind = "production" if action == "create" else "test"
                webhooks.create_url(*args, kind, ctx.routes, user_id=user)
            elif action == "rotate":
                webhooks.rotate_url(*args, "production", ctx.routes, user_id=user)
            elif action == "revoke":
                webhooks.revoke_url(ctx.db, ctx.bus, tenant_id, flow_id, "production", user_id=user)
        except HubError as exc:
            self.error = str(exc)
            return None
        self._refresh()
        return rx.toast.success(done)

    @rx.event
    def activate(self):
        return self._do("activate", "The flow is active: its production URL starts runs.")

    @rx.event
    def deactivate(self):
        return self._do("deactivate", "The flow is inactive: its production URL answers 410.")

    @rx.event
    def create_production_url(self):
        return self._do("create", "The production URL is ready.")

    @rx.event
    def rotate_production_url(self):
        return self._do("rotate", "New URL: the old one stopped working.")

    @rx.event
    def revoke_production_url(self):
        return self._do("revoke", "The URL is revoked: it answers 404.")

    @rx.event
    def save_settings(self, form: dict[str, Any]):
        if not self._guard():
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        auth = str(form.get("auth") or "none")
        secret = {
            name: str(form.pop(f"secret_{name}", "") or "")
            for names in SECRET_INPUTS.values()
            for name in names
        }
        given = {name: secret[name] for name in SECRET_INPUTS.get(auth, ()) if secret[name]}
        values = {
            key: value
            for key, value in form.items()
            if value not in ("", None) and not key.startswith("secret_")
        }
        try:
            webhooks.update_settings(ctx.db, ctx.bus, ctx.components_for(tenant_id), ctx.vault, tenant_id, flow_id,
                                     values, ctx.routes, secret=given or None, user_id=self._user())  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
            return None
        self._refresh()
        self.message = "Saved."
        return rx.toast.success("Webhook settings saved.")

    @rx.event
    def set_auth(self, value: str) -> None:
        self.settings = {**self.settings, "auth": value}

    @rx.event
    def set_mode(self, value: str) -> None:
        self.settings = {**self.settings, "mode": value}

    @rx.event
    def listen(self):
        if not self._guard():
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        try:
            webhooks.listen_for_test(ctx.db, ctx.bus, ctx.components_for(tenant_id), tenant_id, flow_id,
                                     ctx.routes, user_id=self._user())  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
            return None
        self._refresh()
        return WebhookState.watch_test

    @rx.event(background=True)
    async def watch_test(self):
        """Show the captured request as soon as it arrives (the listening window bounds the wait)."""
        deadline = time.monotonic() + webhooks.LISTEN_SECONDS + 2
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            async with self:
                if not self.current_flow_id or not self.tenant_id:
                    return
                tenant_id, flow_id = self._ids()
            found = await asyncio.to_thread(webhooks.captured_request, get_context().bus, tenant_id, flow_id)
            if found is not None:
                break
        async with self:
            self._refresh()  # the request arrived, or the window closed
