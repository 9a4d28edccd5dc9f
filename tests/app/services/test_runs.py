"""Manual runs, backpressure, and dead letters: list, replay from the failed step (linked), discard."""

from __future__ import annotations

import uuid

import orjson
import pytest
import sqlalchemy as sa

from app.errors import BackpressureError, NotFoundError, PermissionDeniedError, ValidationError
from app.runtime_ids import runtime_id
from app.services import accounts, flows
from app.services import runs as run_service
from app.storage.models import StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.keys import TenantKeys
from runtime.bus.streams import StreamsBus
from tests.runtime.conftest import START, node

BROKEN = (
    [
        START,
        node("shape", "jsonata", "transform", fields={"expression": "{'id': id}"}),
        node("call", "flaky", "broken", settings={"retry": {"max_attempts": 2, "base_delay_s": 0.01}}),
        node("done", "log", "log"),
    ],
    [
        {"source": "start", "target": "shape"},
        {"source": "shape", "target": "call"},
        {"source": "call", "target": "done"},
    ],
)


def _dead_run(hub):
    flow_id = hub.flow(*BROKEN)
    run = hub.run_to_end(flow_id, {"id": 7})
    assert run.status == "failed"
    [letter] = run_service.list_dead_letters(hub.bus, hub.tenant_id, flow_id)
    return flow_id, run, letter


def test_an_unpublished_flow_cannot_run(hub) -> None:
    flow = flows.create_flow(hub.db, hub.tenant_id, "draft only")
    with pytest.raises(NotFoundError, match="no published version"):
        run_service.start_manual_run(hub.db, hub.bus, hub.components, hub.tenant_id, flow.id, {})


def test_another_tenants_flow_cannot_be_run(hub) -> None:
    flow_id = hub.flow([START], [])
    with pytest.raises(NotFoundError):
        hub.start(flow_id, {}, tenant_id=hub.new_tenant("Other"))


def test_a_full_backlog_refuses_new_runs(hub) -> None:
    flow_id = hub.flow([START], [])
    bus = StreamsBus(hub.bus.redis, max_backlog=1)
    run_service.start_manual_run(hub.db, bus, hub.components, hub.tenant_id, flow_id, {})
    with pytest.raises(BackpressureError, match="nothing was started") as caught:
        run_service.start_manual_run(hub.db, bus, hub.components, hub.tenant_id, flow_id, {})
    assert caught.value.retry_after_seconds > 0


def test_dead_letter_lists_the_failed_step_and_its_input(hub) -> None:
    flow_id, run, letter = _dead_run(hub)
    assert (letter.flow_id, letter.run_id, letter.step_id, letter.attempt) == (flow_id, run.id, "call", 1)
    assert letter.error == "the service is broken"
    assert letter.data == {"id": 7}
    assert run_service.list_dead_letters(hub.bus, hub.tenant_id, flow_id=hub.flow([START], [])) == []
    assert run_service.list_dead_letters(hub.bus, hub.new_tenant("Other")) == []


def test_replay_after_fixing_runs_from_the_failed_step(hub) -> None:
    _, run, letter = _dead_run(hub)
    hub.bus.redis.set("test:fixed", 1)
    replay_id = run_service.replay_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)
    hub.drive(lambda: hub.finished(replay_id))
    replay = hub.run(replay_id)
    assert (replay.status, replay.replay_of_id, replay.trigger_kind) == ("succeeded", run.id, "replay")
    # Only the failed step and what follows it ran again.
    assert [s.step_id for s in hub.steps(replay_id)] == ["call", "done"]
    assert run_service.list_dead_letters(hub.bus, hub.tenant_id) == []
    with pytest.raises(NotFoundError, match="already replayed or discarded"):
        run_service.replay_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)


def test_replay_uses_the_fixed_current_version(hub) -> None:
    flow_id, _, letter = _dead_run(hub)
    nodes = [n if n["id"] != "call" else node("call", "log", "log") for n in BROKEN[0]]
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        lock_version = flows.get_flow(session, flow_id).lock_version
    flows.save_draft(
        hub.db,
        hub.tenant_id,
        flow_id,
        {"nodes": nodes, "edges": BROKEN[1]},
        expected_lock_version=lock_version,
    )
    fixed = flows.publish_flow(hub.db, hub.bus, hub.components, hub.tenant_id, flow_id)
    replay_id = run_service.replay_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)
    hub.drive(lambda: hub.finished(replay_id))
    replay = hub.run(replay_id)
    assert (replay.status, replay.flow_version_id) == ("succeeded", fixed.id)


