"""A flow's webhook URLs and settings, as the flow page and the designer's webhook-trigger panel show them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import reflex as rx

from app.context import HubContext, get_context
from app.control import schedules
from app.control.citizens import CALM_MINUTES
from app.control.flow_jobs import enqueue_converge
from app.control.standing import Standing, standing_of
from app.errors import HubError
from app.services import flows, webhooks
from app.services.plans import current_plan
from app.state.auth import EDIT_ROLES, AuthState
from app.storage.models import FlowStatus, FlowVersion
from app.storage.scoping import tenant_session

# A change to a flow or its webhook: (context, tenant id, flow id, acting user) -> whatever the service returns.
Change = Callable[[HubContext, uuid.UUID, uuid.UUID, uuid.UUID | None], object]
STATUS_COLORS = {"active": "green", "error": "red", "starting": "amber", "stopping": "amber"}
WATCH_S = 300  # how long the page follows a starting or stopping flow before it stops asking
SECRET_INPUTS = {"basic": ("username", "password"), "header": ("token",), "hmac": ("secret",)}


def _standing_text(standing: Standing) -> str:
    if standing.level == 0:
        return ""
    since = standing.since.replace("T", " ").replace("+00:00", " UTC")
    if standing.label == "suspended":
        return (
            f"Suspended by the hub since {since}: {standing.reason}. Fix the cause, then activate it again."
        )
    what = {"low priority": "has a lower priority", "throttled": "is throttled to one message a second"}
    return (
        f"This flow {what[standing.label]} since {since}: {standing.reason}. It is relieved after "
        f"{CALM_MINUTES} calm minutes."
    )


class WebhookState(AuthState):
    current_flow_id: str = ""
    flow_name: str = ""
    flow_status: str = ""
    status_reason: str = ""  # why the flow is in error (a step that cannot run here, ...)
    schedule: str = ""  # a polling flow's cron expression
    schedule_words: str = ""
    next_ticks: list[str] = []
    ticks_skipped: int = 0
    standing: str = ""  # what the bad-citizen watch did to the flow, and why ("" when nothing)
    version_number: int = 0
    production_url: str = ""
    test_url: str = ""
    problem: str = ""
    listening_until: str = ""
    captured: str = ""
    settings: dict[str, str] = {}
    protected: bool = False  # a secret is stored for the current protection
    error: str = ""

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @rx.var
    def active(self) -> bool:
        return self.flow_status == FlowStatus.ACTIVE.value

    @rx.var
    def status_color(self) -> str:
        return STATUS_COLORS.get(self.flow_status, "gray")

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
            self.status_reason = flow.status_reason or ""
            version = session.get(FlowVersion, flow.current_version_id) if flow.current_version_id else None
            self.version_number = version.number if version else 0
        self._refresh_schedule(ctx, tenant_id, flow_id)
        self.standing = _standing_text(standing_of(ctx.redis, tenant_id, flow_id))
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

    def _refresh_schedule(self, ctx: HubContext, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> None:
        """A polling flow's schedule as its published version has it: in words, its next ticks, the skipped."""
        self.schedule, self.schedule_words, self.next_ticks, self.ticks_skipped = "", "", [], 0
        if not self.version_number:
            return
        try:
            _, plan = current_plan(ctx.db, ctx.components_for(tenant_id), tenant_id, flow_id)
            found = schedules.schedule_of(plan)
        except HubError as exc:
            self.schedule_words = str(exc)
            return
        if found is None:
            return
        self.schedule, self.schedule_words = found.cron, found.describe()
        self.next_ticks = [t.strftime("%a %d %b %H:%M UTC") for t in found.next_times(5)]
        self.ticks_skipped = schedules.skipped(ctx.redis, tenant_id, flow_id)

    @rx.event
    def load_flow(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            return redirect
        self.current_flow_id = str(self.router.page.params.get("flow_id", ""))
        self.error = ""
        try:
            uuid.UUID(self.current_flow_id)
            self._refresh()
        except (HubError, ValueError):
            self.flow_name = ""
            self.error = "This flow does not exist (or belongs to another tenant)."
            return None
        return WebhookState.watch_status if self._changing() else None

    def _changing(self) -> bool:
        return self.flow_status in (FlowStatus.STARTING.value, FlowStatus.STOPPING.value)

    @rx.event(background=True)
    async def watch_status(self):
        """Follow a flow a worker is starting or stopping until it is done, and say how it ended."""
        async with self:
            flow_id = self.current_flow_id
        deadline = time.monotonic() + WATCH_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.4)
            async with self:
                if self.current_flow_id != flow_id:
                    return  # the page moved on to another flow
                try:
                    self._refresh()
                except HubError:
                    return
                if self._changing():
                    continue
                status = self.flow_status
            if status == FlowStatus.ACTIVE.value:
                yield rx.toast.success("The flow is active: its production URL starts runs.")
            elif status == FlowStatus.INACTIVE.value:
                yield rx.toast.success("The flow is inactive; its runners are released.")
            elif status == FlowStatus.ERROR.value:
                yield rx.toast.error("The flow is in error: see why on the page.")
            return
        yield rx.toast.warning(
            f"No worker has finished this after {WATCH_S // 60} minutes: check that `hub worker` runs, then ask again."
        )

    def _guard(self) -> bool:
        """The role as it is now, not as it was when the page loaded."""
        self.error = self._refusal("change this flow")
        return not self.error

    def _apply(self, change: Change, then: Any) -> Any:
        """Make a change through the services, as the user, and show the result (or why it was refused)."""
        if not self._guard():
            return None
        ctx = get_context()
        tenant_id, flow_id = self._ids()
        try:
            change(ctx, tenant_id, flow_id, self._user())
        except HubError as exc:
            self.error = str(exc)
            return None
        self._refresh()
        return then

    @rx.event
    def activate(self):
        """A worker starts the flow's runners (a control job); the page follows it until active or error."""
        return self._apply(
            lambda c, t, f, u: flows.request_activation(
                c.db, t, f, enqueue=enqueue_converge(c.redis), user_id=u
            ),
            WebhookState.watch_status,
        )

    @rx.event
    def deactivate(self):
        return self._apply(
            lambda c, t, f, u: flows.request_deactivation(
                c.db, c.bus, c.components_for(t), t, f, enqueue=enqueue_converge(c.redis), routes=c.routes,
                user_id=u,
            ),
            [rx.toast.success("The production URL answers 410 from now on."), WebhookState.watch_status],
        )  # fmt: skip

    @rx.event
    def create_production_url(self):
        return self._apply(
            lambda c, t, f, u: webhooks.create_url(
                c.db, c.bus, c.components_for(t), t, f, "production", c.routes, user_id=u
            ),
            rx.toast.success("The production URL is ready."),
        )

    @rx.event
    def rotate_production_url(self):
        return self._apply(
            lambda c, t, f, u: webhooks.rotate_url(
                c.db, c.bus, c.components_for(t), t, f, "production", c.routes, user_id=u
            ),
            rx.toast.success("New URL: the old one stopped working."),
        )

    @rx.event
    def revoke_production_url(self):
        return self._apply(
            lambda c, t, f, u: webhooks.revoke_url(c.db, c.bus, t, f, "production", user_id=u),
            rx.toast.success("The URL is revoked: it answers 404."),
        )

    @rx.event
    def save_settings(self, form: dict[str, Any]):
        auth = str(form.get("auth") or "none")
        secret = {
            name: str(form.get(f"secret_{name}") or "") for names in SECRET_INPUTS.values() for name in names
        }
        given = {name: secret[name] for name in SECRET_INPUTS.get(auth, ()) if secret[name]}
        values = {
            key: value
            for key, value in form.items()
            if value not in ("", None) and not key.startswith("secret_")
        }
        active = self.flow_status == FlowStatus.ACTIVE.value

        def change(c: HubContext, t: uuid.UUID, f: uuid.UUID, u: uuid.UUID | None) -> None:
            webhooks.update_settings(c.db, c.bus, c.components_for(t), c.vault, t, f, values, c.routes,
                                     secret=given or None, user_id=u)  # fmt: skip
            if active:  # sync or async decides which runners stay warm: a worker brings them in line
                enqueue_converge(c.redis)(t, f, u)

        return self._apply(change, rx.toast.success("Webhook settings saved."))

    @rx.event
    def set_auth(self, value: str) -> None:
        self.settings = {**self.settings, "auth": value}

    @rx.event
    def set_mode(self, value: str) -> None:
        self.settings = {**self.settings, "mode": value}

    @rx.event
    def listen(self):
        return self._apply(
            lambda c, t, f, u: webhooks.listen_for_test(
                c.db, c.bus, c.components_for(t), t, f, c.routes, user_id=u
            ),
            WebhookState.watch_test,
        )

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
