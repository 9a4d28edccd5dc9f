"""Synchronous replies, the timeout path, durability of accepted requests, a Redis outage and rotation."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import redis as redis_lib

from app.processes.embedded_redis import EmbeddedRedis
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.router.app import RouterConfig, WebhookRouter
from runtime.router.routes import Route, RouteRegistry, new_token
from tests.runtime.conftest import Harness, node, queued
from tests.runtime.router.conftest import WEBHOOK, Hooks
from tests.runtime.router.server import running, serve

REPLY = node(
    "answer",
    "reply",
    "reply",
    fields={"status": "201", "body": "{'got': body.id, 'path': path}", "headers": {"X-Flow": "yes"}},
)
SHAPE = node("shape", "jsonata", "transform", fields={"expression": "$"})


def two_step_reply(hooks: Hooks, **settings) -> Route:
    return hooks.route(
        [WEBHOOK, SHAPE, REPLY],
        [{"source": "start", "target": "shape"}, {"source": "shape", "target": "answer"}],
        mode="sync",
        **settings,
    )


def test_sync_mode_answers_with_the_reply_steps_status_headers_and_body(hooks: Hooks) -> None:
    route = two_step_reply(hooks)
    with running(hooks.harness.worker()):
        response = hooks.client.post(hooks.url(route, "/x"), json={"id": 5})
    assert response.status_code == 201, response.text
    assert response.json() == {"got": 5, "path": "/x"}
    assert response.headers["x-flow"] == "yes"
    assert len(response.headers["x-hub-run-id"]) == 32


def test_sync_mode_timeout_is_504_with_the_run_id_and_the_run_goes_on(hooks: Hooks) -> None:
    route = hooks.route(
        [WEBHOOK, node("wait", "delay", "delay", fields={"seconds": 1}), REPLY],
        [{"source": "start", "target": "wait"}, {"source": "wait", "target": "answer"}],
        mode="sync",
        timeout_ms=200,
    )
    with running(hooks.harness.worker()):
        started = time.monotonic()
        response = hooks.client.post(hooks.url(route), json={"id": 1})
        assert time.monotonic() - started < 1.0
        assert response.status_code == 504
        run_id = response.json()["run_id"]
        assert response.json()["error"] == "timeout"
        deadline = time.monotonic() + 10
        while run_id not in hooks.harness.finished() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert hooks.harness.finished()[run_id]["status"] == "succeeded"


def test_sync_mode_without_a_reply_step_answers_when_the_run_ends(hooks: Hooks) -> None:
    route = hooks.route(mode="sync")
    with running(hooks.harness.worker()):
        response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_sync_mode_failed_run_is_500_without_details(hooks: Hooks) -> None:
    route = hooks.route(
        [WEBHOOK, node("bad", "flaky", "broken")], [{"source": "start", "target": "bad"}], mode="sync"
    )
    with running(hooks.harness.worker()):
        response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 500
    assert response.json()["error"] == "run_failed"
    assert "broken" not in response.text  # the step's error stays in the run's records


def test_concurrent_sync_requests_each_get_their_own_reply(hooks: Hooks) -> None:
    route = two_step_reply(hooks)

    def call(i: int) -> tuple[int, dict]:
        response = httpx.post(hooks.url(route), json={"id": i}, timeout=10)
        return response.status_code, response.json()

    with running(hooks.harness.worker()), concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(64)))
    assert [body["got"] for _, body in results] == list(range(64))
    assert {status for status, _ in results} == {201}


def test_accepted_requests_survive_until_a_worker_runs_them(hooks: Hooks) -> None:
    """A burst answered 202 while no worker runs: every one of them runs once a worker starts."""
    route = hooks.route()

    def call(i: int) -> httpx.Response:
        return httpx.post(hooks.url(route), json={"n": i}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(call, range(120)))
    assert {r.status_code for r in responses} == {202}
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 120
    hooks.harness.drain(lambda: run_ids <= set(hooks.harness.finished()))
    assert {hooks.harness.finished()[r]["status"] for r in run_ids} == {"succeeded"}


def test_rotate_makes_the_old_url_404_at_once(hooks: Hooks) -> None:
    route = hooks.route()
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202  # cached by the router now
    new = Route(new_token(), route.tenant, route.flow, route.version, route.step)
    hooks.registry.put(new, accepting=True)
    hooks.registry.remove(route.tenant, route.token)
    assert hooks.client.post(hooks.url(route), json={}).status_code == 404
    assert hooks.client.post(hooks.url(new), json={}).status_code == 202


def test_a_revoked_url_is_404_even_before_the_router_hears_of_it(hooks: Hooks) -> None:
    route = hooks.route()
    assert hooks.client.post(hooks.url(route), json={}).status_code == 202
    # Only the state key goes (no announcement): the script still refuses.
    hooks.registry.redis.delete(TenantKeys(route.tenant).hook_state(route.token))
    assert hooks.client.post(hooks.url(route), json={}).status_code == 404


def test_a_redis_outage_is_503_never_202_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        client = redis_lib.Redis.from_url(url)
        bus = StreamsBus(client)
        harness = Harness(bus, builtin_registry())
        version = harness.publish([WEBHOOK], [], flow_id="f1")
        route = Route(new_token(), harness.tenant, "f1", version, "start")
        RouteRegistry(bus).put(route, accepting=True)
        router = WebhookRouter(RouterConfig(redis_url=url, redis_timeout_s=1))
        with serve(router) as base, httpx.Client(timeout=10) as http:
            hook = f"{base}/hook/{route.token}"
            assert http.post(hook, json={"n": 1}).status_code == 202
            server.stop()
            statuses = [http.post(hook, json={"n": i}).status_code for i in range(5)]
            assert set(statuses) == {503}
            response = http.post(hook, json={})
            assert response.headers["retry-after"] == "1" and response.json()["error"] == "unavailable"
            server.start()  # same port, password and files: the accepted request is still there
            deadline = time.monotonic() + 10
            while (
                status := http.post(hook, json={"n": 9}).status_code
            ) != 202 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert status == 202
        tk = TenantKeys(harness.tenant)
        client = redis_lib.Redis.from_url(url)
        entries = queued(client, tk.tenant)
        assert len(entries) == 2  # the one before and the one after the outage, nothing from during it
        assert int(client.get(tk.backlog)) == 2
        client.close()
    finally:
        server.stop()


def test_reply_headers_that_could_split_the_response_are_dropped(hooks: Hooks) -> None:
    bad = node("answer", "reply", "reply", fields={
        "status": "200", "body": "'ok'",
        "headers": {"X-Good": "yes", "X-Bad": "a\r\nSet-Cookie: evil=1", "Bad Name": "x", "X-Ctl": "a\x01"},
    })  # fmt: skip
    route = hooks.route([WEBHOOK, bad], [{"source": "start", "target": "answer"}], mode="sync")
    with running(hooks.harness.worker()):
        response = hooks.client.post(hooks.url(route), json={})
    assert response.status_code == 200 and response.text == "ok"
    assert response.headers["x-good"] == "yes"
    assert (
        "x-bad" not in response.headers
        and "set-cookie" not in response.headers
        and "x-ctl" not in response.headers
    )
