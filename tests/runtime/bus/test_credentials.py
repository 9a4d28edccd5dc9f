"""Credentials at run time: resolved by id when the step runs, cached briefly, masked in the run records."""

from __future__ import annotations

import orjson
import pytest

from runtime.components.registry import spec_from_descriptor
from runtime.steps.credentials import CredentialUnavailable
from runtime.steps.errors import PermanentStepError
from runtime.worker import Worker, WorkerConfig
from tests.runtime.conftest import START, Harness, node

SECRET = "sk-live-0123456789"


def secretive():
    def use(message, fields, context):
        credential = context.credential or {}
        context.log(f"calling with {credential.get('key')}")
        if fields.get("fail"):
            raise PermanentStepError(f"the service refused key {credential.get('key')}")
        return {"kind": credential.get("kind"), "echo": credential.get("key") if fields.get("leak") else None}

    return spec_from_descriptor(
        "secretive",
        {"credentials": {"fields": {"key": {"label": "Key", "viewClass": "PasswordFieldView"}}},
         "actions": {"use": {"fields": {}}}},
        {"use": use},
    )  # fmt: skip


class Source:
    def __init__(self) -> None:
        self.calls = 0
        self.gone = False
        self.down = False
        self.rotated = False

    def credential_values(self, tenant, credential_id):
        self.calls += 1
        if self.down:
            raise ConnectionError("database unreachable")
        if self.gone or credential_id != "cred-1":
            raise CredentialUnavailable(f"credential {credential_id} does not exist")
        return {"kind": "api_key", "key": "rotated-key-999" if self.rotated else SECRET, "header": "X-Key"}


@pytest.fixture
def setup(harness: Harness):
    harness.registry = harness.registry.with_components(secretive())
    source = Source()
    worker = Worker(harness.bus, harness.registry, WorkerConfig(name="w", block_ms=20), credentials=source)
    harness.workers.append(worker)
    return harness, source


def flow(harness: Harness, credential: str = "cred-1", **fields) -> str:
    return harness.publish(
        [START, node("use", "secretive", "use", credential_id=credential, fields=fields)],
        [{"source": "start", "target": "use"}],
    )


def test_the_step_gets_its_credential_and_the_vault_is_asked_once(setup) -> None:
    harness, source = setup
    version = flow(harness)
    runs = [harness.start(version, {"n": i}) for i in range(5)]
    harness.drain(lambda: all(r in harness.finished() for r in runs))
    assert {harness.finished()[r]["status"] for r in runs} == {"succeeded"}
    [event] = [e for e in harness.step_events(runs[0], "use") if e["t"] == "step.finished"]
    assert event["out"] == [{"kind": "api_key", "echo": None}]
    assert source.calls == 1  # cached across messages


def test_secrets_are_masked_in_logs_errors_and_recorded_data(setup) -> None:
    harness, _ = setup
    leaky = harness.start(flow(harness, leak=True), {"n": 1})
    failing = harness.start(flow(harness, fail=True), {"n": 2})
    harness.drain(lambda: {leaky, failing} <= set(harness.finished()))
    raw = orjson.dumps(harness.events()).decode()
    assert SECRET not in raw
    [failed] = [e for e in harness.step_events(failing, "use") if e["status"] == "dead"]
    assert "refused key ••••••" in failed["error"]
    assert failed["logs"] == [["info", "calling with ••••••"]]
    dead = harness.bus.dead_letters(harness.tenant)
    assert dead and SECRET not in dead[0].error


def test_a_missing_credential_fails_the_step_for_good_naming_the_node(setup) -> None:
    harness, source = setup
    source.gone = True
    run = harness.start(flow(harness), {"n": 1})
    harness.drain(lambda: run in harness.finished())
    assert harness.finished()[run]["status"] == "failed"
    [event] = [e for e in harness.step_events(run, "use") if e["t"] == "step.failed"]
    assert event["status"] == "dead" and "node 'use': credential cred-1 does not exist" in event["error"]


def test_an_unreachable_vault_is_retried(setup) -> None:
    harness, source = setup
    source.down = True
    run = harness.start(flow(harness), {"n": 1})
    harness.drain(lambda: any(e["t"] == "step.failed" for e in harness.step_events(run, "use")))
    [event] = [e for e in harness.step_events(run, "use") if e["t"] == "step.failed"]
    assert event["status"] == "retrying" and "cannot be read right now" in event["error"]
    source.down = False
    harness.drain(lambda: run in harness.finished(), timeout=30)
    assert harness.finished()[run]["status"] == "succeeded"


def test_a_worker_without_a_vault_refuses_clearly(harness: Harness) -> None:
    harness.registry = harness.registry.with_components(secretive())
    run = harness.start(flow(harness), {"n": 1})
    harness.drain(lambda: run in harness.finished())
    [event] = [e for e in harness.step_events(run, "use") if e["t"] == "step.failed"]
    assert "no access to credentials" in event["error"]


