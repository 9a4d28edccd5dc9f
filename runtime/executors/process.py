"""The process executor: a warm runner process per (tenant, component), spoken to over stdin/stdout with the step
runner's JSON lines (runtime/steps/runner.py).

A runner is started on the first message, kept between messages, and stopped when idle. Each execution has a
time limit: a runner that does not answer in time is killed (it is started again on the next message), and the
step fails with a retryable error, so the message goes through the normal retry path. A runner that dies
(crash, os._exit, killed for memory) is the same: retried. What the component prints (stderr) during an
execution is attached to that step's log lines."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson

from runtime.components.options import OptionsError, normalize_options
from runtime.executors.sandbox import (
    SandboxPolicy,
    declares_network,
    is_node_component,
    runner_command,
    sandbox_problem,
    with_limits,
)
from runtime.steps.executor import StepInvocation, StepResult
from runtime.steps.message import Message
from runtime.steps.runner import END_OF_STDERR as END_OF_STDERR_TEXT

log = logging.getLogger("hub.executor.process")
STDERR_LINES = 200  # kept per execution, for its log
MAX_LINE = 2000
END_OF_STDERR = END_OF_STDERR_TEXT.encode()
MAX_ANSWER = 64 * 2**20  # a step's answer (its outputs) larger than this is refused


LOAD_FAILED = 2  # the step runner's exit code when the component cannot be loaded: retrying will not help


class PoolFull(Exception):
    """No runner is free and the limits allow no other (a lease that does not wait)."""


class RunnerNotReady(Exception):
    """A runner could not be started, or its component does not load: the message says why."""


class RunnerGone(Exception):
    """The runner process exited or stopped answering; `reason` says how."""


class LineProtocol:
    """What every runner (a process, a container) shares: one call at a time, requests numbered and answers
    matched to them, what the runner prints on stderr kept by line for the step it belongs to."""

    what = "runner"  # as messages name it

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one call at a time: requests and answers pair up by order
        self.last_used = time.monotonic()
        self._next_id = 0
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr_partial = b""
        # Marks the runner wrote after each request's stderr (runners in older images write none).
        self.stderr_ends = 0
        self.answers = 0

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One request, one answer, one caller at a time; everything (writing the request too) within
        `timeout_s`. A runner that breaks the protocol (a line that is not its answer) is stopped."""
        with self.lock:
            self.last_used = time.monotonic()
            try:
                return self._call(request, timeout_s)
            finally:
                self.last_used = time.monotonic()

    def _call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def check(self) -> bool:
        """Whether it still runs, asked of whatever runs it (cheap where alive() already asks)."""
        return self.alive()

    def _request_line(self, request: dict[str, Any]) -> bytes:
        self._next_id += 1
        return orjson.dumps({**request, "id": self._next_id}, default=str) + b"\n"

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            answer = orjson.loads(line)
            answered = answer.get("id")
        except (orjson.JSONDecodeError, AttributeError):
            self.kill()
            raise RunnerGone(f"the {self.what} wrote something that is not its answer (output on the protocol's "
                             "channel); it was stopped") from None  # fmt: skip
        if answered != self._next_id:
            self.kill()
            raise RunnerGone(f"the {self.what} answered out of turn; it was stopped")
        return answer

    def _add_stderr(self, chunk: bytes) -> None:
        *lines, partial = (self._stderr_partial + chunk).split(b"\n")
        self._stderr_partial = partial[:MAX_LINE]  # a line without end is cut, not kept growing
        for line in lines:
            if line.endswith(END_OF_STDERR):  # the runner's mark (after output that had no line end too)
                self.stderr_ends += 1
                line = line[: -len(END_OF_STDERR)]
                if not line:
                    continue
            self._stderr.append(line.decode(errors="replace")[:MAX_LINE])

    def _taken_stderr(self) -> list[str]:
        lines = list(self._stderr)
        self._stderr.clear()
        return lines


