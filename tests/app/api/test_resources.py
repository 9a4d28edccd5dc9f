"""The API's resources end to end over a real database, Redis and in-process workers: a flow designed, published,
run and replayed; credentials whose secrets never come back; webhook URLs; components; errors as JSON."""

from __future__ import annotations

import uuid

import pytest

from app.services import credentials
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from tests.app.api.conftest import ApiWorld
from tests.app.services.test_runs import BROKEN

GRAPH = {
    "nodes": [
        {"id": "start", "component": "manual", "function": "start"},
        {
            "id": "shape",
            "component": "jsonata",
            "function": "transform",
            "fields": {"expression": "{'total': price * qty}"},
        },
        {"id": "note", "component": "log", "function": "log"},
    ],
    "edges": [{"source": "start", "target": "shape"}, {"source": "shape", "target": "note"}],
}
CANARY = "canary-5b0f3e9a-do-not-leak"


@pytest.fixture
def owner(world: ApiWorld) -> dict[str, str]:
    return world.headers(world.token("owner_a", world.tenant_a))


def test_a_flow_is_created_published_run_and_replayed(world: ApiWorld, owner) -> None:
    client = world.client
    created = client.post("/api/v1/flows", json={"name": "Orders", "graph": GRAPH}, headers=owner)
    assert created.status_code == 201, created.text
    flow = created.json()
    assert flow["status"] == "inactive" and flow["version"] is None and flow["trigger"] == {"kind": "manual"}
    assert [n["id"] for n in flow["graph"]["nodes"]] == ["start", "shape", "note"]
    flow_id = flow["id"]

    stale = client.put(
        f"/api/v1/flows/{flow_id}/draft", json={"graph": GRAPH, "lock_version": 99}, headers=owner
    )
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    broken = {**GRAPH, "edges": [{"source": "start", "target": "nowhere"}]}
    saved = client.put(f"/api/v1/flows/{flow_id}/draft", json={"graph": broken, "lock_version": flow["lock_version"]},
                       headers=owner)  # fmt: skip
    assert saved.status_code == 200 and saved.json()["problems"], saved.text
    refused = client.post(f"/api/v1/flows/{flow_id}/versions", json={}, headers=owner)
    assert (
        refused.status_code == 422 and refused.json()["code"] == "flow_invalid" and refused.json()["problems"]
    )
    saved = client.put(f"/api/v1/flows/{flow_id}/draft",
                       json={"graph": GRAPH, "lock_version": saved.json()["lock_version"]}, headers=owner)  # fmt: skip
    assert saved.json()["problems"] == []
    published = client.post(f"/api/v1/flows/{flow_id}/versions", json={"note": "first"}, headers=owner)
    assert published.status_code == 201 and published.json()["number"] == 1
    versions = client.get(f"/api/v1/flows/{flow_id}/versions", headers=owner).json()
    assert [(v["number"], v["note"], v["current"]) for v in versions] == [(1, "first", True)]
    assert client.get(f"/api/v1/flows/{flow_id}/versions/1", headers=owner).json()["graph"]["nodes"]
    assert client.get(f"/api/v1/flows/{flow_id}/versions/2", headers=owner).status_code == 404

    started = client.post(
        f"/api/v1/flows/{flow_id}/runs", json={"data": {"price": 2, "qty": 3}}, headers=owner
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    world.hub.drive(
        lambda: client.get(f"/api/v1/runs/{run_id}", headers=owner).json()["run"]["finished_at"] is not None
    )
    detail = client.get(f"/api/v1/runs/{run_id}", headers=owner).json()
    assert detail["run"]["status"] == "succeeded" and detail["version"] == 1
    steps = client.get(f"/api/v1/runs/{run_id}/steps", headers=owner).json()
    assert [s["step_id"] for s in steps] == ["start", "shape", "note"] and steps[1]["output"] == [
        {"total": 6}
    ]
    logs = client.get(f"/api/v1/runs/{run_id}/logs", headers=owner).json()
    assert (
        logs
        and client.get(f"/api/v1/runs/{run_id}/logs?after_id={logs[-1]['id']}", headers=owner).json() == []
    )
    page = client.get(f"/api/v1/runs?flow_id={flow_id}&status=succeeded", headers=owner).json()
    assert [r["id"] for r in page["runs"]] == [run_id] and page["older"] is None

    replay = client.post(f"/api/v1/runs/{run_id}/replay", json={}, headers=owner)
    assert replay.status_code == 202, replay.text
    from_failed = client.post(f"/api/v1/runs/{run_id}/replay", json={"from_failed_step": True}, headers=owner)
    assert from_failed.status_code == 422 and "no failed step" in from_failed.json()["message"].lower()

    assert client.post(f"/api/v1/flows/{flow_id}/activate", headers=owner).json()["status"] == "starting"
    assert world.enqueued == [(world.tenant_a, uuid.UUID(flow_id))]
    renamed = client.patch(f"/api/v1/flows/{flow_id}", json={"name": "Orders v2"}, headers=owner).json()
    assert renamed["name"] == "Orders v2"
    copy = client.post(f"/api/v1/flows/{flow_id}/duplicate", headers=owner)
    assert copy.status_code == 201 and copy.json()["name"] == "Orders v2 (copy)"
    assert client.delete(f"/api/v1/flows/{copy.json()['id']}", headers=owner).status_code == 204
    assert client.get(f"/api/v1/flows/{copy.json()['id']}", headers=owner).status_code == 404


def test_dead_letters_are_listed_replayed_and_discarded(world: ApiWorld, owner) -> None:
    flow_id = world.hub.flow(*BROKEN)
    world.hub.run_to_end(flow_id, {"id": 1})
    world.hub.run_to_end(flow_id, {"id": 2})
    letters = world.client.get(f"/api/v1/dead-letters?flow_id={flow_id}", headers=owner).json()
    assert len(letters) == 2 and {d["step_id"] for d in letters} == {"call"}
    assert (
        world.client.post(f"/api/v1/dead-letters/{letters[0]['id']}/replay", headers=owner).status_code == 202
    )
    assert world.client.delete(f"/api/v1/dead-letters/{letters[1]['id']}", headers=owner).status_code == 204
    gone = world.client.delete(f"/api/v1/dead-letters/{letters[1]['id']}", headers=owner)
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    bad = world.client.delete("/api/v1/dead-letters/not-an-id", headers=owner)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


def _stored(world: ApiWorld, credential_id: str) -> dict:
    with tenant_session(world.hub.db.sessions, world.tenant_a) as session:
        return world.vault.reveal(session, session.get(Credential, uuid.UUID(credential_id)))


def test_credentials_never_return_secrets_and_a_patch_keeps_what_it_does_not_name(
    world: ApiWorld, owner
) -> None:
    values = {"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "bot",
              "password": CANARY, "from": "bot@example.com"}  # fmt: skip
    body = {"name": "Mail", "kind": "fields", "component_name": "email", "values": values}
    created = world.client.post("/api/v1/credentials", json=body, headers=owner)
    assert created.status_code == 201, created.text
    credential_id = created.json()["id"]
    for answer in (created, world.client.get(f"/api/v1/credentials/{credential_id}", headers=owner),
                   world.client.get("/api/v1/credentials", headers=owner)):  # fmt: skip
        assert CANARY not in answer.text and answer.status_code in (200, 201)
    assert created.json()["values"]["host"] == "smtp.example.com"

    renamed = world.client.patch(
        f"/api/v1/credentials/{credential_id}", json={"name": "Mail 2"}, headers=owner
    )
    assert renamed.json()["name"] == "Mail 2" and _stored(world, credential_id)["password"] == CANARY
    changed = world.client.patch(f"/api/v1/credentials/{credential_id}", json={"values": {"username": "robot"}},
                                 headers=owner)  # fmt: skip
    assert changed.status_code == 200 and CANARY not in changed.text
    stored = _stored(world, credential_id)
    assert (
        stored["username"] == "robot"
        and stored["password"] == CANARY
        and stored["host"] == "smtp.example.com"
    )

    wrong = world.client.post("/api/v1/credentials", json={**body, "name": "Other", "values": {"host": "x"}},
                              headers=owner)  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_fields" and wrong.json()["fields"]
    assert world.client.delete(f"/api/v1/credentials/{credential_id}", headers=owner).status_code == 204
    assert credentials.list_credentials(world.hub.db, world.tenant_a, world.users["owner_a"]) == []


def test_an_export_never_holds_a_secret_even_one_pasted_into_the_flow(world: ApiWorld, owner) -> None:
    world.client.post("/api/v1/credentials", json={"name": "Key", "kind": "api_key", "values": {"key": CANARY}},
                      headers=owner)  # fmt: skip
    graph = {**GRAPH, "nodes": [*GRAPH["nodes"][:2], {"id": "note", "component": "log", "function": "log",
                                                      "fields": {"message": f"token={CANARY}"}}]}  # fmt: skip
    flow_id = world.client.post(
        "/api/v1/flows", json={"name": "Leaky", "graph": graph}, headers=owner
    ).json()["id"]
    exported = world.client.get(f"/api/v1/flows/{flow_id}/export", headers=owner)
    assert exported.status_code == 200 and exported.json()["format"] == "integration-hub.flow/1"
    assert CANARY not in exported.text and "token=" in exported.text


def test_webhook_urls_are_made_rotated_and_revoked(world: ApiWorld, owner) -> None:
    flow_id = world.hub.flow([{"id": "start", "component": "webhook", "function": "receive"}], [])
    base = f"/api/v1/flows/{flow_id}/webhooks"
    made = world.client.post(f"{base}/production", headers=owner)
    assert made.status_code == 201 and made.json()["url"].startswith("http://hub.test/")
    assert world.client.post(f"{base}/production", headers=owner).json()["url"] == made.json()["url"]
    rotated = world.client.post(f"{base}/production/rotate", headers=owner).json()
    assert rotated["url"] != made.json()["url"]
    state = world.client.get(base, headers=owner).json()
    assert state["production"]["url"] == rotated["url"] and state["test"] is None
    settings = world.client.put(f"{base}/settings", json={"settings": {"mode": "sync", "timeout_s": 10}},
                                headers=owner)  # fmt: skip
    assert settings.status_code == 200 and settings.json()["settings"]["mode"] == "sync"
    bad = world.client.put(f"{base}/settings", json={"settings": {"mode": "later"}}, headers=owner)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"
    assert world.client.delete(f"{base}/production", headers=owner).status_code == 204
    assert world.client.get(base, headers=owner).json()["production"] is None
    again = world.client.delete(f"{base}/production", headers=owner)
    assert again.status_code == 404 and "no production URL" in again.json()["message"], again.text


def test_components_are_listed_imported_read_and_deleted(world: ApiWorld, owner) -> None:
    names = {c["name"] for c in world.client.get("/api/v1/components", headers=owner).json()}
    assert {"jsonata", "log", "webhook"} <= names
    descriptor = {"title": "Widget", "version": "2.0.0", "docker_image": "example/widget:2",
                  "actions": {"ping": {"title": "Ping", "main": "./ping.js"}}}  # fmt: skip
    imported = world.client.post("/api/v1/components", json={"name": "widget", "descriptor": descriptor},
                                 headers=owner)  # fmt: skip
    assert imported.status_code == 201, imported.text
    component_id = imported.json()["component_id"]
    read = world.client.get(f"/api/v1/components/{component_id}", headers=owner).json()
    assert read["scope"] == "tenant" and read["descriptor"]["title"] == "Widget"
    bad = world.client.post("/api/v1/components", json={"descriptor": {"title": 3}}, headers=owner)
    assert bad.status_code == 422 and bad.json()["message"]
    assert world.client.delete(f"/api/v1/components/{component_id}", headers=owner).status_code == 204


def test_every_error_is_json_with_a_code_and_a_message(world: ApiWorld, owner) -> None:
    for method, path, body, status in [
        ("GET", "/api/v1/nowhere", None, 404),
        ("DELETE", "/api/v1/flows", None, 405),
        ("POST", "/api/v1/flows", {"name": ""}, 422),
        ("POST", "/api/v1/flows", {"name": "x", "graph": {"nodes": [{"id": "bad id!"}]}}, 422),
        ("GET", "/api/v1/flows/not-a-uuid", None, 422),
        ("GET", "/api/v1/runs?limit=0", None, 422),
        ("GET", "/api/v1/runs?older_than=garbage", None, 422),
        ("GET", "/api/v1/flows?search=%00", None, 422),  # PostgreSQL keeps no NUL in text: refused up front
        ("POST", "/api/v1/flows", {"name": "a\u0000b"}, 422),
    ]:
        answer = world.client.request(method, path, json=body, headers=owner)
        assert answer.status_code == status, (path, answer.text)
        assert set(answer.json()) >= {"code", "message"} and answer.json()["message"], (path, answer.text)


def test_an_export_imported_into_another_tenant_asks_for_its_credentials(world: ApiWorld, owner) -> None:
    key = world.client.post("/api/v1/credentials", json={"name": "Shop", "kind": "api_key", "values": {"key": CANARY}},
                            headers=owner).json()  # fmt: skip
    graph = {"nodes": [{"id": "hook", "component": "webhook", "function": "receive"},
                       {"id": "call", "component": "http", "function": "request", "name": "Shop API",
                        "credential_id": key["id"], "fields": {"method": "GET", "url": "https://shop.example.com"}}],
             "edges": [{"source": "hook", "target": "call"}]}  # fmt: skip
    flow_id = world.client.post(
        "/api/v1/flows", json={"name": "Shop sync", "graph": graph}, headers=owner
    ).json()["id"]
    exported = world.client.get(f"/api/v1/flows/{flow_id}/export", headers=owner)
    assert CANARY not in exported.text and key["id"] not in exported.text

    other = world.headers(world.token("owner_b", world.tenant_b))
    body = {"document": exported.json()}
    asked = world.client.post("/api/v1/flows/import", json=body, headers=other)
    assert asked.status_code == 422 and "Shop API: api_key" in asked.json()["message"]
    foreign = world.client.post(
        "/api/v1/flows/import", json={**body, "credentials": {"call": key["id"]}}, headers=other
    )
    assert foreign.status_code == 404
    theirs = world.client.post("/api/v1/credentials", json={"name": "Mine", "kind": "api_key", "values": {"key": "b"}},
                               headers=other).json()  # fmt: skip
    made = world.client.post(
        "/api/v1/flows/import", json={**body, "credentials": {"call": theirs["id"]}}, headers=other
    )
    assert made.status_code == 201 and made.json()["unmapped"] == []
    flow = world.client.get(f"/api/v1/flows/{made.json()['flow_id']}", headers=other).json()
    assert flow["name"] == "Shop sync" and flow["graph"]["nodes"][1]["credential_id"] == theirs["id"]

    saved = world.client.post(
        "/api/v1/templates", json={"flow_id": flow_id, "name": "Shop template"}, headers=owner
    )
    assert saved.status_code == 201 and [s["label"] for s in saved.json()["slots"]] == ["Shop API: api_key"]
    gallery = world.client.get("/api/v1/templates", headers=owner).json()
    assert gallery[0]["name"] == "Shop template" and gallery[0]["scope"] == "tenant"
    template_id = saved.json()["id"]
    assert CANARY not in world.client.get(f"/api/v1/templates/{template_id}/export", headers=owner).text
    made = world.client.post(f"/api/v1/templates/{template_id}/instantiate", json={"leave_unmapped": True},
                             headers=owner)  # fmt: skip
    assert made.status_code == 201 and [s["node_id"] for s in made.json()["unmapped"]] == ["call"]
    bad = world.client.post("/api/v1/templates/import", json={"document": {"nodes": [], "connections": {}}},
                            headers=owner)  # fmt: skip
    assert bad.status_code == 422 and "n8n" in bad.json()["message"]
    assert world.client.delete(f"/api/v1/templates/{template_id}", headers=owner).status_code == 204


def test_what_the_api_refuses_before_any_service_sees_it(world: ApiWorld, owner) -> None:
    naive = world.client.get("/api/v1/runs?since=2026-01-01T00:00:00", headers=owner)
    assert naive.status_code == 422 and "timezone" in naive.text.lower()
    aware = world.client.get("/api/v1/runs?since=2026-01-01T00:00:00Z", headers=owner)
    assert aware.status_code == 200
    huge = world.client.post("/api/v1/templates/import", content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
                             headers={**owner, "content-type": "application/json"})  # fmt: skip
    assert huge.status_code == 413 and huge.json()["code"] == "too_large"
    stranger = world.client.post("/api/v1/flows", json={"name": "a\u0000b"})
    assert stranger.status_code == 401  # who is asking comes first
    literal = world.client.post("/api/v1/flows", json={"name": "a\\u0000b"}, headers=owner)
    assert literal.status_code == 201 and literal.json()["name"] == "a\\u0000b"  # the text, not the character
    big = world.client.post("/api/v1/templates/import", json={"document": {"n": 2**64}}, headers=owner)
    assert big.status_code == 422 and "64 bits" in big.json()["message"]


def test_discarding_a_dead_letter_needs_write_not_just_run(world: ApiWorld) -> None:
    flow_id = world.hub.flow(*BROKEN)
    world.hub.run_to_end(flow_id, {"id": 1})
    [letter] = world.client.get(
        "/api/v1/dead-letters", headers=world.headers(world.token("owner_a", world.tenant_a))
    ).json()
    runner = world.headers(world.token("owner_a", world.tenant_a, ["run"]))
    assert world.client.delete(f"/api/v1/dead-letters/{letter['id']}", headers=runner).status_code == 403
