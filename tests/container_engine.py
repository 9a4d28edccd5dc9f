"""A real Docker-API container engine for tests: podman's service on a private socket (podman and runc from
Debian's packages, installed by .ci/run), and a test image made without any registry: a busybox root file system
imported as an image, with the host's Python, the venv and the project mounted read-only at run time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
# The tests' registries listen on plain HTTP on loopback (as Docker allows for 127.0.0.0/8 by default).
REGISTRIES_CONF = """[[registry]]
location = "127.0.0.1"
insecure = true
"""
TEST_IMAGE = "localhost/hub-test-runner:1"
DEBIAN_PACKAGES = ("python3-minimal", "python3-pip", "nodejs", "ca-certificates")
DEBIAN_IMAGE = f"localhost/hub-test-debian:bookworm-{len(DEBIAN_PACKAGES)}"


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap must reach the same one)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


PROJECT = Path(__file__).resolve().parents[1]


def engine_missing() -> str | None:
    for tool in ("podman", "runc", "busybox", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc busybox-static debootstrap; .ci/run does)"
    return None


class PodmanService:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "podman.sock"
        conf = folder / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        (folder / "registries.conf").write_text(REGISTRIES_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf),
                    "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf")}  # fmt: skip
        self.process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            env=self.env,
            cwd=folder,  # conmon leaves files (an "oom" marker) in its working folder
            stdout=subprocess.DEVNULL,
            stderr=(folder / "service.log").open("w"),
        )
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"podman service did not start: {(folder / 'service.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def build_test_image(self) -> str:
        """busybox as the image; Python comes from the host at run time (see runner_mounts)."""
        rootfs = self.folder / "rootfs"
        (rootfs / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
        for name in ("sh", "sleep", "cat"):
            (rootfs / "bin" / name).symlink_to("busybox")
        for name in ("usr", "lib", "lib64", "tmp", "etc", "proc", "dev", "component", "root", "work"):
            (rootfs / name).mkdir(exist_ok=True)
        archive = self.folder / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        subprocess.run(["podman", "import", str(archive), TEST_IMAGE], env=self.env, check=True,
                       capture_output=True, cwd=self.folder)  # fmt: skip
        return TEST_IMAGE

    def debian_image(self) -> str:
        """A Debian bookworm image with Python 3.11, pip and Node.js, for building the real parent images: made
        here with debootstrap from the apt mirror (about 50 s) and kept on the engine under a tag naming its
        recipe, so later runs find it."""
        found = subprocess.run(["podman", "image", "exists", DEBIAN_IMAGE], env=self.env, cwd=self.folder)
        if found.returncode == 0:
            return DEBIAN_IMAGE
        root = self.folder / "debian"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", "bookworm",
                        str(root), apt_mirror()], check=True, capture_output=True, timeout=600)  # fmt: skip
        archive = self.folder / "debian.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        subprocess.run(["podman", "import", str(archive), DEBIAN_IMAGE], env=self.env, check=True,
                       capture_output=True, cwd=self.folder)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
        archive.unlink()
        return DEBIAN_IMAGE

    def stop(self) -> None:
        # The engine's storage is the machine's: only what the tests' executors started is theirs to remove
        # (they do, on close), never everything.
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def runner_mounts(component: Path) -> tuple[list[str], dict[str, dict[str, str]], dict[str, str]]:
    """Command, volumes and environment that make the busybox test image a Python parent image: the host's
    interpreter, the venv and the project read-only, the component at /component."""
    interpreter = Path(sys.executable).resolve()
    prefix = Path(sys.base_prefix).resolve()
    binds = {str(p): {"bind": str(p), "mode": "ro"} for p in {Path("/usr"), Path("/lib"), Path("/lib64"), prefix,
                                                             Path(sys.prefix).resolve(), PROJECT} if p.exists()}  # fmt: skip
    binds[str(component)] = {"bind": "/component", "mode": "ro"}
    command = [str(Path(sys.prefix) / "bin" / "python"), "-m", "runtime.steps.runner", "/component"]
    environment = {"PYTHONPATH": str(PROJECT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}
    assert interpreter.exists()
    return command, binds, environment