class OddSource(Source):
    """Credentials whose values could break a naive mask: literals, numbers, nested tokens, quotes."""

    values: dict = {}

    def credential_values(self, tenant, credential_id):
        self.calls += 1
        return self.values


def odd_worker(harness: Harness, values: dict) -> OddSource:
    harness.registry = harness.registry.with_components(secretive())
    source = OddSource()
    source.values = values
    harness.workers.append(
        Worker(harness.bus, harness.registry, WorkerConfig(name="w2", block_ms=20), credentials=source)
    )
    return source


def test_masking_never_breaks_the_recorded_json(harness: Harness) -> None:
    odd_worker(harness, {"kind": "fields", "key": "true", "port": 2525, "flag": "null", "pin": "1764"})
    run = harness.start(flow(harness, leak=True), {"n": 2525, "ok": True, "note": None, "at": 1764292525123})
    harness.drain(lambda: run in harness.finished())
    events = harness.events()  # every entry still parses
    [done] = [e for e in harness.step_events(run, "use") if e["t"] == "step.finished"]
    assert done["in"] == {"n": 2525, "ok": True, "note": None, "at": 1764292525123}
    assert done["out"] == [{"kind": "fields", "echo": "••••••"}]
    assert all(
        isinstance(e["started"], int | float) for e in events if "started" in e and e["t"].startswith("step")
    )


def test_nested_quoted_and_encoded_secrets_are_masked(harness: Harness) -> None:
    from runtime.steps.credentials import mask, secret_strings

    values = {"kind": "oauth2_code", "token": {"access_token": "AT-secret-1"}, "password": 'pa"ss\\word',
              "username": "ann"}  # fmt: skip
    secrets = secret_strings(values)
    record = {"auth": "Basic YW5uOnBhInNzXHdvcmQ=", "q": "pa%22ss%5Cword", "t": ["AT-secret-1"], "u": "ann"}
    masked = mask(record, secrets)
    assert masked == {"auth": "Basic ••••••", "q": "••••••", "t": ["••••••"], "u": "ann"}
    # And through a step whose recorded output is long enough to be truncated.
    odd_worker(harness, {"kind": "fields", "key": 'pa"ss\\word-' + "x" * 40})
    big = harness.start(flow(harness, leak=True), {"pad": "y" * 20_000})
    harness.drain(lambda: big in harness.finished())
    assert (
        'pa\\"ss' not in orjson.dumps(harness.events()).decode()
        and "pa\\\\\\" not in orjson.dumps(harness.events()).decode()
    )


def test_a_step_that_changes_its_credential_changes_only_its_copy(setup) -> None:
    harness, source = setup

    def greedy(message, fields, context):
        context.credential["key"] = "changed"
        return message

    harness.registry = harness.registry.with_components(
        spec_from_descriptor(
            "greedy",
            {"credentials": {"fields": {"key": {"label": "Key"}}}, "actions": {"go": {"fields": {}}}},
            {"go": greedy},
        )
    )
    worker = Worker(harness.bus, harness.registry, WorkerConfig(name="w3", block_ms=20), credentials=source)
    harness.workers[:] = [worker]
    version = harness.publish(
        [
            START,
            node("g", "greedy", "go", credential_id="cred-1"),
            node("use", "secretive", "use", credential_id="cred-1", fields={"leak": True}),
        ],
        [{"source": "start", "target": "g"}, {"source": "g", "target": "use"}],
    )
    run = harness.start(version, {"n": 1})
    harness.drain(lambda: run in harness.finished())
    [event] = [e for e in harness.step_events(run, "use") if e["t"] == "step.finished"]
    assert event["out"] == [{"kind": "api_key", "echo": "••••••"}]
    assert worker.processor.credentials.get(harness.tenant, "cred-1")["key"] == SECRET  # the cache is intact


def test_an_edge_condition_quoting_the_secret_is_masked_in_events_and_dead_letters(setup) -> None:
    harness, _ = setup
    version = harness.publish(
        [
            START,
            node("use", "secretive", "use", credential_id="cred-1", fields={"leak": True}),
            node("log", "log", "log"),
        ],
        [{"source": "start", "target": "use"}, {"source": "use", "target": "log", "condition": "echo > 5"}],
    )
    run = harness.start(version, {"n": 1})
    harness.drain(lambda: run in harness.finished())
    [failed] = [e for e in harness.step_events(run, "use") if e["t"] == "step.failed"]
    assert "condition" in failed["error"] and SECRET not in failed["error"]
    assert SECRET not in harness.bus.dead_letters(harness.tenant)[0].error


class _Counting:
    def __init__(self, values: dict) -> None:
        self.values, self.calls = values, 0

    def credential_values(self, tenant: str, credential_id: str) -> dict:
        self.calls += 1
        return dict(self.values)


