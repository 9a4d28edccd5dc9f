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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from runtime.executors.sandbox import (
    SandboxPolicy,
    declares_network,
    is_node_component,
    limits,
    runner_command,
    sandbox_problem,
)
from runtime.steps.executor import StepInvocation, StepResult
from runtime.steps.message import Message

log = logging.getLogger("hub.executor.process")
STDERR_LINES = 200  # kept per execution, for its log
MAX_LINE = 2000
MAX_ANSWER = 64 * 2**20  # a step's answer (its outputs) larger than this is refused


LOAD_FAILED = 2  # the step runner's exit code when the component cannot be loaded: retrying will not help


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
        self._stderr.extend(line.decode(errors="replace")[:MAX_LINE] for line in lines)

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
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=limits(policy, address_space=not is_node_component(folder)),
            start_new_session=True,  # its own process group: a kill reaches whatever it started
        )
        self._buffer = bytearray()

    @property
    def pid(self) -> int:
        return self.process.pid

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
    name: str = "process"

    def __post_init__(self) -> None:
        self._setup()
        if self.policy.use_bubblewrap and (problem := sandbox_problem()):
            log.warning("%s", problem)

    def _setup(self) -> None:
        self._runners: dict[tuple[str, str], Any] = {}  # Runner, or what a subclass starts (a container)
        self._lock = threading.Lock()  # guards the dicts only: never held while a runner starts
        self._starting: dict[tuple[str, str], threading.Lock] = {}
        self._pinned: set[tuple[str, str]] = set()  # kept warm (keep_warm): exempt from the idle stop
        self._retry_at: dict[tuple[str, str], float] = {}  # pinned runners that failed to start: not before

    def runner(self, tenant: str, component: str, network: bool = False) -> Runner:
        """The warm runner of (tenant, component), started if there is none (or it died). `network`: the
        catalog says the component needs the network. One start per key at a time; other keys' steps go on
        meanwhile (a cold container takes most of a second)."""
        key = (tenant, component)
        with self._lock:
            found = self._runners.get(key)
            if found is not None and found.alive():
                return found
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:
            with self._lock:
                found = self._runners.get(key)
                if found is not None and found.alive():
                    return found
            runner = self.start(tenant, component, network)
            with self._lock:
                self._runners[key] = runner
        if found is not None:
            found.stop()  # what is left of a dead one (an exited container)
        return runner

    def warm_up(
        self,
        tenant: str,
        component: str,
        network: bool = False,
        functions: tuple[str, ...] = (),
        timeout_s: float = 60.0,
    ) -> None:
        """Start the runner (or find it running) and ask whether the component loads with these functions:
        activation calls this so that a component that cannot start fails the activation with the reason,
        not every message. Raises RunnerNotReady."""
        try:
            runner = self.runner(tenant, component, network)
        except (LookupError, OSError) as exc:
            raise RunnerNotReady(str(exc)) from None
        try:
            answer = runner.call({"ready": list(functions) or True}, timeout_s)
        except RunnerGone as exc:
            said = runner.take_stderr(wait_s=0.1)[-5:]
            raise RunnerNotReady(f"{exc}" + (f"; it said: {' | '.join(said)}" if said else "")) from None
        if not answer.get("ok"):
            raise RunnerNotReady(f"the component does not load: {answer.get('error')}")

    def keep_warm(self, wanted: dict[str, set[Any]], retry_s: float = 30.0) -> int:
        """Keep these runners (tenant -> RunnerSpecs; those of other executors are ignored) running and exempt
        from the idle stop; start those that are not. One that fails to start is logged and tried again after
        `retry_s`. Returns how many were started."""
        specs = {(t, s.code): s for t, found in wanted.items() for s in found if s.executor == self.name}
        with self._lock:
            self._pinned = set(specs)
            missing = [k for k in specs if not (k in self._runners and self._runners[k].alive())]
        started, now = 0, time.monotonic()
        for key in missing:
            if self._retry_at.get(key, 0.0) > now:
                continue
            spec = specs[key]
            try:
                self.warm_up(key[0], spec.code, spec.network, spec.functions)
            except RunnerNotReady as exc:
                self._retry_at[key] = now + retry_s
                log.warning("the pinned runner of %s for tenant %s cannot start: %s", spec.code, key[0], exc)
                continue
            self._retry_at.pop(key, None)
            started += 1
        return started

    def running(self) -> list[tuple[str, str]]:
        """The (tenant, component) of every live runner."""
        with self._lock:
            return sorted(k for k, r in self._runners.items() if r.alive())

    def start(self, tenant: str, component: str, network: bool = False) -> Runner:
        if component.startswith("folder:") and component.removeprefix("folder:").split("/", 1)[0] not in (
            tenant,
            "global",
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
            runner = self.runner(
                context.tenant_id, invocation.code or invocation.component, invocation.network
            )
        except LookupError as exc:
            result.error, result.retryable = str(exc), False
            return result
        except OSError as exc:
            result.error = f"the component's runner cannot start: {exc}"
            return result
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
        try:
            answer = runner.call(request, invocation.timeout_s)
        except RunnerGone as exc:
            result.error = f"the component's runner failed: {exc}"
            result.retryable = "cannot be loaded" not in str(exc)
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
            runner = self.runner(tenant, component)
            answer = runner.call({"verify": credential}, timeout_s)
        except (LookupError, OSError) as exc:
            return False, str(exc)
        except RunnerGone as exc:
            return False, f"the component's runner failed: {exc}"
        return bool(answer.get("ok")), answer.get("error")

    def stop_idle(self, now: float | None = None) -> int:
        """Stop runners unused for `idle_s` (scale to zero); returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                k
                for k, r in self._runners.items()
                if not r.alive()
                or (now - r.last_used > self.idle_s and not r.lock.locked() and k not in self._pinned)
            ]
            stopped = [self._runners.pop(k) for k in idle]
        for runner in stopped:
            runner.stop()
        return len(stopped)

    def close(self) -> None:
        with self._lock:
            runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            runner.stop()
