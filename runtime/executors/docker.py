"""The docker executor (docker SDK; any Docker Engine API: Docker, or podman's service): a warm container per
(tenant, component image) running the image's step runner, spoken to over the attached stdin/stdout with the
same JSON lines as the process executor.

Containers get memory, CPU and pids limits, labels naming the tenant and component, no network unless the
component declares it, and no credentials in their environment (a step's secret travels with its message). A
container that does not answer in time is killed; one that exits or is killed for memory fails the step
retryably with the reason (the message goes through the normal retry path); idle ones are removed (scale to
zero). What the container prints on stderr is attached to the step that was running."""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from runtime.executors.process import LineProtocol, ProcessExecutor, RunnerGone

log = logging.getLogger("hub.executor.docker")
STDOUT, STDERR = 1, 2
# How long a request's stderr may lag behind its answer. Runners in older images write no end mark: they cost
# this once, after their first answer, and are not waited for again.
STDERR_GRACE_S = 0.1


@dataclass(frozen=True)
class ContainerLimits:
    memory_mb: int = 512
    cpus: float = 1.0
    pids: int = 256
    network: bool = False  # what a component gets unless it declares it needs the network


class ContainerRunner(LineProtocol):
    """One warm container: a request line in on stdin, its answer line out of the multiplexed attach stream."""

    what = "container"

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        *,
        labels: dict[str, str],
        limits: ContainerLimits,
        network: bool,
        command: list[str] | None = None,
        volumes: dict[str, dict[str, str]] | None = None,
        environment: dict[str, str] | None = None,
        user: str = "65534:65534",
    ) -> None:
        super().__init__()
        self.image = image
        self.limits = limits
        self.container = client.containers.run(
            image,
            command=command,
            detach=True,
            stdin_open=True,
            labels=labels,
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",  # no swap: over the limit is an OOM kill, not a slow crawl
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            network_mode="bridge" if network else "none",
            environment=environment or {},
            volumes=volumes or {},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=user,
        )
        try:
            attached = self.container.attach_socket(
                params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
        except (DockerException, OSError):
            self.container.remove(force=True)  # never leave a container nobody talks to
            raise
        self.sock: socket.socket = attached._sock  # the raw connection: frames in, bytes out
        self._attached = attached  # keeps the response (and so the connection) alive
        self._frames = b""
        self._stdout = b""
        self._gone = False

    @property
    def id(self) -> str:
        return str(self.container.id)

    @property
    def instance(self) -> str:
        """What the run history shows as where a step ran: the short id `docker ps` shows."""
        return str(self.container.id)[:12]

    def alive(self) -> bool:
        return not self._gone

    def check(self) -> bool:
        """Ask the engine: a container that exited while idle (OOM-killed, removed by hand) is gone."""
        if self._gone:
            return False
        try:
            self.container.reload()
            running = (self.container.attrs.get("State") or {}).get("Running", False)
        except NotFound:
            running = False
        except (DockerException, OSError):
            return True  # the engine did not answer: not a reason to drop a runner
        if not running:
            self._gone = True
        return running

    def _ready(self, wait_s: float) -> bool:
        with selectors.DefaultSelector() as selector:  # not select(): it fails past 1024 open files
            selector.register(self.sock, selectors.EVENT_READ)
            return bool(selector.select(wait_s))

    def _pump(self, wait_s: float) -> bool:
        """Read what is there (waiting up to `wait_s`), sort it into stdout and stderr; False at end of stream."""
        if not self._ready(wait_s):
            return True
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            self._gone = True
            return False
        self._frames += chunk
        while len(self._frames) >= 8:
            stream, size = struct.unpack(">BxxxL", self._frames[:8])
            if len(self._frames) < 8 + size:
                break
            payload, self._frames = self._frames[8 : 8 + size], self._frames[8 + size :]
            if stream == STDOUT:
                self._stdout += payload
            elif stream == STDERR:
                self._add_stderr(payload)
        return True

    def take_stderr(self, wait_s: float = 0.0) -> list[str]:
        deadline = time.monotonic() + wait_s
        while (
            self.alive() and self._pump(max(0.0, deadline - time.monotonic())) and time.monotonic() < deadline
        ):
            pass
        while self.alive() and self._ready(0) and self._pump(0):
            pass
        # The engine may deliver a request's stderr after its answer: wait (briefly) for the runner's mark.
        if self.stderr_ends or self.answers == 1:
            late = time.monotonic() + STDERR_GRACE_S
            while self.stderr_ends < self.answers and self.alive() and time.monotonic() < late:
                self._pump(max(0.0, late - time.monotonic()))
            self.stderr_ends = max(
                self.stderr_ends, self.answers
            )  # a lost mark must not cost every later call
        return self._taken_stderr()

    def _call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        try:
            # Writing counts against the time limit too: a container that stops reading its input must not
            # hold the worker in sendall for ever.
            self.sock.settimeout(max(timeout_s, 0.1))
            self.sock.sendall(self._request_line(request))
            self.sock.settimeout(None)
        except TimeoutError:
            self.kill()
            raise RunnerGone(
                f"the container did not take its request within {timeout_s:g} s: it was stopped"
            ) from None
        except OSError:
            self._gone = True
            raise RunnerGone(self._exit_reason()) from None
        while b"\n" not in self._stdout:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RunnerGone(f"no answer within {timeout_s:g} s: the container was stopped")
            if not self._pump(min(left, 0.05)):
                raise RunnerGone(self._exit_reason())
        line, _, self._stdout = self._stdout.partition(b"\n")
        self.answers += 1
        return self._answer(line)

    def _exit_reason(self) -> str:
        try:
            result = self.container.wait(timeout=10)
            self.container.reload()
        except (DockerException, OSError):
            return "the container stopped answering"
        state = self.container.attrs.get("State") or {}
        code = result.get("StatusCode", state.get("ExitCode"))
        if state.get("OOMKilled") or code == 137:
            return f"the container was killed: out of memory (limit {self.limits.memory_mb} MB), or killed (exit {code})"
        return f"the container exited with code {code}"

    def kill(self) -> None:
        self._gone = True
        try:
            self.container.remove(force=True)
        except NotFound:
            pass
        except (DockerException, OSError) as exc:
            log.warning("container %s could not be removed: %s", self.id[:12], exc)
        self.sock.close()

    def stop(self) -> None:
        self.kill()


@dataclass
class DockerExecutor(ProcessExecutor):
    """`client`: a DockerClient (DOCKER_HOST, or podman's Docker-API socket). The invocation's `code` is the
    component's image (as the catalog pinned it). `command`, `volumes` and `environment` are for images whose
    runner is not their default command (development, tests); they never carry credentials."""

    folder_of: Callable[[str], Any] = field(default=lambda _: None)
    client: docker.DockerClient | None = None
    limits: ContainerLimits = field(default_factory=ContainerLimits)
    command: list[str] | None = None
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    # Every container runs as nobody, whatever its image says: a component has no business being root.
    user: str = "65534:65534"
    name: str = "docker"

    @property
    def runner_memory_mb(self) -> int:
        return self.limits.memory_mb

    def __post_init__(self) -> None:
        self._setup()
        if self.client is None:
            self.client = docker.from_env()

    def start(self, tenant: str, component: str, network: bool = False) -> ContainerRunner:
        image = component
        assert self.client is not None
        try:
            self.client.images.get(image)
        except ImageNotFound:
            raise LookupError(
                f"the image {image!r} is not on this container engine: pull or load it (air-gapped installs "
                "load it with `docker load`)"
            ) from None
        except (DockerException, OSError) as exc:
            raise OSError(f"the container engine cannot be reached: {exc}") from None
        labels = {
            "hub.tenant": tenant,
            "hub.component": image,
            "hub.managed": "1",
            # Which worker process talks to it: a container whose worker is gone is an orphan (see reconcile).
            "hub.host": socket.gethostname(),
            "hub.pid": str(os.getpid()),
        }
        try:
            return ContainerRunner(
                self.client,
                image,
                labels=labels,
                limits=self.limits,
                network=self.limits.network or network,
                command=self.command,
                volumes=self.volumes,
                environment=self.environment,
                user=self.user,
            )
        except APIError as exc:
            raise OSError(f"the container for {image!r} cannot start: {exc.explanation or exc}") from None

    def reconcile(self) -> int:
        """Remove the orphans of this host: containers started by a worker process that no longer runs (killed,
        crashed) and so will never talk to them again. Containers of live workers, and of other hosts sharing
        the engine, are left alone. Returns how many were removed."""
        removed = 0
        for container in self.containers():
            labels = container.labels or {}
            if labels.get("hub.host") != socket.gethostname() or _process_alive(labels.get("hub.pid", "")):
                continue
            try:
                container.remove(force=True)
                removed += 1
            except (DockerException, OSError) as exc:
                log.warning("orphan container %s could not be removed: %s", container.short_id, exc)
        return removed

    def containers(self, tenant: str | None = None) -> list[Any]:
        """The containers this hub started (for inspection and for the reconciler that removes orphans)."""
        assert self.client is not None
        filters = {"label": ["hub.managed=1", *([f"hub.tenant={tenant}"] if tenant else [])]}
        return self.client.containers.list(all=True, filters=filters)


def _process_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True