class Runner(LineProtocol):
    """One runner process: send a request line, read its answer line within a deadline."""

    def __init__(self, folder: Path, policy: SandboxPolicy) -> None:
        super().__init__()
        self.folder = folder
        command, env = runner_command(folder, policy)
        self.process = subprocess.Popen(
            with_limits(command, policy, address_space=not is_node_component(folder)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a kill reaches whatever it started
        )
        self._buffer = bytearray()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def instance(self) -> str:
        """What the run history shows as where a step ran."""
        return f"pid {self.process.pid}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def _read_stderr(self, wait_s: float = 0.0) -> None:
        """Take what the runner printed so far (read here, in the caller's thread: what a step printed before
        answering is in the pipe before its answer, so it is always this step's)."""
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while selector.select(wait_s):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                self._add_stderr(chunk)

    def take_stderr(self, wait_s: float = 0.0) -> list[str]:
        self._read_stderr(wait_s)
        return self._taken_stderr()

    def _call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        pending = memoryview(self._request_line(request))
        deadline = time.monotonic() + timeout_s
        stdin, stdout = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(stdin, False)  # a runner that stops reading must not block the worker
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            selector.register(stdin, selectors.EVENT_WRITE)
            end = self._buffer.find(b"\n")
            while end < 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise RunnerGone(f"no answer within {timeout_s:g} s: the runner was stopped")
                self._read_stderr()  # a chatty step must not fill that pipe and stall
                for key, _ in selector.select(min(left, 0.05)):
                    if key.fd == stdin:
                        try:
                            pending = pending[os.write(stdin, pending) :]
                        except BlockingIOError:
                            continue
                        except OSError:
                            raise RunnerGone(self._exit_reason()) from None
                        if not pending:
                            selector.unregister(stdin)
                        continue
                    chunk = os.read(stdout, 1 << 16)
                    if not chunk:
                        raise RunnerGone(self._exit_reason())
                    found = chunk.find(b"\n")
                    if found >= 0:  # only the new bytes are searched: a big answer stays linear
                        end = len(self._buffer) + found
                    self._buffer += chunk
                    if end < 0 and len(self._buffer) > MAX_ANSWER:
                        self.kill()
                        raise RunnerGone(
                            f"the answer is larger than {MAX_ANSWER // 2**20} MB: the runner was stopped"
                        )
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return self._answer(line)

    def _exit_reason(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return "the runner stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return f"the runner was killed by {name}{hint}"
        if code == LOAD_FAILED:
            return f"the component cannot be loaded (exit {code}): see its log"
        return f"the runner exited with code {code}"

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("runner %s did not stop after SIGKILL", self.pid)

    def stop(self) -> None:
        """Close its input: a runner ends when its requests do; killed if it does not within a second."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


@dataclass
class ProcessExecutor:
    """`folder_of(code)`: the folder holding a component's code (its component.json and module), from where
    the catalog installed it (the invocation's `code`, else the component's name)."""

    folder_of: Callable[[str], Path | None]
    policy: SandboxPolicy = field(default_factory=SandboxPolicy)
    idle_s: float = 300.0
    # Instances of one component per tenant in this worker: another starts when every one is busy (the step has
    # a backlog in the worker's batch), up to max_instances (or the instances a flow step asks for) and within
    # max_tenant_runners; instances beyond the first (and beyond what is pinned) stop after scale_down_s unused.
    max_instances: int = 4
    max_tenant_runners: int = 16
    scale_down_s: float = 30.0
    name: str = "process"
    concurrent: ClassVar[bool] = True  # the worker may call it from several threads at once

    def __post_init__(self) -> None:
        self._setup()
        if self.policy.use_bubblewrap and (problem := sandbox_problem()):
            log.warning("%s", problem)

    def _setup(self) -> None:
        self._pools: dict[tuple[str, str], list[Any]] = {}  # Runners, or what a subclass starts (containers)
        self._busy: set[int] = set()  # id() of the runners a caller holds
        self._starting: dict[tuple[str, str], int] = {}
        # Guards the pools only, never held while a runner starts (a cold container takes most of a second).
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        # Kept warm (keep_warm): how many of each, exempt from the idle stop.
        self._pinned: dict[tuple[str, str], int] = {}
        self._retry_at: dict[tuple[str, str], float] = {}  # pinned runners that failed to start: not before
        self._tenant_limits: dict[str, int] = {}  # tenant -> how many runners it may have here

    @property
    def runner_memory_mb(self) -> int:
        """The memory limit of each runner (what a tenant's memory quota counts)."""
        return self.policy.memory_mb

    def set_tenant_limits(self, runners: dict[str, int], memory_mb: dict[str, int] | None = None) -> None:
        """Tenants' own quotas in this worker: of runners, and of their runners' memory together (the others
        keep max_tenant_runners)."""
        limits = dict(runners)
        for tenant, memory in (memory_mb or {}).items():
            fits = max(1, memory // max(1, self.runner_memory_mb))
            limits[tenant] = min(limits.get(tenant, self.max_tenant_runners), fits)
        self._tenant_limits = limits

    @contextlib.contextmanager
    def lease(
        self, tenant: str, component: str, network: bool = False, instances: int = 1, *, wait: bool = True
    ) -> Iterator[Runner]:
        """A runner of (tenant, component) for one caller: a free warm one, else a new one if the limits allow
        (`instances`: what the flow step asks for, at least), else the first to be released (`wait` False:
        raises PoolFull instead). `network`: the catalog says the component needs the network."""
        runner = self._acquire((tenant, component), network, instances, wait)
        try:
            yield runner
        finally:
            with self._lock:
                self._busy.discard(id(runner))
                self._released.notify_all()

    def _acquire(self, key: tuple[str, str], network: bool, instances: int, wait: bool = True) -> Runner:
        dead: list[Any] = []
        with self._lock:
            while True:
                pool = self._pools.setdefault(key, [])
                dead += [r for r in pool if id(r) not in self._busy and not r.alive()]
                pool[:] = [r for r in pool if id(r) in self._busy or r.alive()]
                found = next((r for r in pool if id(r) not in self._busy), None)
                if found is not None:
                    self._busy.add(id(found))
                    break
                if self._may_start(key, instances):
                    self._starting[key] = self._starting.get(key, 0) + 1
                    break
                if not wait:
                    raise PoolFull(f"no more instances of {key[1]!r} for this tenant in this worker")
                self._released.wait(1.0)
        for runner in dead:  # what is left of dead ones (an exited container), outside the lock
            runner.stop()
        if found is not None:
            return found
        try:
            runner = self.start(key[0], key[1], network)
        except BaseException:
            with self._lock:
                self._starting[key] -= 1
                self._released.notify_all()  # a failed start lets a waiting caller try
            raise
        with self._lock:  # counted as starting until it is in the pool: no gap for another start to slip in
            self._starting[key] -= 1
            self._pools.setdefault(key, []).append(runner)
            self._busy.add(id(runner))
        return runner

    def _may_start(self, key: tuple[str, str], instances: int) -> bool:
        """Under the lock. The first instance of a component always may (a step must be able to run at all);
        more within the per-component limit and the tenant's quota of runners."""
        here = len(self._pools.get(key, ())) + self._starting.get(key, 0)
        if here == 0:
            return True
        tenant = sum(len(p) for k, p in self._pools.items() if k[0] == key[0])
        tenant += sum(n for k, n in self._starting.items() if k[0] == key[0])
        quota = self._tenant_limits.get(key[0], self.max_tenant_runners)
        return here < max(self.max_instances, instances) and tenant < quota

    def warm_up(
        self,
        tenant: str,
        component: str,
        network: bool = False,
        functions: tuple[str, ...] = (),
        timeout_s: float = 60.0,
        instances: int = 1,
    ) -> None:
        """Start `instances` runners (or find them running) and ask each whether the component loads with these
        functions: activation calls this so that a component that cannot start fails the activation with the
        reason, not every message. Raises RunnerNotReady."""
        with contextlib.ExitStack() as held:  # held together, so that each lease is another instance
            for number in range(max(1, instances)):
                try:
                    # Only the first may wait: waiting for another instance while holding these could wait for
                    # ever (the tenant's limit reached); what the limits allow starts now, the rest on demand.
                    runner = held.enter_context(
                        self.lease(tenant, component, network, instances, wait=number == 0)
                    )
                except PoolFull:
                    break
                except (LookupError, OSError) as exc:
                    raise RunnerNotReady(str(exc)) from None
                try:
                    answer = runner.call({"ready": list(functions) or True}, timeout_s)
                except RunnerGone as exc:
                    said = runner.take_stderr(wait_s=0.1)[-5:]
                    raise RunnerNotReady(
                        f"{exc}" + (f"; it said: {' | '.join(said)}" if said else "")
                    ) from None
                if (
                    "ok" not in answer
                ):  # a runner from before this question: it loaded, or it would not answer
                    log.info("the runner of %s does not know the ready request (an older image)", component)
                elif not answer.get("ok"):
                    raise RunnerNotReady(f"the component does not load: {answer.get('error')}")

    def keep_warm(self, wanted: dict[str, set[Any]], retry_s: float = 30.0) -> int:
        """Keep these runners (tenant -> RunnerSpecs; those of other executors are ignored) running and exempt
        from the idle stop, as many as each asks for; start those that are not. One that fails to start is
        logged and tried again after `retry_s`. Returns how many keys were started."""
        specs: dict[tuple[str, str], Any] = {}
        for tenant, found in wanted.items():
            for spec in found:
                if spec.executor != self.name:
                    continue
                key = (tenant, spec.code)
                seen = specs.get(key)  # two flows pin the same component: what both need
                specs[key] = seen.merged(spec) if seen else spec
        with self._lock:
            self._pinned = {key: max(1, spec.instances) for key, spec in specs.items()}
            pinned = [(k, r) for k in specs for r in self._pools.get(k, ()) if id(r) not in self._busy]
        for _, runner in pinned:
            runner.check()  # an idle container may have died (OOM, killed): find out now, not on a request
        with self._lock:
            missing = [
                k
                for k, spec in specs.items()
                if sum(r.alive() for r in self._pools.get(k, ())) < spec.instances
            ]
        started, now = 0, time.monotonic()
        for key in missing:
            if self._retry_at.get(key, 0.0) > now:
                continue
            spec = specs[key]
            try:
                self.warm_up(key[0], spec.code, spec.network, spec.functions, instances=spec.instances)
            except Exception as exc:  # whatever it is, a pin that cannot start must not take the worker down
                self._retry_at[key] = now + retry_s
                log.warning("the pinned runner of %s for tenant %s cannot start: %s", spec.code, key[0], exc)
                continue
            self._retry_at.pop(key, None)
            started += 1
        return started

    def running(self) -> list[tuple[str, str]]:
        """The (tenant, component) of every live runner (a component with three instances is there three times)."""
        with self._lock:
            return sorted(k for k, pool in self._pools.items() for r in pool if r.alive())

    def start(self, tenant: str, component: str, network: bool = False) -> Runner:
        # A tenant's own code, a global import, or the hub's own sandboxed components (folder:hub/...).
        if component.startswith("folder:") and component.removeprefix("folder:").split("/", 1)[0] not in (
            tenant,
            "global",
            "hub",
        ):
            raise LookupError(f"the code {component!r} belongs to another tenant")
        folder = self.folder_of(component)
        if folder is None:
            raise LookupError(
                f"the code of component {component!r} is not installed on this worker (import the component's "
                "folder with `hub component import`, where the workers can read it)"
            )
        policy = self.policy
        if (network or declares_network(folder)) and not policy.network:
            policy = dataclasses.replace(policy, network=True)
        return Runner(folder, policy)

    def execute(self, invocation: StepInvocation, handler: Any = None) -> StepResult:
        started = time.perf_counter()
        context = invocation.context
        result = StepResult(executor=self.name)
        try:
            with self.lease(
                context.tenant_id,
                invocation.code or invocation.component,
                invocation.network,
                invocation.instances,
            ) as runner:
                return self._run(runner, invocation, result, started)
        except LookupError as exc:
            result.error, result.retryable = str(exc), False
            return result
        except OSError as exc:
            result.error = f"the component's runner cannot start: {exc}"
            return result

    def _run(self, runner: Any, invocation: StepInvocation, result: StepResult, started: float) -> StepResult:
        context = invocation.context
        request = {
            "function": invocation.function,
            "fields": invocation.fields,
            "message": invocation.message.to_body(),
            "context": {
                "tenant": context.tenant_id, "flow": context.flow_id, "run": context.run_id,
                "step": context.step_id, "message_id": context.message_id, "attempt": context.attempt,
                "snapshot": context.snapshot, "credential": context.credential, "test": context.test_mode,
                "egress_allow": list(context.egress.allowed),
            },
        }  # fmt: skip
        runner.take_stderr()  # what it printed before this execution is not this step's
        result.instance = runner.instance
        try:
            answer = runner.call(request, invocation.timeout_s)
        except RunnerGone as exc:
            result.error = f"the component's runner failed: {exc}"
            result.retryable = "cannot be loaded" not in str(exc)
            result.crashed = True
            result.logs = [("error", line) for line in runner.take_stderr(wait_s=0.05)]
            result.duration_ms = (time.perf_counter() - started) * 1000
            return result
        result.logs = [(str(level), str(text)) for level, text in answer.get("logs") or []]
        result.logs += [("info", f"stderr: {line}") for line in runner.take_stderr()]
        result.error = answer.get("error")
        result.retryable = bool(answer.get("retryable", True))
        result.rebound_delay_s = answer.get("rebound_s")
        if result.rebound_delay_s is not None and not result.error:
            result.error = "rebound"
        result.outputs = [Message.from_body(body) for body in answer.get("outputs") or []]
        result.snapshot = answer.get("snapshot")
        result.reply = answer.get("reply")
        result.delay_s = float(answer.get("delay_s") or 0)
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def verify(
        self, tenant: str, component: str, credential: dict[str, Any], timeout_s: float = 30.0
    ) -> tuple[bool, str | None]:
        """The component's own verifyCredentials, run in its runner: (accepted, why not)."""
        try:
            with self.lease(tenant, component) as runner:
                answer = runner.call({"verify": credential}, timeout_s)
        except (LookupError, OSError) as exc:
            return False, str(exc)
        except RunnerGone as exc:
            return False, f"the component's runner failed: {exc}"
        return bool(answer.get("ok")), answer.get("error")

    def options(
        self,
        tenant: str,
        component: str,
        function: str,
        model: str,
        fields: dict[str, Any],
        credential: dict[str, Any],
        timeout_s: float = 30.0,
    ) -> dict[str, str]:
        """A dynamic select's choices from the component's model function, run in its runner (value -> label).
        Raises OptionsError with what went wrong."""
        request = {"model": {"function": function, "name": model, "fields": fields, "credential": credential}}
        try:
            with self.lease(tenant, component) as runner:
                answer = runner.call(request, timeout_s)
        except (LookupError, OSError) as exc:
            raise OptionsError(str(exc)) from None
        except RunnerGone as exc:
            raise OptionsError(f"the component's runner failed: {exc}") from None
        if not answer.get("ok"):
            raise OptionsError(str(answer.get("error") or "the component gave no choices"))
        return normalize_options(answer.get("options"))

    def stop_idle(self, now: float | None = None) -> int:
        """Scale down: of each component's free runners, the most recently used ones are kept as long as they are
        pinned (keep_warm); the first instance goes after `idle_s` unused (scale to zero), the others after
        `scale_down_s`. Dead ones go at once. Returns how many were stopped."""
        now = time.monotonic() if now is None else now
        stopped: list[Any] = []
        with self._lock:
            for key, pool in self._pools.items():
                busy = [r for r in pool if id(r) in self._busy]
                free = sorted((r for r in pool if id(r) not in self._busy), key=lambda r: -r.last_used)
                kept = list(busy)
                for runner in free:
                    position, idle = len(kept), now - runner.last_used
                    if runner.alive() and (
                        position < self._pinned.get(key, 0)
                        or idle <= (self.idle_s if position == 0 else min(self.scale_down_s, self.idle_s))
                    ):
                        kept.append(runner)
                    else:
                        stopped.append(runner)
                pool[:] = kept
        for runner in stopped:
            runner.stop()
        return len(stopped)

    def close(self) -> None:
        with self._lock:
            runners = [r for pool in self._pools.values() for r in pool]
            self._pools = {}
        for runner in runners:
            runner.stop()
