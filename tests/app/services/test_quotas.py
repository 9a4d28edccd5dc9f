"""Tenant quotas: only hub administrators change them; changes are audited and reach workers (Redis) and
routers (the routes) at once; defaults come from configuration."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.config import HubSettings
from app.errors import PermissionDeniedError, ValidationError
from app.runtime_ids import runtime_id
from app.services import accounts, quotas
from app.services.quotas import quota_defaults
from app.storage.models import AuditEvent
from app.storage.scoping import system_session
from runtime.bus.keys import TenantKeys
from runtime.coordinator import usage
from runtime.coordinator.quotas import QuotaStore, TenantQuota
from tests.app.services.test_webhooks import Site, site  # noqa: F401 - the fixture

DEFAULTS = TenantQuota(max_concurrent_steps=8, max_warm_runners=16, max_backlog=1000, webhook_rps=0)


def _update(hub, values, *, superuser=True, routes=None):
    return quotas.update_quotas(
        hub.db,
        hub.bus.redis,
        hub.tenant_id,
        values,
        actor_user_id=accounts.create_user(hub.db, f"admin-{uuid.uuid4().hex[:8]}@example.com", None).id,
        actor_is_superuser=superuser,
        defaults=DEFAULTS,
        bus=hub.bus,
        components_for=lambda _tenant: hub.components,
        routes=routes or quotas.webhooks.NO_DEFAULTS,
    )


def test_defaults_come_from_configuration_until_a_tenant_has_its_own(hub) -> None:
    view = quotas.quotas_of(hub.db, hub.tenant_id, DEFAULTS)
    assert view.effective == TenantQuota(
        weight=1, max_concurrent_steps=8, max_warm_runners=16, max_backlog=1000
    )
    assert all(value is None for value in view.own.values())
    settings = HubSettings(tenant_max_concurrent_steps=3, tenant_max_backlog=50, webhook_tenant_rps=7)
    assert quota_defaults(settings).max_concurrent_steps == 3
    assert quota_defaults(settings).webhook_rps == 7


def test_an_administrator_sets_quotas_and_workers_see_them_at_once(hub) -> None:
    view = _update(hub, quotas.parse({"weight": "3", "max_concurrent_steps": "2", "outbound_rps": ""}))
    assert view.effective.weight == 3 and view.effective.max_concurrent_steps == 2
    assert view.effective.max_backlog == 1000  # still the default
    seen = QuotaStore(hub.bus.redis).read([runtime_id(hub.tenant_id)])[runtime_id(hub.tenant_id)]
    assert seen == view.effective
    with system_session(hub.db.sessions) as session:
        event = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "tenant.quotas_changed")
        ).one()
        assert event.details["changed"] == {"weight": [1, 3], "max_concurrent_steps": [None, 2]}


def test_back_to_the_default_when_emptied(hub) -> None:
    _update(hub, quotas.parse({"weight": "1", "max_concurrent_steps": "2"}))
    view = _update(hub, quotas.parse({"weight": "1", "max_concurrent_steps": ""}))
    assert view.own["max_concurrent_steps"] is None and view.effective.max_concurrent_steps == 8


def test_only_hub_administrators_may_change_quotas(hub) -> None:
    with pytest.raises(PermissionDeniedError, match="Only hub administrators"):
        _update(hub, {"weight": 5}, superuser=False)
    assert quotas.quotas_of(hub.db, hub.tenant_id, DEFAULTS).weight == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"weight": ""}, "Fair-share weight: required"),
        ({"weight": "0"}, "Fair-share weight: must be between 1 and 1,000"),
        (
            {"weight": "1", "max_backlog": "lots"},
            "Messages waiting \\(backlog\\): 'lots' is not a whole number",
        ),
        ({"weight": "1", "webhook_rps": "-4"}, "Webhook requests per second: must be between 1"),
    ],
)
def test_wrong_values_are_refused_naming_the_field(values, message) -> None:
    with pytest.raises(ValidationError, match=message):
        quotas.parse(values)


def test_a_webhook_rate_quota_reaches_the_router_at_once(site: Site) -> None:  # noqa: F811
    flow_id = site.flow()
    url = site.url(flow_id)
    site.activate(flow_id)
    assert [site.http.post(url, json={}).status_code for _ in range(3)] == [202, 202, 202]
    _update(site.hub, {"weight": 1, "webhook_rps": 1}, routes=site.defaults)
    statuses = [site.http.post(url, json={}).status_code for _ in range(3)]
    assert statuses[0] == 202 and statuses[1:] == [429, 429]
    # Counted for the admin page and /metrics, by the ingress script itself.
    seen = usage.read(site.hub.bus.redis, [runtime_id(site.hub.tenant_id)])[runtime_id(site.hub.tenant_id)]
    assert seen.throttled_hour == {"rate": 2}
    tk = TenantKeys(runtime_id(site.hub.tenant_id))
    bucket = site.hub.bus.redis.hgetall(tk.usage(usage.minute()))
    assert int(bucket[f"strike:quota:{tk.queue(runtime_id(flow_id))}".encode()]) == 2  # for the watch


def test_publish_all_writes_every_tenant(hub) -> None:
    other = hub.new_tenant("Other")
    hub.bus.redis.delete(*(f"hub:{{{runtime_id(t)}}}:quota" for t in (hub.tenant_id, other)))
    assert quotas.publish_all(hub.db, hub.bus.redis, DEFAULTS) >= 2
    seen = QuotaStore(hub.bus.redis).read([runtime_id(other)])
    assert seen[runtime_id(other)].max_concurrent_steps == 8
