"""The webhook endpoint through a real HTTP client against a running router: what goes into the trigger
message, and every status code a caller can get."""

from __future__ import annotations

import orjson
import pytest

from runtime.bus.keys import TenantKeys
from runtime.router.routes import Route, new_token
from tests.runtime.conftest import node, queued
from tests.runtime.router.conftest import WEBHOOK, Hooks


def first_message(hooks: Hooks, run_id: str) -> dict:
    """The trigger step's input as the worker recorded it."""
    hooks.harness.drain(lambda: run_id in hooks.harness.finished())
    [event] = hooks.harness.step_events(run_id, "start")
    return event


def trigger_body(hooks: Hooks) -> dict:
    [(_, fields)] = queued(hooks.harness.bus.redis, hooks.harness.tenant)
    return orjson.loads(fields[b"m"])


def test_post_json_answers_202_with_the_run_id_and_the_run_gets_the_whole_request(hooks: Hooks) -> None:
    route = hooks.route()
    response = hooks.client.post(
        hooks.url(route, "/orders/42"),
        params={"a": "1", "b": ["2", "3"]},
        json={"id": 7},
        headers={"X-Thing": "x"},
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    envelope = trigger_body(hooks)
    assert envelope["r"] == run_id and envelope["f"] == route.flow and envelope["v"] == route.version
    data = envelope["b"]["data"]
    assert data["method"] == "POST"
    assert data["path"] == "/orders/42"
    assert data["query"] == {"a": "1", "b": ["2", "3"]}
    assert data["headers"]["x-thing"] == "x"
    assert data["body"] == {"id": 7}
    hooks.harness.drain(lambda: run_id in hooks.harness.finished())
    assert hooks.harness.finished()[run_id]["status"] == "succeeded"
    [started] = [e for e in hooks.harness.events() if e["t"] == "run.started"]
    assert started["trigger"] == "webhook" and started["test"] is False


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_every_method_starts_the_flow(hooks: Hooks, method: str) -> None:
    route = hooks.route()
    response = hooks.client.request(method, hooks.url(route), params={"q": "v"})
    assert response.status_code == 202
    assert trigger_body(hooks)["b"]["data"]["method"] == method


def test_head_starts_the_flow_and_answers_without_a_body(hooks: Hooks) -> None:
    route = hooks.route()
    response = hooks.client.head(hooks.url(route))
    assert response.status_code == 202 and response.content == b""
    assert trigger_body(hooks)["b"]["data"]["method"] == "HEAD"


def test_other_methods_get_405_with_allow(hooks: Hooks) -> None:
    route = hooks.route()
    response = hooks.client.request("OPTIONS", hooks.url(route))
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json()["error"] == "method"


def test_form_text_and_binary_bodies(hooks: Hooks) -> None:
    route = hooks.route()
    redis = hooks.harness.bus.redis
    tk = TenantKeys(hooks.harness.tenant)

    hooks.client.post(hooks.url(route), data={"name": "Ada", "tags": ["a", "b"]})
    hooks.client.post(
        hooks.url(route), content="héllo", headers={"content-type": "text/plain; charset=utf-8"}
    )
    binary = bytes(range(256)) * 4
    hooks.client.post(hooks.url(route), content=binary, headers={"content-type": "image/png"})
    bodies = [orjson.loads(f[b"m"])["b"] for _, f in queued(redis, tk.tenant)]
    assert bodies[0]["data"]["body"] == {"name": "Ada", "tags": ["a", "b"]}
    assert bodies[1]["data"]["body"] == "héllo"
    assert bodies[2]["data"]["body"] is None
    ref = bodies[2]["attachments"]["body"]
    assert ref["content_type"] == "image/png" and ref["size"] == len(binary)
    assert redis.getrange(ref["ref"], ref["offset"], ref["offset"] + ref["size"] - 1) == binary


def test_multipart_fields_and_files(hooks: Hooks) -> None:
    route = hooks.route()
    response = hooks.client.post(
        hooks.url(route),
        data={"title": "report"},
        files={
            "file": ("r.csv", b"a,b\n1,2\n", "text/csv"),
            "logo": ("l.bin", b"\x00\x01", "application/octet-stream"),
        },
    )
    assert response.status_code == 202
    body = trigger_body(hooks)["b"]
    assert body["data"]["body"] == {"title": "report"}
    files = body["attachments"]
    assert files["file"]["filename"] == "r.csv" and files["file"]["size"] == 8
    redis = hooks.harness.bus.redis
    logo = files["logo"]
    assert redis.getrange(logo["ref"], logo["offset"], logo["offset"] + 1) == b"\x00\x01"


def test_a_large_body_travels_aside_and_reaches_the_step(hooks: Hooks) -> None:
    route = hooks.route()
    big = {"items": ["x" * 100] * 2000}  # ~200 KiB, over the inline limit
    run_id = hooks.client.post(hooks.url(route), json=big).json()["run_id"]
    envelope = trigger_body(hooks)
    assert "b" not in envelope and envelope["br"]
    hooks.harness.drain(lambda: run_id in hooks.harness.finished())
    assert hooks.harness.finished()[run_id]["status"] == "succeeded"


def test_malformed_json_is_400_and_starts_nothing(hooks: Hooks) -> None:
    route = hooks.route()
    response = hooks.client.post(
        hooks.url(route), content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request" and "JSON" in response.json()["message"]
    assert len(queued(hooks.harness.bus.redis, hooks.harness.tenant)) == 0


def test_unknown_tokens_are_404(hooks: Hooks) -> None:
    hooks.route()
    for token in (new_token(), "short", "a" * 42 + "!"):
        response = hooks.client.post(f"{hooks.base_url}/hook/{token}", json={})
        assert response.status_code == 404, token
        assert response.json() == {"error": "not_found", "message": "unknown webhook"}


def test_an_inactive_flow_is_410(hooks: Hooks) -> None:
    route = hooks.route(accepting=False)
    response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 410
    assert response.json()["error"] == "inactive"
    hooks.registry.set_accepting(route.tenant, route.token, True)
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    hooks.registry.set_accepting(route.tenant, route.token, False)
    assert hooks.client.post(hooks.url(route), json={}).status_code == 410


def test_body_limit_413_from_the_declared_length_and_from_a_chunked_body(hooks: Hooks) -> None:
    route = hooks.route(max_body=1000)
    assert hooks.client.post(hooks.url(route), content=b"x" * 1001).status_code == 413

    def chunks():
        for _ in range(20):
            yield b"y" * 100

    response = hooks.client.post(hooks.url(route), content=chunks())
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert hooks.client.post(hooks.url(route), content=b"x" * 1000).status_code == 202


def test_flow_rate_limit_429_with_retry_after(hooks: Hooks) -> None:
    route = hooks.route(flow_rps=1, flow_burst=3)
    statuses = [hooks.client.post(hooks.url(route), json={}).status_code for _ in range(5)]
    assert statuses[:3] == [202, 202, 202] and statuses[3:] == [429, 429]
    response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    # Refused requests wrote nothing.
    assert len(queued(hooks.harness.bus.redis, hooks.harness.tenant)) == 3


def test_tenant_rate_limit_spans_the_tenants_flows(hooks: Hooks) -> None:
    one = hooks.route(tenant_rps=1, tenant_burst=2)
    two = hooks.route(tenant_rps=1, tenant_burst=2)
    assert hooks.client.post(hooks.url(one), json={}).status_code == 202
    assert hooks.client.post(hooks.url(two), json={}).status_code == 202
    assert hooks.client.post(hooks.url(one), json={}).status_code == 429
    assert hooks.client.post(hooks.url(two), json={}).status_code == 429


def test_backlog_quota_is_503_and_writes_nothing(hooks: Hooks) -> None:
    route = hooks.route()
    tk = TenantKeys(hooks.harness.tenant)
    hooks.harness.bus.redis.set(tk.backlog, 1000)
    response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 503 and response.json()["error"] == "backlog_full"
    assert len(queued(hooks.harness.bus.redis, tk.tenant)) == 0


def test_rejections_are_counted_in_metrics(hooks: Hooks) -> None:
    route = hooks.route(accepting=False)
    hooks.client.post(hooks.url(route), json={})
    hooks.client.post(f"{hooks.base_url}/hook/{new_token()}", json={})
    text = hooks.client.get(f"{hooks.base_url}/metrics").text
    assert 'hub_webhook_rejections_total{reason="inactive"} 1.0' in text
    assert 'hub_webhook_rejections_total{reason="not_found"} 1.0' in text
    assert 'hub_webhook_requests_total{status="410"} 1.0' in text


def test_errors_never_carry_a_stack_trace(hooks: Hooks, monkeypatch) -> None:
    route = hooks.route()

    def boom(*_a, **_k):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("runtime.router.app.parse_body", boom)
    response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 500
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert response.json()["error"] == "internal"


def test_a_new_version_is_used_by_the_next_request(hooks: Hooks) -> None:
    """Publishing changes the route's revision; a router holding the old one reloads it."""
    route = hooks.route()
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    new_version = hooks.harness.publish(
        [WEBHOOK, node("log", "log", "log")], [{"source": "start", "target": "log"}], flow_id=route.flow
    )
    route.version, route.rev = new_version, route.rev + 1
    # Write the state first and announce nothing: only the script's revision check can catch it.
    hooks.registry.redis.set(TenantKeys(route.tenant).hook_state(route.token), f"{route.rev}:1")
    hooks.registry.redis.set(f"hub:hook:{route.token}", route.to_document())
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    redis = hooks.harness.bus.redis
    versions = [orjson.loads(f[b"m"])["v"] for _, f in queued(redis, route.tenant)]
    assert versions[-1] == new_version


def test_route_changes_only_move_forward(hooks: Hooks) -> None:
    """A slow writer holding an older revision cannot put it back over a newer one."""
    route = hooks.route()
    old = Route.from_document(route.token, route.to_document())
    newer = hooks.registry.put(Route.from_document(route.token, route.to_document()))
    assert newer.rev == route.rev + 1
    hooks.registry._put_document(keys=[f"hub:hook:{route.token}"], args=[old.to_document(), old.rev])
    hooks.registry._put_state(keys=[TenantKeys(route.tenant).hook_state(route.token)], args=[old.rev, "1"])
    assert hooks.registry.get(route.token).rev == newer.rev
    assert hooks.registry.state(route.tenant, route.token) == f"{newer.rev}:1"
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202


def test_a_put_keeps_the_accepting_flag(hooks: Hooks) -> None:
    route = hooks.route(accepting=True)
    hooks.registry.put(route)
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    assert not hooks.registry.set_accepting(route.tenant, new_token(), True)  # unknown route: nothing created


def test_the_tenants_own_backlog_quota_travels_with_the_route(hooks: Hooks) -> None:
    route = hooks.route(max_backlog=2)
    statuses = [hooks.client.post(hooks.url(route), json={}).status_code for _ in range(3)]
    assert statuses == [202, 202, 503]


def test_redis_forgetting_the_ingress_script_costs_nothing(hooks: Hooks) -> None:
    route = hooks.route()
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    hooks.harness.bus.redis.script_flush()
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    assert len(queued(hooks.harness.bus.redis, hooks.harness.tenant)) == 2


def test_a_multipart_part_in_an_unknown_charset_is_400(hooks: Hooks) -> None:
    route = hooks.route()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=klingon\r\n\r\n'
        b"x\r\n--b--\r\n"
    )
    response = hooks.client.post(
        hooks.url(route), content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 400 and "charset" in response.json()["message"]


def test_the_ingress_survives_an_unexpected_failure(hooks: Hooks, monkeypatch) -> None:
    from runtime.router.ingress import Ingress

    route = hooks.route()
    original = Ingress._command
    calls = {"n": 0}

    def flaky(self, tenant, items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("unexpected")
        return original(self, tenant, items)

    monkeypatch.setattr(Ingress, "_command", flaky)
    assert hooks.client.post(hooks.url(route), json={}).status_code == 503
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202


def test_a_router_without_redis_answers_503_at_once(harness) -> None:
    import time as clock

    import httpx

    from runtime.router.app import RouterConfig, WebhookRouter
    from tests.http_server import free_port
    from tests.runtime.router.server import serve

    router = WebhookRouter(RouterConfig(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=1))
    with serve(router) as base, httpx.Client(timeout=10) as client:
        started = clock.monotonic()
        statuses = [client.post(f"{base}/hook/{new_token()}", json={}).status_code for _ in range(10)]
        assert set(statuses) == {503}
        assert clock.monotonic() - started < 6


def test_liveness_and_readiness_for_probes(hooks: Hooks) -> None:
    assert hooks.client.get(f"{hooks.base_url}/healthz").json() == {"status": "ok"}
    assert hooks.client.get(f"{hooks.base_url}/readyz").json() == {"status": "ready"}
