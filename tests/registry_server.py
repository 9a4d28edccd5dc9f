"""A real container registry for tests: Debian's docker-registry (the CNCF distribution server) on a free
port of 127.0.0.1, with htpasswd logins, its storage in a temporary folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx


def registry_missing() -> str | None:
    for tool in ("docker-registry", "htpasswd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker-registry apache2-utils; .ci/run does)"
    return None


class RegistryServer:
    def __init__(self, folder: Path, users: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        htpasswd = folder / "htpasswd"
        for user, password in users.items():
            line = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            )
            with htpasswd.open("a") as out:
                out.write(line.stdout.strip() + "\n")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            f"auth:\n  htpasswd:\n    realm: hub-test\n    path: {htpasswd}\n"
        )
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(folder / "registry.log").open("w"),
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"docker-registry did not start: {(folder / 'registry.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def push_component_image(engine, registry: RegistryServer, descriptor: dict, login: tuple[str, str]) -> str:
    """A component image (the tests' runner image with the descriptor as its label) built on `engine`, pushed
    to `registry` with `login`, and removed from the engine, so that what a test adds really comes from the
    registry. Returns its reference."""
    import io
    import json
    import uuid

    from app.services.component_images import DESCRIPTOR_LABEL
    from tests.container_engine import TEST_IMAGE

    dockerfile = f"FROM {TEST_IMAGE}\nLABEL {DESCRIPTOR_LABEL}={json.dumps(json.dumps(descriptor))}\n"
    source = f"localhost/hub-test-component-src:{uuid.uuid4().hex[:8]}"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=source, rm=True)
    target, tag = f"{registry.host}/team/probe", uuid.uuid4().hex[:8]
    engine.images.get(source).tag(target, tag)
    events = list(engine.api.push(target, tag, auth_config={"username": login[0], "password": login[1]},
                                  stream=True, decode=True))  # fmt: skip
    if errors := [e for e in events if e.get("error")]:
        raise RuntimeError(f"the push failed: {errors}")
    for name in (f"{target}:{tag}", source):
        engine.images.remove(name, force=True)
    return f"{target}:{tag}"


def remove_pulled(engine, reference: str) -> None:
    """The engine's storage is the machine's: what a test pulled goes when it is done."""
    for image in engine.images.list(name=reference.rsplit(":", 1)[0]):
        engine.images.remove(image.id, force=True)
