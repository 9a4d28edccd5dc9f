"""The HTTP request component against a real server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from runtime.components.builtin.http_request import request
from runtime.net.egress import EgressPolicy, EgressRefusedError
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message
from tests.http_server import LocalHTTPServer
from tests.runtime.conftest import START, node


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as srv:
        yield srv


LOCAL = EgressPolicy.parse("127.0.0.1")  # the test server's address, allowed as an administrator would


def _context(credential: dict | None = None, egress: EgressPolicy = LOCAL) -> StepContext:
    return StepContext("t", "f", "r", "s", "m", 1, credential=credential, egress=egress)


def test_json_post_with_query_and_headers(server) -> None:
    out = request(
        Message(data={"name": "Ada"}),
        {"method": "post", "url": f"{server.url}/echo", "query": {"page": 2}, "headers": {"X-Trace": "abc"}},
        _context(),
    )
    assert out.data["status"] == 200
    echoed = out.data["body"]
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"page": "2"}
    assert echoed["headers"]["x-trace"] == "abc"
    assert echoed["body"] == '{"name":"Ada"}'


def test_form_body_from_jsonata_and_basic_auth(server) -> None:
    out = request(
        Message(data={"a": 1}),
        {"method": "PUT", "url": f"{server.url}/echo", "body_type": "form", "body": "{'x': a + 1}"},
        _context({"kind": "basic", "username": "u", "password": "p"}),
    )
    echoed = out.data["body"]
    assert echoed["body"] == "x=2"
    assert echoed["headers"]["authorization"] == "Basic dTpw"


def test_text_response_and_bearer(server) -> None:
    out = request(Message(), {"url": f"{server.url}/text"}, _context({"kind": "bearer", "token": "tok"}))
    assert out.data["body"] == "plain words"


def test_errors_are_classified(server) -> None:
    with pytest.raises(StepError) as server_error:
        request(Message(), {"url": f"{server.url}/flaky"}, _context())
    assert server_error.value.retryable and "503" in str(server_error.value)
    with pytest.raises(PermanentStepError, match="answered 404"):
        request(Message(), {"url": f"{server.url}/missing"}, _context())
    with pytest.raises(StepError, match=r"timed out after 0\.2 s"):
        request(Message(), {"url": f"{server.url}/slow", "timeout_s": 0.2}, _context())
    with pytest.raises(StepError, match="failed: ConnectError"):
        request(Message(), {"url": "http://127.0.0.1:1/nothing"}, _context())
    with pytest.raises(PermanentStepError, match="must start with http"):
        request(Message(), {"url": "ftp://example.com"}, _context())
    with pytest.raises(PermanentStepError, match="unknown HTTP method"):
        request(Message(), {"url": f"{server.url}/echo", "method": "BREW"}, _context())


def test_internal_addresses_are_refused_unless_allowed(server) -> None:
    with pytest.raises(EgressRefusedError, match=r"internal address steps may not call.*HUB_EGRESS_ALLOW"):
        request(Message(), {"url": f"{server.url}/echo"}, _context(egress=EgressPolicy()))
    assert server.hits["/echo"] == 0
    localhost = f"http://localhost:{server.server_address[1]}/echo"
    with pytest.raises(EgressRefusedError, match="localhost resolves to"):
        request(Message(), {"url": localhost}, _context(egress=EgressPolicy()))
    out = request(Message(), {"url": localhost}, _context(egress=EgressPolicy.parse("localhost")))
    assert out.data["body"]["headers"]["host"] == f"localhost:{server.server_address[1]}"


def test_a_redirect_into_the_internal_network_is_refused(server) -> None:
    url = f"{server.url}/redirect?to=http://10.255.255.1/secret"
    with pytest.raises(EgressRefusedError, match=r"10\.255\.255\.1"):
        request(Message(), {"url": url}, _context())
    followed = request(Message(), {"url": f"{server.url}/redirect?to=/text"}, _context())
    assert followed.data["body"] == "plain words"


def test_5xx_is_retried_by_the_worker_until_it_succeeds(harness, server) -> None:
    harness.worker_defaults["egress"] = LOCAL
    version = harness.publish(
        [
            START,
            node(
                "call",
                "http",
                "request",
                fields={"url": f"{server.url}/flaky"},
                settings={"retry": {"max_attempts": 4, "base_delay_s": 0.01}},
            ),
        ],
        [{"source": "start", "target": "call"}],
    )
    finished = harness.run_to_end(version, {})
    assert finished["status"] == "succeeded"
    statuses = [e["status"] for e in harness.step_events(finished["run"], "call")]
    assert statuses == ["retrying", "retrying", "succeeded"]
    assert server.hits["/flaky"] == 3


def test_credentials_do_not_follow_a_redirect_to_another_origin(server) -> None:
    with LocalHTTPServer() as other:
        url = f"{server.url}/redirect?to={other.url}/echo"
        out = request(
            Message(),
            {"url": url, "headers": {"X-Trace": "t1"}},
            _context({"kind": "api_key", "header": "X-Api-Key", "key": "secret"}),
        )
        echoed = out.data["body"]["headers"]
        assert "x-api-key" not in echoed and "authorization" not in echoed
        assert echoed["x-trace"] == "t1"  # the flow's own headers go on, as browsers and httpx do
        basic = request(
            Message(), {"url": url}, _context({"kind": "basic", "username": "u", "password": "p"})
        )
        assert "authorization" not in basic.data["body"]["headers"]
    same_origin = request(
        Message(), {"url": f"{server.url}/redirect?to=/echo"}, _context({"kind": "bearer", "token": "tok"})
    )
    assert same_origin.data["body"]["headers"]["authorization"] == "Bearer tok"


def test_userinfo_in_the_url_is_refused(server) -> None:
    with pytest.raises(PermanentStepError, match="user name or password in the URL"):
        request(Message(), {"url": f"http://u:p@127.0.0.1:{server.server_address[1]}/echo"}, _context())


def test_the_tenants_outbound_rate_quota_paces_its_http_steps(harness, server) -> None:
    from runtime.coordinator.quotas import QuotaStore, TenantQuota

    harness.worker_defaults["egress"] = LOCAL
    QuotaStore(harness.bus.redis).write(harness.tenant, TenantQuota(outbound_rps=5))
    version = harness.publish(
        [START, node("call", "http", "request", fields={"url": f"{server.url}/echo"})],
        [{"source": "start", "target": "call"}],
    )
    began = time.monotonic()
    runs = [harness.start(version, {"n": i}) for i in range(10)]
    harness.drain(lambda: all(run in harness.finished() for run in runs))
    elapsed = time.monotonic() - began
    assert all(harness.finished()[run]["status"] == "succeeded" for run in runs)
    # A second's worth (5) at once, then one every 200 ms: the tenth no sooner than ~1 s after the first.
    assert elapsed >= 0.9, f"10 requests in {elapsed:.2f} s with a quota of 5 a second"
    assert server.hits["/echo"] == 10


def test_a_request_that_would_wait_too_long_for_the_outbound_quota_rebounds(redis) -> None:
    from runtime.coordinator.outbound import OutboundPacer
    from runtime.steps.errors import Rebound

    pace = OutboundPacer(redis, "t", rps=1, max_wait_s=0.1)
    pace()  # the one allowed now
    with pytest.raises(Rebound, match="quota of 1 outbound requests per second is used up") as refused:
        pace()
    assert refused.value.delay_s >= 0.5


def test_a_request_counts_once_against_the_outbound_rate_not_again_for_its_redirects(server) -> None:
    asked = []
    egress = EgressPolicy(LOCAL.allowed, pace=lambda: asked.append(1))
    out = request(Message(), {"url": f"{server.url}/redirect?to=/text"}, _context(egress=egress))
    assert out.data["body"] == "plain words"
    assert len(asked) == 1
