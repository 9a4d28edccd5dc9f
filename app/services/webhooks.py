"""Webhook URLs of flows: create (one click), rotate, revoke, protect, listen with the test URL; and keeping the
routers' view (route documents in Redis) in step with the database.

The database is the truth (tokens, settings); Redis holds what routers need to answer without SQL. Every change
here writes the database first and then the route, and `sync_all_routes` rebuilds every route from the database
(at start-up), so a lost Redis or a crash between the two heals.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import Session

from app.errors import NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import audit
from app.services.plans import (
    TenantCredentials,
    compile_document,
    flow_document,
    get_flow,
    imported_components,
    pinned,
)
from app.storage.db import Database
from app.storage.models import Credential, Flow, FlowStatus, FlowVersion, Tenant, Webhook, WebhookKind
from app.storage.scoping import system_session, tenant_session
from app.storage.types import utcnow
from app.vault.store import Vault
from runtime.bus.streams import StreamsBus
from runtime.components.spec import ComponentResolver
from runtime.flows.compiler import ExecutionPlan
from runtime.router.routes import TOMBSTONE_SECONDS, HookAuth, Route, RouteRegistry, new_token

LISTEN_SECONDS = 120  # how long a test URL waits for its one request, as in n8n
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
SECRET_FIELDS = {"basic": ("username", "password"), "header": ("token",), "hmac": ("secret",)}
KIND_OF_SECRET = {"basic": "basic", "header": "api_key", "hmac": "api_key"}


class WebhookSettings(pydantic.BaseModel):
    """How a flow's webhook answers and whom it accepts. Shared by its production and test URLs."""

    model_config = pydantic.ConfigDict(extra="forbid")

    mode: Literal["async", "sync"] = "async"
    timeout_s: float = Field(30, ge=1, le=300)
    max_body_kb: int = Field(5 * 1024, ge=1, le=50 * 1024)
    rate_per_s: float = Field(0, ge=0, le=100_000)  # 0: no limit for this flow
    burst: int = Field(0, ge=0, le=100_000)
    auth: Literal["none", "basic", "header", "hmac"] = "none"
    header: str = ""
    algorithm: Literal["sha256", "sha1"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", max_length=40)
    timestamp_header: str = ""
    tolerance_s: int = Field(300, ge=1, le=86_400)
    credential_id: str | None = None  # the vault credential holding the secret

    @pydantic.model_validator(mode="after")
    def _coherent(self) -> WebhookSettings:
        if self.auth in ("header", "hmac") and not self.header:
            raise ValueError(f"header: name the header that carries the {self.auth} value")
        for name in (self.header, self.timestamp_header):
            if name and not HEADER_NAME.match(name):
                raise ValueError(f"header: {name!r} is not a valid HTTP header name")
        return self


@dataclass(frozen=True)
class WebhookView:
    kind: str
    token: str
    url: str
    created_at: Any


@dataclass(frozen=True)
class FlowWebhooks:
    production: WebhookView | None
    test: WebhookView | None
    settings: WebhookSettings
    active: bool
    listening_until_ms: int | None
    problem: str | None  # why the production URL cannot start the flow, if it cannot


@dataclass(frozen=True)
class RouteDefaults:
    """Configuration the routes take their defaults from."""

    public_base_url: str
    tenant_rps: float = 0.0
    tenant_max_backlog: int = 0  # 0: the router's default


NO_DEFAULTS = RouteDefaults(public_base_url="")


def _settings_error(exc: pydantic.ValidationError) -> ValidationError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    return ValidationError(f"Webhook settings, {where}: {str(first['msg']).removeprefix('Value error, ')}")


def parse_settings(values: dict[str, Any]) -> WebhookSettings:
    try:
        return WebhookSettings.model_validate(values)
    except pydantic.ValidationError as exc:
        raise _settings_error(exc) from None


def hook_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/hook/{token}"


def _live(session: Session, flow_id: uuid.UUID, kind: str | None = None) -> list[Webhook]:
    query = sa.select(Webhook).where(Webhook.flow_id == flow_id, Webhook.revoked_at.is_(None))
    if kind is not None:
        query = query.where(Webhook.kind == kind)
    return list(session.scalars(query.order_by(Webhook.created_at)))


def _settings_of(session: Session, flow_id: uuid.UUID) -> WebhookSettings:
    for hook in _live(session, flow_id):
        if hook.settings:
            return WebhookSettings.model_validate(hook.settings)
    return WebhookSettings()


def answers_synchronously(db: Database, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> bool:
    """The flow's webhook waits for the run's reply: its runners must stay warm while it is active."""
    with tenant_session(db.sessions, tenant_id) as session:
        return _settings_of(session, flow_id).mode == "sync"


def _view(hook: Webhook | None, defaults: RouteDefaults) -> WebhookView | None:
    if hook is None:
        return None
    return WebhookView(hook.kind, hook.token, hook_url(defaults.public_base_url, hook.token), hook.created_at)


# -- what the routers see ------------------------------------------------------------------------------------
def _entry_problem(plan: ExecutionPlan) -> str | None:
    entry = plan.entry_step
    trigger = (entry.component.descriptor.get("triggers") or {}).get(entry.function.id) or {}
    if trigger.get("type") != "webhook":
        return f"the flow starts with {entry.component.title!r}, not a webhook trigger"
    return None


def _route(
    hook: Webhook,
    tenant: Tenant,
    settings: WebhookSettings,
    version_id: str,
    step: str,
    defaults: RouteDefaults,
    limited: bool = False,
) -> Route:
    tenant_rps = float(tenant.webhook_rps) if tenant.webhook_rps is not None else defaults.tenant_rps
    return Route(
        token=hook.token,
        tenant=runtime_id(tenant.id),
        flow=runtime_id(hook.flow_id),
        version=version_id,
        step=step,
        kind=hook.kind,
        mode=settings.mode,
        timeout_ms=int(settings.timeout_s * 1000),
        max_body=settings.max_body_kb * 1024,
        flow_rps=settings.rate_per_s,
        flow_burst=settings.burst or max(1, int(settings.rate_per_s)),
        tenant_rps=tenant_rps,
        tenant_burst=max(1, int(tenant_rps)),
        max_backlog=tenant.max_backlog or defaults.tenant_max_backlog,
        limited=limited,
        auth=HookAuth(
            type=settings.auth,
            secret=settings.credential_id,
            header=settings.header,
            algorithm=settings.algorithm,
            encoding=settings.encoding,
            prefix=settings.prefix,
            timestamp_header=settings.timestamp_header,
            tolerance_s=settings.tolerance_s,
        ),
    )


def _sync_production(
    session: Session,
    registry: RouteRegistry,
    components: ComponentResolver,
    flow: Flow,
    tenant: Tenant,
    settings: WebhookSettings,
    defaults: RouteDefaults,
) -> str | None:
    """Write the production route of `flow` from the database; returns why it cannot start the flow, if so."""
    hooks = _live(session, flow.id, WebhookKind.PRODUCTION.value)
    if not hooks:
        return None
    problem = None
    version_id, step, limited = "", "", False
    if flow.current_version_id is None:
        problem = "the flow has no published version yet"
    else:
        version = session.get(FlowVersion, flow.current_version_id)
        assert version is not None
        try:
            plan = compile_document(
                flow_document(version), components, TenantCredentials(session, version.created_by)
            )
        except ValidationError as exc:
            plan, problem = None, str(exc)
        if plan is not None:
            problem = _entry_problem(plan)
            version_id, step = runtime_id(version.id), plan.entry
            limited = plan.graph.concurrency is not None
    accepting = flow.status == FlowStatus.ACTIVE.value and problem is None
    for hook in hooks:
        registry.put(_route(hook, tenant, settings, version_id, step, defaults, limited), accepting=accepting)
    return problem


def _sync_test(
    session: Session,
    registry: RouteRegistry,
    flow: Flow,
    tenant: Tenant,
    settings: WebhookSettings,
    defaults: RouteDefaults,
) -> None:
    """Test routes take the current settings and keep their draft and listening state; a new (or lost) one is
    written not listening, so that it answers 410 with a hint rather than an anonymous 404."""
    for hook in _live(session, flow.id, WebhookKind.TEST.value):
        current = registry.get(hook.token)
        version, step = (current.version, current.step) if current else ("", "")
        registry.put(_route(hook, tenant, settings, version, step, defaults))


def sync_flow_routes(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    defaults: RouteDefaults,
) -> str | None:
    """Routers see the flow's URLs as the database has them (after a publish, an activation, a new URL or new
    settings). The flow's row is locked meanwhile, so syncs of one flow apply one after the other and the last
    one reads the newest state; its revision is the highest, so it is what routers keep."""
    registry = RouteRegistry(bus)
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        settings = _settings_of(session, flow.id)
        problem = _sync_production(session, registry, components, flow, tenant, settings, defaults)
        _sync_test(session, registry, flow, tenant, settings, defaults)
    return problem


def sync_all_routes(
    db: Database,
    bus: StreamsBus,
    components_for: Callable[[uuid.UUID], ComponentResolver],
    defaults: RouteDefaults,
    tenant_id: uuid.UUID | None = None,
) -> int:
    """Rebuild every route (or a tenant's) from the database (start-up, heals a Redis that lost data; a tenant's
    quotas changed). Returns flows synced."""
    registry = RouteRegistry(bus)
    recently = utcnow() - dt.timedelta(seconds=TOMBSTONE_SECONDS)
    only = (Webhook.tenant_id == tenant_id,) if tenant_id is not None else ()
    with system_session(db.sessions) as session:
        live = session.execute(
            sa.select(Webhook.tenant_id, Webhook.flow_id)
            .where(Webhook.revoked_at.is_(None), *only)
            .distinct()
        ).all()
        revoked = session.execute(
            sa.select(Webhook.tenant_id, Webhook.token).where(Webhook.revoked_at > recently, *only)
        ).all()
    for tenant_id, token in revoked:  # tombstones again, in case Redis lost them
        registry.remove(runtime_id(tenant_id), token)
    for tenant_id, flow_id in live:
        sync_flow_routes(db, bus, components_for(tenant_id), tenant_id, flow_id, defaults)
    return len(live)


# -- URLs ------------------------------------------------------------------------------------------------------
def webhooks_of(
    db: Database, bus: StreamsBus, tenant_id: uuid.UUID, flow_id: uuid.UUID, defaults: RouteDefaults
) -> FlowWebhooks:
    registry = RouteRegistry(bus)
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        production = next(iter(_live(session, flow.id, WebhookKind.PRODUCTION.value)), None)
        test = next(iter(_live(session, flow.id, WebhookKind.TEST.value)), None)
        settings = _settings_of(session, flow.id)
        active = flow.status == FlowStatus.ACTIVE.value
    listening = None
    if test is not None:
        state = registry.state(runtime_id(tenant_id), test.token) or ""
        flag = state.partition(":")[2]
        if flag not in ("", "0", "1") and int(flag) > time.time() * 1000:
            listening = int(flag)
    problem = None
    if production is not None:
        route = registry.get(production.token)
        if route is None or not route.version:
            problem = "the flow has no published version yet"
    return FlowWebhooks(
        _view(production, defaults), _view(test, defaults), settings, active, listening, problem
    )


def create_url(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    kind: str,
    defaults: RouteDefaults,
    *,
    user_id: uuid.UUID | None = None,
) -> WebhookView:
    """The flow's URL of this kind; made on first call (one click), the same one afterwards."""
    if kind not in (WebhookKind.PRODUCTION.value, WebhookKind.TEST.value):
        raise ValidationError(f"unknown webhook kind {kind!r}; use production or test")
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)  # two quick clicks make one URL
        existing = _live(session, flow.id, kind)
        if existing:
            view = _view(existing[0], defaults)
            assert view is not None
            return view
        view = _issue(session, flow, kind, defaults, user_id, "webhook.created")
    # Redis after the commit: a route never exists for a token the database does not have.
    sync_flow_routes(db, bus, components, tenant_id, flow_id, defaults)
    return view


def _issue(
    session: Session,
    flow: Flow,
    kind: str,
    defaults: RouteDefaults,
    user_id: uuid.UUID | None,
    action: str,
) -> WebhookView:
    """A new token for the flow, recorded and audited (the caller hands it to the routers after the commit)."""
    settings = _settings_of(session, flow.id)
    hook = Webhook(tenant_id=flow.tenant_id, flow_id=flow.id, token=new_token(), kind=kind,
                   settings=settings.model_dump())  # fmt: skip
    session.add(hook)
    session.flush()
    audit.record(session, action, tenant_id=flow.tenant_id, actor_user_id=user_id, target_type="flow",
                 target_id=flow.id, kind=kind)  # fmt: skip
    view = _view(hook, defaults)
    assert view is not None
    return view


def _retire(session: Session, flow: Flow, kind: str, missing: str) -> list[str]:
    """Mark the flow's live URLs of this kind revoked; their tokens, for the routers after the commit."""
    hooks = _live(session, flow.id, kind)
    if not hooks:
        raise NotFoundError(missing)
    for hook in hooks:
        hook.revoked_at = utcnow()
    return [hook.token for hook in hooks]


def _remove(bus: StreamsBus, tenant_id: uuid.UUID, tokens: list[str]) -> None:
    registry = RouteRegistry(bus)
    for token in tokens:
        registry.remove(runtime_id(tenant_id), token)


def forget_routes(bus: StreamsBus, tenant_id: uuid.UUID, tokens: list[str]) -> None:
    """The routers stop knowing these URLs (they answer 404): for a deleted flow's."""
    _remove(bus, tenant_id, tokens)


def rotate_url(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    kind: str,
    defaults: RouteDefaults,
    *,
    user_id: uuid.UUID | None = None,
) -> WebhookView:
    """A new URL; the old one stops at once (404), on every router."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)
        retired = _retire(session, flow, kind, f"This flow has no {kind} URL to rotate; create one first.")
        view = _issue(session, flow, kind, defaults, user_id, "webhook.rotated")
    _remove(bus, tenant_id, retired)
    sync_flow_routes(db, bus, components, tenant_id, flow_id, defaults)
    return view


def revoke_url(
    db: Database,
    bus: StreamsBus,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    kind: str,
    *,
    user_id: uuid.UUID | None = None,
) -> None:
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)
        retired = _retire(session, flow, kind, f"This flow has no {kind} URL.")
        audit.record(session, "webhook.revoked", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="flow", target_id=flow.id, kind=kind)  # fmt: skip
    _remove(bus, tenant_id, retired)


# -- settings and their secret --------------------------------------------------------------------------------
def update_settings(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    vault: Vault,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    values: dict[str, Any],
    defaults: RouteDefaults,
    *,
    secret: dict[str, str] | None = None,
    user_id: uuid.UUID | None = None,
) -> WebhookSettings:
    """Change how the flow's webhook answers and whom it accepts. `secret` (write-only) goes to the vault; without
    it the protection keeps the secret it has (or names, by `credential_id`, a webhook secret of this tenant)."""
    settings = parse_settings(values)
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)
        previous = _settings_of(session, flow.id)
        if settings.auth != "none":
            settings = _with_secret(session, vault, tenant_id, flow, settings, previous, secret, user_id)
        else:
            settings = settings.model_copy(update={"credential_id": None})
        hooks = _live(session, flow.id)
        for hook in hooks:
            hook.settings = settings.model_dump()
        audit.record(session, "webhook.settings_changed", tenant_id=tenant_id, actor_user_id=user_id,
                     target_type="flow", target_id=flow.id, mode=settings.mode, auth=settings.auth)  # fmt: skip
    sync_flow_routes(db, bus, components, tenant_id, flow_id, defaults)
    return settings


def _with_secret(
    session: Session,
    vault: Vault,
    tenant_id: uuid.UUID,
    flow: Flow,
    settings: WebhookSettings,
    previous: WebhookSettings,
    secret: dict[str, str] | None,
    user_id: uuid.UUID | None,
) -> WebhookSettings:
    needed = SECRET_FIELDS[settings.auth]
    kind = KIND_OF_SECRET[settings.auth]
    if secret:
        missing = [name for name in needed if not str(secret.get(name) or "")]
        if missing:
            raise ValidationError(
                f"Webhook protection {settings.auth}: enter the {' and the '.join(missing)}."
            )
        values = {name: str(secret[name]) for name in needed}
        credential = _credential(session, previous.credential_id) if previous.auth == settings.auth else None
        if credential is not None and credential.kind == kind and _webhook_secret(credential):
            vault.replace_values(session, credential, values)
        else:
            credential = vault.store(session, tenant_id, name=f"Webhook {settings.auth} · {flow.name}"[:200],
                                     kind=kind, values=values, component_name="webhook",
                                     meta={"fields": list(needed), "purpose": "webhook"},
                                     created_by=user_id)  # fmt: skip
        return settings.model_copy(update={"credential_id": str(credential.id)})
    reference = settings.credential_id or (previous.credential_id if previous.auth == settings.auth else None)
    credential = _credential(session, reference)
    if credential is None:
        raise ValidationError(f"Webhook protection {settings.auth}: enter the secret it checks against.")
    if not _webhook_secret(credential):
        # Only secrets made for webhooks: another credential's values would be read (and replaced) here, and
        # its fields would not be the ones the protection checks.
        raise ValidationError(
            f"Webhook protection {settings.auth}: credential {credential.name!r} is not a webhook secret; "
            "enter the secret here instead."
        )
    if credential.kind != kind:
        raise ValidationError(
            f"Webhook protection {settings.auth}: credential {credential.name!r} is a {credential.kind} "
            f"credential; it needs a {kind} one."
        )
    return settings.model_copy(update={"credential_id": str(credential.id)})


def _webhook_secret(credential: Credential) -> bool:
    return (
        credential.component_name == "webhook"
        and (credential.meta or {}).get("purpose") == "webhook"
        and credential.owner_user_id is None
    )


def own_secrets(session: Session, hooks: list[Webhook]) -> list[Credential]:
    """The webhook secrets these URLs' settings keep (the flow's own, not a shared credential they name)."""
    found = (_credential(session, (hook.settings or {}).get("credential_id")) for hook in hooks)
    return [credential for credential in found if credential is not None and _webhook_secret(credential)]


def _credential(session: Session, reference: str | None) -> Credential | None:
    if not reference:
        return None
    try:
        return session.get(Credential, uuid.UUID(reference))
    except ValueError:
        return None


# -- the test URL ---------------------------------------------------------------------------------------------
def listen_for_test(
    db: Database,
    bus: StreamsBus,
    components: ComponentResolver,
    tenant_id: uuid.UUID,
    flow_id: uuid.UUID,
    defaults: RouteDefaults,
    *,
    user_id: uuid.UUID | None = None,
) -> tuple[WebhookView, int]:
    """Arm the test URL for its next request, which runs the *draft* in test mode (also while the flow is
    inactive). Returns the URL and until when it listens (ms since the epoch)."""
    view = create_url(
        db, bus, components, tenant_id, flow_id, WebhookKind.TEST.value, defaults, user_id=user_id
    )
    registry = RouteRegistry(bus)
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id, lock=True)
        document = flow_document(flow)
        components = pinned(components, document)
        plan = compile_document(document, components, TenantCredentials(session, user_id))
        if problem := _entry_problem(plan):
            raise ValidationError(f"The test URL cannot start this flow: {problem}.")
        [hook] = _live(session, flow.id, WebhookKind.TEST.value)
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        settings = WebhookSettings.model_validate(hook.settings or {})
        # The draft, frozen for this test only: it lives in Redis (for a day: long enough for the run and its
        # retries), not among the flow's versions.
        draft_version = uuid.uuid4().hex
        bus.publish_version(runtime_id(tenant_id), runtime_id(flow.id), draft_version, document,
                            imported_components(components, plan), ttl_s=86_400)  # fmt: skip
        registry.clear_capture(runtime_id(tenant_id), runtime_id(flow.id))
        route = registry.put(_route(hook, tenant, settings, draft_version, plan.entry, defaults))
        until = int((time.time() + LISTEN_SECONDS) * 1000)
        registry.listen(route.tenant, route.token, until)
    return view, until


def stop_listening(db: Database, bus: StreamsBus, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> None:
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        for hook in _live(session, flow.id, WebhookKind.TEST.value):
            RouteRegistry(bus).set_accepting(runtime_id(tenant_id), hook.token, False)


def captured_request(bus: StreamsBus, tenant_id: uuid.UUID, flow_id: uuid.UUID) -> dict[str, Any] | None:
    """The request the test URL captured last (kept an hour), as the designer shows it."""
    return RouteRegistry(bus).captured(runtime_id(tenant_id), runtime_id(flow_id))
