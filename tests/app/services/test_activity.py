"""The admin's view of every tenant and the same figures for Prometheus."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import orjson
import pytest
import redis

from app.api.health import readiness
from app.api.metrics import allowed
from app.errors import PermissionDeniedError
from app.recorder import step_metrics
from app.runtime_ids import runtime_id
from app.services import activity
from app.storage.db import Database
from app.storage.models import Tenant
from app.storage.scoping import system_session
from runtime.bus.keys import TenantKeys
from runtime.coordinator import usage
from tests.app.hub_runtime import HubRuntime
from tests.runtime.conftest import LINEAR

LOG_FLOW = ([{"id": "start", "component": "manual", "function": "start"},
             {"id": "log", "component": "log", "function": "log"}],
            [{"source": "start", "target": "log"}])  # fmt: skip


def test_each_tenants_queue_and_worker_time_are_shown(hub: HubRuntime) -> None:
    idle = hub.new_tenant("Idle")
    flow_id = hub.flow(*LOG_FLOW)
    runs = [hub.start(flow_id, {"n": i}) for i in range(3)]
    workers, rows = activity.activity(hub.db, hub.bus.redis, is_superuser=True)
    busy = next(r for r in rows if r.figures.tenant == runtime_id(hub.tenant_id))
    assert busy.figures.backlog == 3 and busy.figures.usage.steps_minute == 0
    hub.drive(lambda: all(hub.finished(run) for run in runs))
    workers, rows = activity.activity(hub.db, hub.bus.redis, is_superuser=True)
    busy = next(r for r in rows if r.figures.tenant == runtime_id(hub.tenant_id))
    assert busy.figures.backlog == 0
    assert busy.figures.usage.steps_minute >= 3 and busy.figures.usage.worker_ms_minute > 0
    assert rows[0] is busy  # busiest first
    assert any(r.figures.tenant == runtime_id(idle) for r in rows)
    assert workers >= 1


def test_only_hub_administrators_see_every_tenant(hub: HubRuntime) -> None:
    with pytest.raises(PermissionDeniedError, match="Only hub administrators"):
        activity.activity(hub.db, hub.bus.redis, is_superuser=False)


def test_prometheus_text_names_tenants_by_slug(hub: HubRuntime) -> None:
    tenant = runtime_id(hub.tenant_id)
    hub.bus.ensure_tenant(tenant)
    pipe = hub.bus.redis.pipeline()
    usage.record(pipe, tenant, 1500.0, 7)
    pipe.hincrby(
        TenantKeys(tenant).usage(usage.minute()), "throttled:rate", 4
    )  # as the ingress script counts
    pipe.set(TenantKeys(tenant).backlog, 12)
    pipe.execute()
    text = activity.metrics(hub.db, hub.bus.redis).decode()
    slug = text.split('hub_tenant_backlog{tenant="', 1)[1].split('"', 1)[0]
    assert slug.startswith("acme")
    assert f'hub_tenant_backlog{{tenant="{slug}"}} 12' in text
    assert f'hub_tenant_worker_seconds_last_hour{{tenant="{slug}"}} 1.5' in text
    assert f'hub_tenant_throttled_last_hour{{tenant="{slug}",reason="rate"}} 4' in text
    assert "# TYPE hub_workers gauge" in text


@pytest.mark.parametrize(
    ("client", "headers", "token", "expected"),
    [
        (("127.0.0.1", 5000), [], "", True),
        (("::1", 5000), [], "", True),
        (("10.0.0.8", 5000), [], "", False),  # not on this machine, and no token configured
        (("10.0.0.8", 5000), [(b"authorization", b"Bearer s3cret")], "s3cret", True),
        (("127.0.0.1", 5000), [(b"authorization", b"Bearer wrong")], "s3cret", False),
        (("127.0.0.1", 5000), [], "s3cret", False),  # with a token, loopback needs it too
        (("127.0.0.1", 5000), [(b"x-forwarded-for", b"203.0.113.9")], "", False),  # through a local proxy
        (("127.0.0.1", 5000), [(b"forwarded", b"for=203.0.113.9")], "", False),
        (None, [], "", False),
    ],
)
def test_who_may_read_the_metrics(client, headers, token, expected) -> None:
    assert allowed({"client": client, "headers": headers}, token) is expected


def test_flows_held_back_by_the_watch_are_listed_worst_first(hub: HubRuntime) -> None:
    from app.control.standing import Standing, standing_key

    calm = hub.flow(*LOG_FLOW)
    bad = hub.flow(*LOG_FLOW)
    tenant = runtime_id(hub.tenant_id)
    hub.bus.ensure_tenant(tenant)
    for flow_id, level in ((calm, 1), (bad, 3)):
        doc = Standing(level=level, reason="too many refused requests", since="2026-11-29T10:00:00+00:00")
        hub.bus.redis.hset(standing_key(tenant), runtime_id(flow_id), orjson.dumps(dataclasses.asdict(doc)))
    rows = activity.held_back(hub.db, hub.bus.redis, is_superuser=True)
    assert [r.standing.label for r in rows] == ["suspended", "low priority"]
    assert rows[0].flow == "test flow" and rows[0].tenant.startswith("Acme")
    with pytest.raises(PermissionDeniedError):
        activity.held_back(hub.db, hub.bus.redis, is_superuser=False)


def test_step_executions_are_counted_by_tenant_component_and_outcome(hub: HubRuntime) -> None:
    flow_id = hub.flow(*LINEAR)
    for n in range(3):
        hub.run_to_end(flow_id, {"price": n, "qty": 2})
    text = activity.metrics(hub.db, hub.bus.redis).decode()
    with system_session(hub.db.sessions) as session:
        slug = session.get(Tenant, hub.tenant_id).slug
    labels = f'tenant="{slug}",component="jsonata"'
    assert f'hub_step_executions_total{{{labels},status="succeeded"}} 3' in text
    assert f"hub_step_duration_seconds_count{{{labels}}} 3" in text
    assert f'hub_step_duration_seconds_bucket{{{labels},le="+Inf"}} 3' in text
    buckets = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(f"hub_step_duration_seconds_bucket{{{labels}")]  # fmt: skip
    assert buckets == sorted(buckets)  # cumulative
    assert "# TYPE hub_step_duration_seconds histogram" in text


def test_readiness_names_the_dependency_that_is_down(hub: HubRuntime) -> None:
    assert asyncio.run(readiness(hub.db, hub.bus.redis))[0] == 200
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    status, body = asyncio.run(readiness(hub.db, down))
    assert (status, body["status"]) == (503, "unavailable")
    # Named either way: refused at once, or still retrying when the check's time is up.
    assert body["problems"] in (["redis: ConnectionError"], ["redis: no answer within 2.0 s"])
    broken = Database.connect("postgresql+psycopg://hub@127.0.0.1:1/nothing-listens-here")
    status, body = asyncio.run(readiness(broken, hub.bus.redis))
    assert (status, body["problems"]) == (503, ["database: OperationalError"])


def test_step_counts_keep_any_component_name(hub: HubRuntime) -> None:
    tenant = uuid.uuid4()
    rows = [{"tenant_id": tenant, "component": "acme|odd name", "status": "dead", "duration_ms": 3.0}]
    step_metrics.count_steps(hub.bus.redis, rows)
    figures = step_metrics.read_figures(hub.bus.redis)
    assert figures.executions[(tenant.hex, "acme|odd name", "dead")] == 1
    assert figures.count[(tenant.hex, "acme|odd name")] == 1
