from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from runtime.router.app import RouterConfig, WebhookRouter
from runtime.router.routes import HookAuth, Route, RouteRegistry, new_token
from tests.runtime.conftest import START, Harness, node
from tests.runtime.router.server import serve

WEBHOOK = node("start", "webhook", "receive")


class DictSecrets:
    """The vault, as far as the router is concerned: tenant + reference -> values."""

    def __init__(self) -> None:
        self.values_by_ref: dict[tuple[str, str], dict[str, str]] = {}
        self.reads = 0

    async def values(self, tenant: str, ref: str) -> dict[str, str]:
        self.reads += 1
        return self.values_by_ref[(tenant, ref)]


@dataclass
class Hooks:
    harness: Harness
    registry: RouteRegistry
    secrets: DictSecrets
    base_url: str
    client: httpx.Client
    router: WebhookRouter
    routes: list[Route] = field(default_factory=list)

    def route(
        self, nodes: list[dict] | None = None, edges: list[dict] | None = None, **settings: Any
    ) -> Route:
        """Publish a flow (default: webhook -> log) and give it an active production URL."""
        nodes = nodes or [WEBHOOK, node("log", "log", "log")]
        edges = (
            edges
            if edges is not None
            else [{"source": "start", "target": nodes[1]["id"]}]
            if len(nodes) > 1
            else []
        )
        flow = settings.pop("flow", uuid.uuid4().hex)
        version = self.harness.publish(nodes, edges, flow_id=flow)
        accepting = settings.pop("accepting", True)
        route = Route(new_token(), self.harness.tenant, flow, version, "start", **settings)
        self.registry.put(route, accepting=accepting)
        self.routes.append(route)
        return route

    def url(self, route: Route, suffix: str = "") -> str:
        return f"{self.base_url}/hook/{route.token}{suffix}"

    def secret(self, ref: str, **values: str) -> str:
        self.secrets.values_by_ref[(self.harness.tenant, ref)] = values
        return ref


@pytest.fixture(params=["native", "asgi"])
def hooks(request: pytest.FixtureRequest, harness: Harness, redis, redis_url: str) -> Iterator[Hooks]:
    """Each test runs against the router's own server (`hub router`) and as ASGI under uvicorn (the web port)."""
    secrets = DictSecrets()
    router = WebhookRouter(RouterConfig(redis_url=redis_url, max_backlog=1000), secrets)
    with serve(router, request.param) as base_url, httpx.Client(timeout=10) as client:
        yield Hooks(harness, RouteRegistry(harness.bus), secrets, base_url, client, router)


__all__ = ["START", "WEBHOOK", "HookAuth", "Hooks"]