def test_replay_with_the_original_version_fails_again(hub) -> None:
    _, _, letter = _dead_run(hub)
    replay_id = run_service.replay_dead_letter(
        hub.db, hub.bus, hub.tenant_id, letter.id, use_current_version=False
    )
    hub.drive(lambda: hub.finished(replay_id))
    assert hub.run(replay_id).status == "failed"
    assert len(run_service.list_dead_letters(hub.bus, hub.tenant_id)) == 1


def test_another_tenant_cannot_replay_or_discard(hub) -> None:
    _, _, letter = _dead_run(hub)
    other = hub.new_tenant("Other")
    with pytest.raises(NotFoundError):
        run_service.replay_dead_letter(hub.db, hub.bus, other, letter.id)
    with pytest.raises(NotFoundError):
        run_service.discard_dead_letter(hub.db, hub.bus, other, letter.id)
    assert len(run_service.list_dead_letters(hub.bus, hub.tenant_id)) == 1


def test_discard(hub) -> None:
    _, _, letter = _dead_run(hub)
    run_service.discard_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)
    assert run_service.list_dead_letters(hub.bus, hub.tenant_id) == []
    with pytest.raises(NotFoundError):
        run_service.discard_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)
    with pytest.raises(NotFoundError):
        run_service.discard_dead_letter(hub.db, hub.bus, hub.tenant_id, "not-an-id")


def test_a_whole_run_replays_with_its_original_input(hub) -> None:
    _, run, _ = _dead_run(hub)
    hub.bus.redis.set("test:fixed", 1)
    replay_id = run_service.replay_run(hub.db, hub.bus, hub.tenant_id, run.id)
    hub.drive(lambda: hub.finished(replay_id))
    replay = hub.run(replay_id)
    assert (replay.status, replay.replay_of_id, replay.trigger_kind) == ("succeeded", run.id, "replay")
    steps = hub.steps(replay_id)
    assert [s.step_id for s in steps] == ["start", "shape", "call", "done"]
    assert steps[0].input == {"id": 7}
    # The dead letter is the failed step's message: a whole-run replay leaves it for its own replay.
    assert len(run_service.list_dead_letters(hub.bus, hub.tenant_id)) == 1


def test_a_run_replays_from_its_failed_step_through_its_dead_letter(hub) -> None:
    _, run, _ = _dead_run(hub)
    hub.bus.redis.set("test:fixed", 1)
    replay_id = run_service.replay_run(hub.db, hub.bus, hub.tenant_id, run.id, from_failed_step=True)
    hub.drive(lambda: hub.finished(replay_id))
    assert (hub.run(replay_id).status, hub.run(replay_id).replay_of_id) == ("succeeded", run.id)
    assert [s.step_id for s in hub.steps(replay_id)] == ["call", "done"]
    assert run_service.list_dead_letters(hub.bus, hub.tenant_id) == []  # consumed by the replay


def test_without_its_dead_letter_a_run_replays_from_the_recorded_input(hub) -> None:
    _, run, letter = _dead_run(hub)
    run_service.discard_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id)
    hub.bus.redis.set("test:fixed", 1)
    replay_id = run_service.replay_run(hub.db, hub.bus, hub.tenant_id, run.id, from_failed_step=True)
    hub.drive(lambda: hub.finished(replay_id))
    steps = hub.steps(replay_id)
    assert [s.step_id for s in steps] == ["call", "done"]
    assert steps[0].input == {"id": 7} and steps[1].input == {"fixed": True, "id": 7}


