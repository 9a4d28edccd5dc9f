"""Webhook URLs of flows through the services and a real router: one click, stable production URLs, rotation,
protection with a vault secret, and the test URL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from app.config import MasterKey
from app.errors import NotFoundError, ValidationError
from app.runtime_ids import runtime_id
from app.services import flows, webhooks
from app.services.webhooks import RouteDefaults
from app.storage.models import AuditEvent, Credential
from app.storage.scoping import tenant_session
from app.vault.secret_source import VaultSecrets
from app.vault.store import Vault
from runtime.router.app import RouterConfig, WebhookRouter
from runtime.router.protection import signature
from runtime.router.routes import RouteRegistry
from tests.app.hub_runtime import HubRuntime
from tests.runtime.router.server import serve

WEBHOOK_FLOW = (
    [
        {"id": "hook", "component": "webhook", "function": "receive"},
        {"id": "log", "component": "log", "function": "log"},
    ],
    [{"source": "hook", "target": "log"}],
)


@dataclass
class Site:
    hub: HubRuntime
    vault: Vault
    defaults: RouteDefaults
    http: httpx.Client

    def flow(self, publish: bool = True) -> uuid.UUID:
        nodes, edges = WEBHOOK_FLOW
        flow = flows.create_flow(self.hub.db, self.hub.tenant_id, "orders", {"nodes": nodes, "edges": edges})
        if publish:
            flows.publish_flow(self.hub.db, self.hub.bus, self.hub.components, self.hub.tenant_id, flow.id)
        return flow.id

    def url(self, flow_id: uuid.UUID, kind: str = "production") -> str:
        h = self.hub
        return webhooks.create_url(h.db, h.bus, h.components, h.tenant_id, flow_id, kind, self.defaults).url

    def activate(self, flow_id: uuid.UUID) -> None:
        flows.activate_flow(self.hub.db, self.hub.bus, self.hub.components, self.hub.tenant_id, flow_id)

    def deactivate(self, flow_id: uuid.UUID) -> None:
        flows.deactivate_flow(self.hub.db, self.hub.bus, self.hub.components, self.hub.tenant_id, flow_id)

    def post(self, url: str, body: object = None, **kw) -> httpx.Response:
        return self.http.post(url, json=body if body is not None else {"n": 1}, **kw)


@pytest.fixture
def site(hub: HubRuntime, redis_url: str) -> Iterator[Site]:
    vault = Vault([MasterKey(key_id="test", key=os.urandom(32))])
    router = WebhookRouter(RouterConfig(redis_url=redis_url), VaultSecrets(hub.db, lambda: vault))
    with serve(router) as base, httpx.Client(timeout=10) as http:
        yield Site(hub, vault, RouteDefaults(public_base_url=base), http)


def test_one_click_gives_an_unguessable_full_url_and_the_same_one_afterwards(site: Site) -> None:
    flow_id = site.flow()
    url = site.url(flow_id)
    assert url.startswith(site.defaults.public_base_url + "/hook/")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert site.url(flow_id) == url
    assert site.url(flow_id, "test") != url


def test_the_production_url_works_only_while_the_flow_is_active(site: Site) -> None:
    flow_id = site.flow()
    url = site.url(flow_id)
    assert site.post(url).status_code == 410
    site.activate(flow_id)
    response = site.post(url)
    assert response.status_code == 202
    run_id = uuid.UUID(response.json()["run_id"])
    site.hub.drive(lambda: site.hub.finished(run_id))
    run = site.hub.run(run_id)
    assert run.status == "succeeded" and run.trigger_kind == "webhook" and not run.test_mode
    site.deactivate(flow_id)
    assert site.post(url).status_code == 410


def test_a_url_before_the_first_publish_is_410_and_starts_working_once_published_and_active(
    site: Site,
) -> None:
    flow_id = site.flow(publish=False)
    url = site.url(flow_id)
    assert site.post(url).status_code == 410
    with pytest.raises(ValidationError, match="no published version"):
        site.activate(flow_id)
    flows.publish_flow(site.hub.db, site.hub.bus, site.hub.components, site.hub.tenant_id, flow_id)
    site.activate(flow_id)
    assert site.post(url).status_code == 202


def test_the_production_url_is_stable_across_deactivate_activate_error_new_versions_and_restarts(
    site: Site, redis_url: str
) -> None:
    h = site.hub
    flow_id = site.flow()
    url = site.url(flow_id)
    site.activate(flow_id)
    site.deactivate(flow_id)
    site.activate(flow_id)
    assert site.post(url).status_code == 202
    # A restart after an error: the flow was marked failed, and is activated again.
    with tenant_session(h.db.sessions, h.tenant_id) as session:
        flows.get_flow(session, flow_id).status = "error"
    site.activate(flow_id)
    assert site.post(url).status_code == 202
    # A new version: the same URL starts it.
    version = flows.publish_flow(h.db, h.bus, h.components, h.tenant_id, flow_id)
    first = site.post(url).json()["run_id"]
    started = [
        e
        for _, f in h.bus.redis.xrange(f"hub:{{{runtime_id(h.tenant_id)}}}:events")
        for e in orjson.loads(f[b"e"])
    ]
    assert {e["version"] for e in started if e.get("run") == first} == {runtime_id(version.id)}
    # A restart of the hub: a fresh router (empty cache), and the routes rebuilt from the database.
    with serve(WebhookRouter(RouterConfig(redis_url=redis_url))) as other:
        assert site.post(url.replace(site.defaults.public_base_url, other)).status_code == 202
    h.bus.redis.delete(f"hub:hook:{url.rsplit('/', 1)[1]}")  # Redis lost the route...
    count = webhooks.sync_all_routes(h.db, h.bus, lambda _tenant: h.components, site.defaults)
    assert count == 1
    assert site.post(url).status_code == 202  # ...and start-up brought it back


def test_rotate_stops_the_old_url_at_once_and_revoke_stops_it_for_good(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    old = site.url(flow_id)
    site.activate(flow_id)
    assert site.post(old).status_code == 202
    new = webhooks.rotate_url(
        h.db, h.bus, h.components, h.tenant_id, flow_id, "production", site.defaults
    ).url
    assert new != old
    assert site.post(old).status_code == 404
    assert site.post(new).status_code == 202
    webhooks.revoke_url(h.db, h.bus, h.tenant_id, flow_id, "production")
    assert site.post(new).status_code == 404
    with pytest.raises(NotFoundError):
        webhooks.rotate_url(h.db, h.bus, h.components, h.tenant_id, flow_id, "production", site.defaults)
    # One click again: a brand-new URL.
    assert site.url(flow_id) not in (old, new)
    with tenant_session(h.db.sessions, h.tenant_id) as session:
        actions = [e.action for e in session.query(AuditEvent)]
    assert {"webhook.created", "webhook.rotated", "webhook.revoked"} <= set(actions)


def test_a_duplicated_flow_gets_its_own_url(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    url = site.url(flow_id)
    copy = flows.duplicate_flow(h.db, h.tenant_id, flow_id)
    assert copy.id != flow_id and copy.name == "orders (copy)"
    flows.publish_flow(h.db, h.bus, h.components, h.tenant_id, copy.id)
    copy_url = site.url(copy.id)
    assert copy_url != url


def test_another_tenant_cannot_touch_the_flows_urls(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    other = h.new_tenant("Other")
    with pytest.raises(NotFoundError):
        webhooks.create_url(h.db, h.bus, h.components, other, flow_id, "production", site.defaults)
    site.url(flow_id)
    with pytest.raises(NotFoundError):
        webhooks.revoke_url(h.db, h.bus, other, flow_id, "production")


def test_hmac_protection_with_the_secret_kept_in_the_vault(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    url = site.url(flow_id)
    site.activate(flow_id)
    settings = {"auth": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, settings,
                             site.defaults, secret={"secret": "whsec-1"})  # fmt: skip
    body = b'{"paid": true}'
    headers = {"content-type": "application/json"}
    good = {**headers, "X-Hub-Signature-256": "sha256=" + signature("whsec-1", "sha256", body)}
    assert site.http.post(url, content=body, headers=headers).status_code == 401
    assert site.http.post(url, content=body, headers=good).status_code == 202
    # The secret is encrypted at rest, not in the webhook's settings or the route.
    with tenant_session(h.db.sessions, h.tenant_id) as session:
        [credential] = session.query(Credential).all()
        assert b"whsec-1" not in credential.ciphertext
    assert b"whsec-1" not in h.bus.redis.get(f"hub:hook:{url.rsplit('/', 1)[1]}")
    # A new secret replaces the old one at once (the route's revision changes, the router reloads it).
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, settings,
                             site.defaults, secret={"secret": "whsec-2"})  # fmt: skip
    assert site.http.post(url, content=body, headers=good).status_code == 401
    # Keeping the protection without a new secret keeps the stored one.
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id,
                             {**settings, "mode": "async"}, site.defaults)  # fmt: skip
    newer = {**headers, "X-Hub-Signature-256": "sha256=" + signature("whsec-2", "sha256", body)}
    assert site.http.post(url, content=body, headers=newer).status_code == 202


@pytest.mark.parametrize(
    ("settings", "secret", "message"),
    [
        ({"auth": "hmac"}, {"secret": "x"}, "name the header"),
        ({"auth": "hmac", "header": "bad header"}, {"secret": "x"}, "not a valid HTTP header name"),
        ({"auth": "basic"}, None, "enter the secret"),
        ({"auth": "basic"}, {"username": "u"}, "enter the password"),
        ({"mode": "eventually"}, None, "mode"),
        ({"timeout_s": 0}, None, "timeout_s"),
        ({"surprise": 1}, None, "surprise"),
    ],
)
def test_bad_settings_are_refused_with_a_message_and_change_nothing(
    site: Site, settings, secret, message
) -> None:
    h = site.hub
    flow_id = site.flow()
    site.url(flow_id)
    with pytest.raises(ValidationError, match=message):
        webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, settings,
                                 site.defaults, secret=secret)  # fmt: skip
    view = webhooks.webhooks_of(h.db, h.bus, h.tenant_id, flow_id, site.defaults)
    assert view.settings == webhooks.WebhookSettings()


def test_sync_mode_set_in_the_settings(site: Site) -> None:
    h = site.hub
    nodes = [
        {"id": "hook", "component": "webhook", "function": "receive"},
        {
            "id": "answer",
            "component": "reply",
            "function": "reply",
            "fields": {"status": "200", "body": "{'ok': body.n}"},
        },
    ]
    flow = flows.create_flow(
        h.db, h.tenant_id, "sync", {"nodes": nodes, "edges": [{"source": "hook", "target": "answer"}]}
    )
    flows.publish_flow(h.db, h.bus, h.components, h.tenant_id, flow.id)
    url = site.url(flow.id)
    site.activate(flow.id)
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow.id,
                             {"mode": "sync", "timeout_s": 5}, site.defaults)  # fmt: skip
    from tests.runtime.router.server import running

    with running(h.worker()):
        response = site.post(url, {"n": 3})
    assert response.status_code == 200 and response.json() == {"ok": 3}


def test_the_test_url_captures_the_next_request_and_runs_the_draft_in_test_mode(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()  # inactive
    test_url = site.url(flow_id, "test")
    assert site.post(test_url).status_code == 410  # not listening
    view, until = webhooks.listen_for_test(h.db, h.bus, h.components, h.tenant_id, flow_id, site.defaults)
    assert view.url == test_url and until > time.time() * 1000
    assert webhooks.webhooks_of(h.db, h.bus, h.tenant_id, flow_id, site.defaults).listening_until_ms == until
    response = site.post(test_url, {"order": 9}, params={"src": "designer"})
    assert response.status_code == 202 and response.json()["test"] is True
    captured = webhooks.captured_request(h.bus, h.tenant_id, flow_id)
    assert captured["request"]["body"] == {"order": 9} and captured["request"]["query"] == {"src": "designer"}
    run_id = uuid.UUID(response.json()["run_id"])
    assert captured["run_id"] == runtime_id(run_id)
    h.drive(lambda: h.finished(run_id))
    run = h.run(run_id)
    assert run.test_mode and run.status == "succeeded"
    # One request per listening window.
    assert site.post(test_url).status_code == 410
    assert webhooks.webhooks_of(h.db, h.bus, h.tenant_id, flow_id, site.defaults).listening_until_ms is None


def test_the_test_url_refuses_a_flow_that_does_not_start_with_a_webhook(site: Site) -> None:
    h = site.hub
    flow = flows.create_flow(
        h.db,
        h.tenant_id,
        "manual",
        {"nodes": [{"id": "s", "component": "manual", "function": "start"}], "edges": []},
    )
    with pytest.raises(ValidationError, match="not a webhook trigger"):
        webhooks.listen_for_test(h.db, h.bus, h.components, h.tenant_id, flow.id, site.defaults)


def test_protection_accepts_only_webhook_secrets_of_this_tenant(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    site.url(flow_id)
    with tenant_session(h.db.sessions, h.tenant_id) as session:
        other = site.vault.store(session, h.tenant_id, name="CRM key", kind="api_key", values={"key": "k"})
        other_id = str(other.id)
    settings = {"auth": "header", "header": "X-Token", "credential_id": other_id}
    with pytest.raises(ValidationError, match="not a webhook secret"):
        webhooks.update_settings(
            h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, settings, site.defaults
        )
    # Naming it while giving a new secret does not overwrite it either.
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, settings, site.defaults,
                             secret={"token": "t-1"})  # fmt: skip
    with tenant_session(h.db.sessions, h.tenant_id) as session:
        assert site.vault.reveal(session, session.get(Credential, uuid.UUID(other_id))) == {"key": "k"}
    # Another tenant's webhook secret is not found at all.
    flow_b = flows.create_flow(
        h.db, h.new_tenant("B"), "b", {"nodes": WEBHOOK_FLOW[0], "edges": WEBHOOK_FLOW[1]}
    )
    mine = webhooks.webhooks_of(h.db, h.bus, h.tenant_id, flow_id, site.defaults).settings.credential_id
    with pytest.raises(ValidationError, match="enter the secret"):
        webhooks.update_settings(h.db, h.bus, h.components, site.vault, flow_b.tenant_id, flow_b.id,
                                 {**settings, "credential_id": mine}, site.defaults)  # fmt: skip


def test_a_revoked_url_cannot_come_back_through_a_late_write(site: Site) -> None:
    """A sync that read the hook as live before the revoke committed writes its route after it: still 404."""
    h = site.hub
    flow_id = site.flow()
    url = site.url(flow_id)
    site.activate(flow_id)
    token = url.rsplit("/", 1)[1]
    stale = RouteRegistry(h.bus).get(token)
    webhooks.revoke_url(h.db, h.bus, h.tenant_id, flow_id, "production")
    RouteRegistry(h.bus).put(stale, accepting=True)  # the late write
    assert site.post(url).status_code == 404
    # Redis lost the tombstone and the late write came back: start-up removes it again.
    h.bus.redis.delete(f"hub:{{{runtime_id(h.tenant_id)}}}:hook:{token}")
    RouteRegistry(h.bus).put(stale, accepting=True)
    assert site.post(url).status_code == 202
    webhooks.sync_all_routes(h.db, h.bus, lambda _tenant: h.components, site.defaults)
    assert site.post(url).status_code == 404


def test_listening_keeps_its_draft_when_settings_change_and_the_draft_expires(site: Site) -> None:
    h = site.hub
    flow_id = site.flow()
    test_url = site.url(flow_id, "test")
    webhooks.listen_for_test(h.db, h.bus, h.components, h.tenant_id, flow_id, site.defaults)
    route = RouteRegistry(h.bus).get(test_url.rsplit("/", 1)[1])
    assert 0 < h.bus.redis.ttl(f"hub:{{{runtime_id(h.tenant_id)}}}:version:{route.version}") <= 86_400
    webhooks.update_settings(h.db, h.bus, h.components, site.vault, h.tenant_id, flow_id, {"mode": "async",
                             "max_body_kb": 10}, site.defaults)  # fmt: skip
    assert site.post(test_url).status_code == 202  # still listening, with the draft
    webhooks.listen_for_test(h.db, h.bus, h.components, h.tenant_id, flow_id, site.defaults)
    assert site.http.post(test_url, content=b"x" * 20_000).status_code == 413  # the new limit applies
