"""How a component's runner process is confined: bubblewrap where it works (own user, pid, mount, IPC and network
namespaces; of the machine only the system's programs and libraries, the interpreter and the runtime, read-only,
and the component's own folder; a private /tmp; no network unless the component declares it needs one), and an
address-space limit either way. Where bubblewrap is missing or cannot create
namespaces, runners still run, without the namespaces; `sandbox_problem()` says why, for the admins."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534


@dataclass(frozen=True)
class SandboxPolicy:
    memory_mb: int = 512  # address space of the runner; a step that wants more fails with MemoryError
    network: bool = False  # the component declared it needs the network
    use_bubblewrap: bool = True


@functools.cache
def sandbox_problem() -> str | None:
    """Why runners are not sandboxed here, or None when bubblewrap works."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed: component runners run without namespaces (apt-get install bubblewrap)"
    probe = [bwrap, *_namespaces(False), "--ro-bind", "/", "/", "--", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot start here ({exc}): component runners run without namespaces"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return f"bubblewrap cannot create namespaces here ({reason}): component runners run without them"
    return None


def _namespaces(network: bool) -> list[str]:
    return [
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        *([] if network else ["--unshare-net"]),
        "--uid", str(NOBODY), "--gid", str(NOBODY), "--new-session",
    ]  # fmt: skip


SAILOR_RUNNER = Path(__file__).resolve().parent / "sailor" / "runner.cjs"
RUNTIME_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the runtime package


def _hub_block(folder: Path) -> dict:
    try:
        hub = json.loads((folder / "component.json").read_text()).get("x-hub") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return hub if isinstance(hub, dict) else {}


def declares_network(folder: Path) -> bool:
    """The component says it calls other systems (`x-hub.network: true`): its runner gets the network."""
    return _hub_block(folder).get("network") is True


def is_node_component(folder: Path) -> bool:
    """An elastic.io / OIH component: a package.json beside component.json, and no Python entry point."""
    if not (folder / "package.json").is_file():
        return False
    return not _hub_block(folder).get("entry_point")


# What a runner may see of the machine, read-only: the system's programs and libraries and the few files of
# /etc that name resolution and TLS need. Nothing else: not /root, not /home, not the hub's folder, its .env or
# its data, not the sockets under /run (a container engine's socket is root on the host).
SYSTEM_PATHS = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/alternatives", "/etc/ssl",
    "/etc/ca-certificates", "/etc/pki", "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime",
    "/etc/passwd", "/etc/group", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/mime.types",
)  # fmt: skip
SANDBOX_RUNTIME = Path("/opt/hub")  # where the runtime package appears inside the sandbox


def runner_command(
    folder: Path, policy: SandboxPolicy, python: str = sys.executable
) -> tuple[list[str], dict[str, str]]:
    """The command that starts a runner for the component in `folder` (the Python step runner, or for a
    Node.js component the sailor-contract runner), and its environment."""
    sandboxed = policy.use_bubblewrap and sandbox_problem() is None
    runtime_root = SANDBOX_RUNTIME if sandboxed else RUNTIME_ROOT
    if is_node_component(folder):
        # V8 reserves far more address space than it uses, so Node's own heap limit stands in for RLIMIT_AS.
        heap = f"--max-old-space-size={policy.memory_mb}"
        sailor = runtime_root / SAILOR_RUNNER.relative_to(RUNTIME_ROOT)
        runner = [shutil.which("node") or "node", heap, str(sailor), str(folder)]
    else:
        runner = [python, "-m", "runtime.steps.runner", str(folder)]
    env = environment(dict(os.environ), runtime_root)
    if not sandboxed:
        return runner, env
    command = [shutil.which("bwrap") or "bwrap", *_namespaces(policy.network)]
    for path in SYSTEM_PATHS:
        if Path(path).exists():
            command += ["--ro-bind", path, path]
    # The private /tmp first: what is bound after it stays visible even when it lives under /tmp.
    command += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108
    # The interpreter, the venv and the runtime package: what the runner is made of.
    for needed in sorted({Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}):
        command += ["--ro-bind", str(needed), str(needed)]
    command += ["--ro-bind", str(RUNTIME_ROOT / "runtime"), str(SANDBOX_RUNTIME / "runtime")]
    command += ["--ro-bind", str(folder), str(folder), "--chdir", str(folder), "--", *runner]
    return command, env


def with_limits(command: list[str], policy: SandboxPolicy, address_space: bool = True) -> list[str]:
    """The command started under its limits by util-linux's prlimit: the address-space limit (inherited by
    everything it starts), so a step that allocates without end fails with MemoryError instead of taking the
    machine, and no core files. Not a preexec_fn: the worker starts runners from several threads, and code run
    between fork and exec in a threaded process can deadlock. `address_space` False for Node.js runners (their
    heap limit is a command-line flag)."""
    size = policy.memory_mb * 1024 * 1024
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise OSError("prlimit (util-linux) is not installed: runners cannot be given their memory limit")
    return [prlimit, *([f"--as={size}"] if address_space else []), "--core=0", "--", *command]


def environment(
    base: dict[str, str], runtime_root: Path, keep: Sequence[str] = ("PATH", "LANG", "LC_ALL", "TZ")
) -> dict[str, str]:
    """A runner sees none of the worker's environment (HUB_SECRET_KEYS, database URLs): only what a Python
    program needs to start, and where the runtime's code is."""
    env = {k: v for k, v in base.items() if k in keep}
    env["PYTHONPATH"] = str(runtime_root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["HOME"] = "/tmp"  # noqa: S108 - the runner's own private /tmp
    return env
