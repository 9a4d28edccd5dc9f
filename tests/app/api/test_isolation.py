"""The isolation matrix: every route of the API that names an object answers "not found" to another tenant's
token for this tenant's ids, and "forbidden" to a viewer for every change. The matrix is built from the served
routes themselves (the OpenAPI document), so a new route without an entry here fails the test instead of going unchecked."""

from __future__ import annotations

import re

import pytest

from app.services import catalog, credentials, runs, templates, webhooks
from app.services.webhooks import RouteDefaults
from tests.app.api.conftest import ApiWorld, unknown_ids
from tests.app.services.test_runs import BROKEN

DESCRIPTOR = {"title": "Tenant Widget", "version": "1.0.0", "docker_image": "example/widget:1",
              "actions": {"ping": {"title": "Ping", "main": "./ping.js"}}}  # fmt: skip

# A valid body for each change, so that the answer is about the caller, never about the body.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/api/v1/flows"): {"name": "copy"},
    ("PATCH", "/api/v1/flows/{flow_id}"): {"name": "renamed"},
    ("PUT", "/api/v1/flows/{flow_id}/draft"): {"graph": {"nodes": [], "edges": []}, "lock_version": 1},
    ("POST", "/api/v1/flows/{flow_id}/versions"): {"note": "n"},
    ("POST", "/api/v1/flows/{flow_id}/runs"): {"data": {"id": 1}},
    ("POST", "/api/v1/runs/{run_id}/replay"): {"from_failed_step": True},
    ("POST", "/api/v1/components"): {"descriptor": DESCRIPTOR},
    ("POST", "/api/v1/credentials"): {"name": "n", "kind": "api_key", "values": {"key": "x"}},
    ("PATCH", "/api/v1/credentials/{credential_id}"): {"name": "renamed"},
    ("PUT", "/api/v1/flows/{flow_id}/webhooks/settings"): {"settings": {"mode": "async"}},
    ("POST", "/api/v1/templates"): {"flow_id": None},  # filled with tenant A's flow
    ("POST", "/api/v1/templates/import"): {"document": {"format": "integration-hub.template/1", "graph": {}}},
    ("POST", "/api/v1/templates/{template_id}/instantiate"): {"leave_unmapped": True},
    ("POST", "/api/v1/flows/import"): {"document": {"format": "integration-hub.template/1", "graph": {}}},
}


def _routes(world: ApiWorld) -> list[tuple[str, str]]:
    """Every operation of the served OpenAPI document."""
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    return sorted((method.upper(), path) for path, operations in paths.items() for method in operations)


@pytest.fixture
def tenant_a(world: ApiWorld) -> dict[str, str]:
    """One object of every kind in tenant A, by the name of the path parameter that addresses it."""
    hub = world.hub
    flow_id = hub.flow(*BROKEN)
    webhooks.create_url(hub.db, hub.bus, hub.components, world.tenant_a, flow_id, "production",
                        RouteDefaults(public_base_url="http://hub.test"))  # fmt: skip
    run = hub.run_to_end(flow_id, {"id": 7})
    [letter] = runs.list_dead_letters(hub.bus, world.tenant_a, flow_id)
    credential = credentials.create_credential(
        hub.db, world.vault, hub.components, world.tenant_a,
        world.users["owner_a"], name="Key", kind="api_key", values={"key": "k-123"},
    )  # fmt: skip
    component = catalog.import_descriptor(hub.db, DESCRIPTOR, name="tenant-widget", tenant_id=world.tenant_a)
    template = templates.save_flow_as_template(
        hub.db, world.vault, world.tenant_a, world.users["owner_a"], flow_id
    )
    return {"flow_id": str(flow_id), "run_id": str(run.id), "dead_letter_id": letter.id,
            "credential_id": str(credential.id), "component_id": str(component.component_id),
            "template_id": str(template.id), "number": "1", "kind": "production"}  # fmt: skip


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        assert name in ids, f"the isolation matrix has no object for {{{name}}} in {path}: add one"
        return ids[name]

    return re.sub(r"\{(\w+)\}", one, path)


def _call(world: ApiWorld, method: str, path: str, ids: dict[str, str], token: str):
    body = BODIES.get((method, path))
    if body is not None and "flow_id" in body:  # an id in the body: tenant A's too
        body = {**body, "flow_id": ids["flow_id"]}
    return world.client.request(method, _fill(path, ids), json=body, headers=world.headers(token))