def test_the_cache_asks_again_once_an_access_token_is_due_for_renewal() -> None:
    import time

    from runtime.steps.credentials import REFRESH_AHEAD_S, CachedCredentials

    lasting = _Counting({"kind": "oauth2_code", "access_token": "a" * 20, "expires_at": time.time() + 3600})
    cache = CachedCredentials(lasting, ttl_s=30)
    cache.get("t", "c"), cache.get("t", "c")
    assert lasting.calls == 1
    # A token inside the renewal window is not kept: the source (which renews it) is asked every time.
    due = _Counting(
        {"kind": "oauth2_code", "access_token": "b" * 20, "expires_at": time.time() + REFRESH_AHEAD_S - 1}
    )
    cache = CachedCredentials(due, ttl_s=30)
    cache.get("t", "c"), cache.get("t", "c")
    assert due.calls == 2
    cache.forget("t", "c")
    lasting_cache = CachedCredentials(lasting, ttl_s=30)
    lasting_cache.get("t", "c")
    lasting_cache.forget("t", "c")
    lasting_cache.get("t", "c")
    assert lasting.calls == 3


def test_a_secret_a_step_passes_on_is_masked_in_every_later_steps_records(setup) -> None:
    """A step that echoes its key (a server reflecting headers) hands it to the next steps, which have no
    credential of their own: what the run records of them is masked too (fused or not)."""
    harness, _ = setup
    version = harness.publish(
        [START, node("use", "secretive", "use", credential_id="cred-1", fields={"leak": True}),
         node("shape", "jsonata", "transform", fields={"expression": "$"}),
         node("log", "log", "log", fields={"message": "'got ' & echo"})],
        [{"source": "start", "target": "use"}, {"source": "use", "target": "shape"},
         {"source": "shape", "target": "log"}],
    )  # fmt: skip
    run = harness.start(version, {"n": 1})
    harness.drain(lambda: run in harness.finished())
    assert harness.finished()[run]["status"] == "succeeded"
    raw = orjson.dumps(harness.events()).decode()
    assert SECRET not in raw
    [logged] = [e for e in harness.step_events(run, "log") if e["t"] == "step.finished"]
    assert logged["logs"] == [["info", "got ••••••"]] and logged["in"] == {
        "kind": "api_key",
        "echo": "••••••",
    }


def test_an_edited_credential_is_read_again_once_the_tenants_change_counter_moves() -> None:
    from runtime.steps.credentials import CachedCredentials

    source = _Counting({"kind": "api_key", "key": "k" * 10})
    generations = {"t": 0}
    cache = CachedCredentials(source, ttl_s=30, generation=generations.__getitem__, generation_check_s=0)
    cache.get("t", "c"), cache.get("t", "c")
    assert source.calls == 1
    source.values = {"kind": "api_key", "key": "new-key-123"}
    generations["t"] += 1  # what StreamsBus.credentials_changed does
    assert cache.get("t", "c")["key"] == "new-key-123" and source.calls == 2
    assert cache.secrets_of("t", ["c"]) == ("new-key-123",)
    assert source.calls == 2


def test_the_change_counter_lives_in_redis_per_tenant(harness: Harness) -> None:
    bus = harness.bus
    assert bus.credentials_generation("t1") == 0
    bus.credentials_changed("t1")
    assert (bus.credentials_generation("t1"), bus.credentials_generation("t2")) == (1, 0)


def test_a_credential_edited_while_its_step_runs_is_still_masked_with_the_values_the_step_used(
    harness: Harness,
) -> None:
    """The flow-wide secrets are read again after the step when the credential changed meanwhile: the values the
    step itself used must stay in the set, or its error would be stored with the old secret in clear."""
    source = Source()

    def rotate_then_fail(message, fields, context):
        source.rotated = True  # someone saves a new key while this step runs
        harness.bus.credentials_changed(harness.tenant)
        raise PermanentStepError(f"the service refused key {(context.credential or {}).get('key')}")

    spec = spec_from_descriptor(
        "rotating", {"credentials": {"fields": {"key": {"label": "Key", "viewClass": "PasswordFieldView"}}},
                     "actions": {"use": {"fields": {}}}}, {"use": rotate_then_fail},
    )  # fmt: skip
    harness.registry = harness.registry.with_components(spec)
    worker = Worker(harness.bus, harness.registry, WorkerConfig(name="w", block_ms=20), credentials=source)
    worker.processor.credentials.generation_check_s = 0
    harness.workers.append(worker)
    version = harness.publish([START, node("use", "rotating", "use", credential_id="cred-1")],
                              [{"source": "start", "target": "use"}])  # fmt: skip
    run = harness.start(version, {"n": 1})
    harness.drain(lambda: run in harness.finished())
    raw = orjson.dumps(harness.events()).decode()
    assert SECRET not in raw and "refused key ••••••" in raw
