"""The egress allow list hub administrators edit: validated, stored, audited, and in force on running workers
without a restart."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.errors import PermissionDeniedError, ValidationError
from app.services import egress
from app.storage.models import AuditEvent
from app.storage.scoping import system_session
from runtime.net.egress_store import KEY
from tests.http_server import LocalHTTPServer
from tests.runtime.conftest import START, node


@pytest.fixture
def server():
    with LocalHTTPServer() as running:
        yield running


def test_an_administrator_allows_an_internal_host_and_a_running_worker_follows(hub, server) -> None:
    flow_id = hub.flow(
        [START, node("call", "http", "request", fields={"method": "GET", "url": f"{server.url}/echo"},
                     settings={"retry": {"max_attempts": 1}})],
        [{"source": "start", "target": "call"}],
    )  # fmt: skip
    hub.bus.redis.delete(KEY)
    refused = hub.run_to_end(flow_id, {})
    assert refused.status == "failed" and "127.0.0.1" in (refused.error or "")
    egress.update_egress(hub.db, hub.bus.redis, "127.0.0.1\n*.corp.example", actor_user_id=None,
                         actor_is_superuser=True)  # fmt: skip
    hub.workers[0].housekeeping()  # its next round (every second in a hub; not waited for here)
    allowed = hub.run_to_end(flow_id, {})  # the same worker, not restarted
    assert allowed.status == "succeeded", allowed.error
    assert egress.egress_view(hub.db, "10.9.0.0/16") == egress.EgressView(("10.9.0.0/16",),
                                                                         ("127.0.0.1", "*.corp.example"))  # fmt: skip
    with system_session(hub.db.sessions) as session:
        event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "hub.egress_changed")).one()
        assert event.details["after"] == ["127.0.0.1", "*.corp.example"]


def test_only_hub_administrators_change_it_and_bad_entries_are_named(hub) -> None:
    with pytest.raises(PermissionDeniedError, match="Only hub administrators"):
        egress.update_egress(hub.db, hub.bus.redis, "10.0.0.0/8", actor_user_id=uuid.uuid4(),
                             actor_is_superuser=False)  # fmt: skip
    with pytest.raises(
        ValidationError, match=r"'10\.0\.0\.0/40' is neither a host name nor an address or network"
    ):
        egress.update_egress(hub.db, hub.bus.redis, "api.corp.example\n10.0.0.0/40", actor_user_id=None,
                             actor_is_superuser=True)  # fmt: skip
    assert egress.egress_view(hub.db, "").added == ()  # nothing saved


def test_publish_heals_a_redis_that_lost_the_list(hub) -> None:
    egress.update_egress(hub.db, hub.bus.redis, "10.1.0.0/16", actor_user_id=None, actor_is_superuser=True)
    hub.bus.redis.delete(KEY)
    egress.publish(hub.db, hub.bus.redis)
    assert hub.bus.redis.get(KEY) == b"10.1.0.0/16"
