"""The served OpenAPI document: it describes the flow document's JSON schema and every operation, and property-based
requests generated from it (schemathesis) never make the hub answer with a server error."""

from __future__ import annotations

import os
import traceback

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.app.api.conftest import ApiWorld


def test_the_document_is_served_with_the_flow_schema_and_bearer_auth(world: ApiWorld) -> None:
    answer = world.client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    assert {"FlowGraph", "Node", "Edge", "ErrorBody"} <= set(schemas)
    assert schemas["Node"]["properties"]["id"]["pattern"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) >= 25 and all(op.get("summary") for op in operations)


@pytest.fixture
def owner_token(world: ApiWorld) -> str:
    # Objects to find: a published flow, so that some generated requests reach past "not found".
    world.hub.flow([{"id": "start", "component": "manual", "function": "start"}], [])
    return world.token("owner_a", world.tenant_a)


def test_no_generated_request_makes_a_server_error(world: ApiWorld, owner_token: str) -> None:
    """Every operation of the document, each with examples generated from its parameters and bodies (fixed
    seed: the same requests on every run). On PostgreSQL when the run has one (it is the stricter store: it found
    the NUL characters), else on SQLite: once is enough for the time it takes."""
    if os.environ.get("HUB_TEST_DATABASE_URL") and world.hub.db.engine.dialect.name == "sqlite":
        pytest.skip("run on PostgreSQL in this run")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", world.api)
    headers = {"Authorization": f"Bearer {owner_token}"}
    failures: dict[str, str] = {}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def probe(case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            probe()
        except Exception as exc:
            failures[operation.label] = "".join(traceback.format_exception_only(exc))[:3000]
        checked += 1
    assert checked >= 25
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
