"""A flow's concurrency limit set in its document reaches the runtime at publish and the routers with its
routes: a webhook beyond the limit waits, or is answered 429."""

from __future__ import annotations

import pytest

from app.errors import ValidationError
from app.runtime_ids import runtime_id
from app.services import flows
from runtime.bus.keys import TenantKeys
from runtime.coordinator import usage
from tests.app.services.test_webhooks import WEBHOOK_FLOW, Site, site  # noqa: F401 - the fixture


def _limited_flow(site: Site, **concurrency):  # noqa: F811
    nodes, edges = WEBHOOK_FLOW
    graph = {"nodes": nodes, "edges": edges, "concurrency": concurrency}
    flow = flows.create_flow(site.hub.db, site.hub.tenant_id, "limited", graph)
    flows.publish_flow(site.hub.db, site.hub.bus, site.hub.components, site.hub.tenant_id, flow.id)
    url = site.url(flow.id)
    site.activate(flow.id)
    return flow.id, url


def test_a_webhook_beyond_a_skip_limit_gets_429(site: Site) -> None:  # noqa: F811
    _, url = _limited_flow(site, limit=1, when_exceeded="skip")
    first = site.http.post(url, json={"n": 1})
    second = site.http.post(url, json={"n": 2})
    assert first.status_code == 202
    assert second.status_code == 429, second.text
    assert "limit of 1 runs at once" in second.json()["message"]
    # What the flow's owners asked for: not held against the flow by the bad-citizen watch.
    tk = TenantKeys(runtime_id(site.hub.tenant_id))
    bucket = site.hub.bus.redis.hgetall(tk.usage(usage.minute()))
    assert not [f for f in bucket if f.startswith(b"strike:")]


def test_a_webhook_beyond_a_queue_limit_is_accepted_and_waits(site: Site) -> None:  # noqa: F811
    flow_id, url = _limited_flow(site, limit=1)
    assert [site.http.post(url, json={"n": i}).status_code for i in range(3)] == [202, 202, 202]
    tk = TenantKeys(runtime_id(site.hub.tenant_id))
    assert site.hub.bus.redis.llen(tk.flow_waiting(runtime_id(flow_id))) == 2
    site.hub.drive(lambda: site.hub.bus.backlog(tk.tenant) == 0)  # the waiting runs ran, one after the other


def test_republishing_without_a_limit_lets_the_waiting_runs_go(site: Site) -> None:  # noqa: F811
    flow_id, url = _limited_flow(site, limit=1)
    for i in range(3):
        site.http.post(url, json={"n": i})
    nodes, edges = WEBHOOK_FLOW
    lock = flows._fresh(site.hub.db, site.hub.tenant_id, flow_id).lock_version
    flows.save_draft(
        site.hub.db, site.hub.tenant_id, flow_id, {"nodes": nodes, "edges": edges}, expected_lock_version=lock
    )
    flows.publish_flow(site.hub.db, site.hub.bus, site.hub.components, site.hub.tenant_id, flow_id)
    tk = TenantKeys(runtime_id(site.hub.tenant_id))
    assert site.hub.bus.redis.llen(tk.flow_waiting(runtime_id(flow_id))) == 0


def test_a_limit_below_one_is_refused_naming_it(site: Site) -> None:  # noqa: F811
    nodes, edges = WEBHOOK_FLOW
    flow = flows.create_flow(site.hub.db, site.hub.tenant_id, "bad", {"nodes": nodes, "edges": edges,
                                                                     "concurrency": {"limit": 0}})  # fmt: skip
    with pytest.raises(ValidationError, match=r"concurrency\.limit"):
        flows.publish_flow(site.hub.db, site.hub.bus, site.hub.components, site.hub.tenant_id, flow.id)