def test_every_route_that_names_an_object_hides_it_from_another_tenant(world: ApiWorld, tenant_a) -> None:
    token_b = world.token("owner_b", world.tenant_b)
    checked = 0
    for method, path in _routes(world):
        if "{" not in path:
            continue
        answer = _call(world, method, path, tenant_a, token_b)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
        assert answer.json()["code"] == "not_found", (method, path, answer.text)
        checked += 1
    assert checked >= 25
    # Routes that take tenant A's id in the body instead of the path.
    for method, path in [(m, p) for (m, p), body in BODIES.items() if "flow_id" in body]:
        answer = _call(world, method, path, tenant_a, token_b)
        assert answer.status_code == 404, (method, path, answer.text)
    # And lists asked for tenant A's objects by id find nothing.
    for path in (
        f"/api/v1/runs?flow_id={tenant_a['flow_id']}",
        f"/api/v1/dead-letters?flow_id={tenant_a['flow_id']}",
    ):
        answer = world.client.get(path, headers=world.headers(token_b))
        assert answer.status_code == 200 and tenant_a["flow_id"] not in answer.text, path
    lists = [
        "/api/v1/flows",
        "/api/v1/runs",
        "/api/v1/dead-letters",
        "/api/v1/credentials",
        "/api/v1/components",
    ]
    for path in lists:
        answer = world.client.get(path, headers=world.headers(token_b))
        assert answer.status_code == 200, (path, answer.text)
        assert not any(value in answer.text for value in tenant_a.values() if len(value) > 8), path


def test_a_viewer_is_forbidden_every_change(world: ApiWorld, tenant_a) -> None:
    token = world.token("viewer_a", world.tenant_a)
    changes = [(m, p) for m, p in _routes(world) if m != "GET"]
    assert len(changes) >= 20
    for method, path in changes:
        answer = _call(world, method, path, tenant_a, token)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
        assert answer.json()["code"] == "forbidden"
    # What only editors see in the UI (secrets' metadata, URLs that start flows) is theirs in the API too.
    for path in ("/api/v1/credentials", f"/api/v1/flows/{tenant_a['flow_id']}/webhooks"):
        assert world.client.get(path, headers=world.headers(token)).status_code == 403
    # Reading the rest is what a viewer is for.
    for path in ("/api/v1/flows", f"/api/v1/flows/{tenant_a['flow_id']}", f"/api/v1/runs/{tenant_a['run_id']}",
                 f"/api/v1/runs/{tenant_a['run_id']}/logs", "/api/v1/components"):  # fmt: skip
        assert world.client.get(path, headers=world.headers(token)).status_code == 200, path


def test_the_owner_reaches_every_object_of_their_tenant(world: ApiWorld, tenant_a) -> None:
    """The other side of the matrix: the 404s above come from the tenant boundary, not from wrong ids."""
    token = world.token("owner_a", world.tenant_a)
    for method, path in _routes(world):
        if method != "GET" or "{" not in path:
            continue
        answer = world.client.get(_fill(path, tenant_a), headers=world.headers(token))
        assert answer.status_code == 200, (path, answer.text)


def test_ids_that_never_existed_are_not_found_too(world: ApiWorld) -> None:
    token = world.token("owner_a", world.tenant_a)
    ids = unknown_ids()
    for method, path in _routes(world):
        if "{" in path:
            answer = _call(world, method, path, ids, token)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.text)


def test_credential_ids_of_another_tenant_are_refused_wherever_a_body_names_them(
    world: ApiWorld, tenant_a
) -> None:
    """A flow's graph and a template's credential mapping carry credential ids: tenant A's mean nothing in B."""
    token_b = world.headers(world.token("owner_b", world.tenant_b))
    theirs = tenant_a["credential_id"]
    graph = {"nodes": [{"id": "hook", "component": "webhook", "function": "receive"},
                       {"id": "call", "component": "http", "function": "request", "credential_id": theirs,
                        "fields": {"url": "https://example.com"}}],
             "edges": [{"source": "hook", "target": "call"}]}  # fmt: skip
    made = world.client.post("/api/v1/flows", json={"name": "Planted", "graph": graph}, headers=token_b)
    assert made.status_code == 422 and made.json()["code"] == "flow_invalid", made.text
    own = world.client.post("/api/v1/flows", json={"name": "Own"}, headers=token_b).json()
    saved = world.client.put(f"/api/v1/flows/{own['id']}/draft", json={"graph": graph, "lock_version": own["lock_version"]},
                             headers=token_b)  # fmt: skip
    assert saved.status_code == 422 and saved.json()["code"] == "flow_invalid", saved.text
    document = {"format": "integration-hub.template/1", "name": "T",
                "graph": {**graph, "nodes": [graph["nodes"][0], {**graph["nodes"][1], "credential_id": None,
                                                                  "credential_needed": {"kind": "api_key"}}]}}  # fmt: skip
    template = world.client.post(
        "/api/v1/templates/import", json={"document": document}, headers=token_b
    ).json()
    used = world.client.post(f"/api/v1/templates/{template['id']}/instantiate", json={"credentials": {"call": theirs}},
                             headers=token_b)  # fmt: skip
    assert used.status_code == 404, used.text