def test_replay_refusals(hub) -> None:
    flow_id = hub.flow(*BROKEN)
    hub.bus.redis.set("test:fixed", 1)
    good = hub.run_to_end(flow_id, {"id": 1})
    with pytest.raises(ValidationError, match="no failed step"):
        run_service.replay_run(hub.db, hub.bus, hub.tenant_id, good.id, from_failed_step=True)
    with pytest.raises(NotFoundError, match="does not exist"):
        run_service.replay_run(hub.db, hub.bus, hub.new_tenant("Other"), good.id)
    steps = sa.update(StepExecution).where(StepExecution.run_id == good.id)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.execute(steps.values(truncated=True))  # only outputs were cut: the input is whole
    assert run_service.replay_run(hub.db, hub.bus, hub.tenant_id, good.id)
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.execute(steps.values(input={"truncated": True, "preview": '{"id": 1, "blob": "xx'}))
    with pytest.raises(ValidationError, match="larger than what the run history keeps"):
        run_service.replay_run(hub.db, hub.bus, hub.tenant_id, good.id)


def test_replay_refused_when_the_start_is_unknown_or_gone(hub) -> None:
    flow_id = hub.flow(*BROKEN)
    hub.bus.redis.set("test:fixed", 1)
    first, second = hub.run_to_end(flow_id, {"id": 1}), hub.run_to_end(flow_id, {"id": 2})
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.execute(sa.delete(StepExecution).where(StepExecution.run_id == first.id))
        # The second run's first step is one the current version does not have, and its version is gone.
        session.execute(
            sa.update(StepExecution).where(StepExecution.run_id == second.id).values(step_id="ghost")
        )
    with pytest.raises(ValidationError, match="No step of this run was recorded"):
        run_service.replay_run(hub.db, hub.bus, hub.tenant_id, first.id)
    hub.bus.redis.delete(
        TenantKeys(runtime_id(hub.tenant_id)).flow_version(runtime_id(second.flow_version_id))
    )
    with pytest.raises(ValidationError, match="version this run used is gone"):
        run_service.replay_run(hub.db, hub.bus, hub.tenant_id, second.id)


def test_a_replay_into_a_full_backlog_is_refused(hub) -> None:
    _, run, _ = _dead_run(hub)
    full = StreamsBus(hub.bus.redis, max_backlog=1)
    hub.bus.redis.set(TenantKeys(runtime_id(hub.tenant_id)).backlog, 5)
    with pytest.raises(BackpressureError, match="nothing was started"):
        run_service.replay_run(hub.db, full, hub.tenant_id, run.id)


def test_a_viewer_cannot_replay_or_discard(hub) -> None:
    _, run, letter = _dead_run(hub)
    viewer = accounts.create_user(hub.db, f"v-{uuid.uuid4().hex[:6]}@example.com", "a long password!!").id
    accounts.add_member(hub.db, hub.tenant_id, viewer, "viewer")
    with pytest.raises(PermissionDeniedError):
        run_service.replay_run(hub.db, hub.bus, hub.tenant_id, run.id, user_id=viewer)
    with pytest.raises(PermissionDeniedError):
        run_service.replay_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id, user_id=viewer)
    with pytest.raises(PermissionDeniedError):
        run_service.discard_dead_letter(hub.db, hub.bus, hub.tenant_id, letter.id, user_id=viewer)
    assert len(run_service.list_dead_letters(hub.bus, hub.tenant_id)) == 1


def test_the_failed_steps_dead_letter_is_found_behind_many_others(hub) -> None:
    _, run, _ = _dead_run(hub)
    dead = TenantKeys(runtime_id(hub.tenant_id)).dead
    [(entry_id, fields)] = hub.bus.redis.xrange(dead)
    doc = orjson.loads(fields[b"m"])
    hub.bus.redis.xdel(dead, entry_id)
    pipe = hub.bus.redis.pipeline()
    for _ in range(1500):  # other runs' letters first, more than one page of them
        pipe.xadd(dead, {"m": orjson.dumps({**doc, "env": {**doc["env"], "run": uuid.uuid4().hex}})})
    pipe.xadd(dead, {"m": fields[b"m"]})
    pipe.execute()
    hub.bus.redis.set("test:fixed", 1)
    replay_id = run_service.replay_run(hub.db, hub.bus, hub.tenant_id, run.id, from_failed_step=True)
    assert hub.bus.redis.xlen(dead) == 1500  # its own letter was the one replayed (and consumed)
    hub.drive(lambda: hub.finished(replay_id))
    assert hub.run(replay_id).status == "succeeded"
