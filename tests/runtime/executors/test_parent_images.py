"""The real parent images (runtime/images/), built on a Debian base with the builder component authors use, and
components built on them running in the docker executor as their authors shipped them: the image's own
command, no mounts, as nobody. A Python component on the Python image; an elastic.io sailor-contract Node.js
component, unmodified, on the Node.js image."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runtime.executors.docker import ContainerLimits, DockerExecutor
from runtime.images.build import IMAGES, ImageBuildError, build, build_parent_image
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.executor import StepInvocation
from runtime.steps.message import Message

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "components"
TENANT = f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def parents(container_engine, tmp_path_factory) -> Iterator[tuple[docker.DockerClient, str, str]]:
    client = docker.DockerClient(base_url=container_engine.url)
    base = container_engine.debian_image()
    wheels = tmp_path_factory.mktemp("wheels")
    # Offline build: the runner's requirements as wheels fetched by this machine's pip, installed --no-index.
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(wheels),
                    "-r", str(IMAGES / "python" / "requirements.txt")], check=True, timeout=300)  # fmt: skip
    suffix = uuid.uuid4().hex[:8]
    python = build_parent_image(
        client, "python", f"localhost/hub-test-python:{suffix}", base=base, wheels=wheels
    )
    nodejs = build_parent_image(client, "nodejs", f"localhost/hub-test-nodejs:{suffix}", base=base)
    yield client, python.tag, nodejs.tag
    for tag in (python.tag, nodejs.tag):
        client.images.remove(tag, force=True)


def component_image(client: docker.DockerClient, parent: str, folder: Path, tmp_path: Path) -> str:
    """What a component author does: their folder on top of the parent image."""
    context = tmp_path / "context"
    shutil.copytree(folder, context)
    (context / "Dockerfile").write_text(f"FROM {parent}\nCOPY . /component\n")
    return build(client, context, f"localhost/hub-test-{folder.name}:{uuid.uuid4().hex[:8]}").tag


def run(executor: DockerExecutor, image: str, component: str, function: str, data: dict, credential=None):
    context = StepContext(tenant_id=TENANT, flow_id="f", run_id="r", step_id="s", message_id="m", attempt=1,
                          credential=credential, egress=EgressPolicy())  # fmt: skip
    return executor.execute(
        StepInvocation(component, function, {}, Message(data=data), context, 30, code=image)
    )


def test_a_python_component_runs_in_its_image_on_the_python_parent(parents, tmp_path: Path) -> None:
    client, python, _ = parents
    image = component_image(client, python, FIXTURES / "probe", tmp_path)
    executor = DockerExecutor(client=client, limits=ContainerLimits(memory_mb=256))
    try:
        executor.warm_up(TENANT, image, functions=("echo",))  # what activation asks
        result = run(executor, image, "probe", "echo", {"order": 7})
        assert result.ok, result.error
        assert result.outputs[0].data["data"] == {"order": 7}
        assert result.outputs[0].data["uid"] == 65534  # nobody, although the image does not say so
        secret = run(executor, image, "probe", "read_file", {"path": "/etc/shadow"})
        assert not secret.ok and "Permission denied" in (secret.error or "")
    finally:
        executor.close()
        client.images.remove(image, force=True)


def test_an_elasticio_component_runs_unmodified_on_the_nodejs_parent(parents, tmp_path: Path) -> None:
    client, _, nodejs = parents
    image = component_image(client, nodejs, FIXTURES / "sailor-demo", tmp_path)
    executor = DockerExecutor(client=client, limits=ContainerLimits(memory_mb=256))
    try:
        greeted = run(executor, image, "sailor-demo", "greet", {"name": "Ada"}, {"apiKey": "good-key"})
        assert greeted.ok, greeted.error
        assert greeted.outputs[0].data["greeting"] == "hello Ada"
        assert ("info", "stderr: greeting Ada") in greeted.logs  # its console output is the step's log
        split = run(executor, image, "sailor-demo", "legacy", {"items": [1, 2]})
        assert [o.data for o in split.outputs] == [{"item": 1}, {"item": 2}]
        assert executor.verify(TENANT, image, {"apiKey": "good-key"}) == (True, None)
        assert executor.verify(TENANT, image, {"apiKey": "wrong"}) == (False, "the API key is not accepted")
    finally:
        executor.close()
        client.images.remove(image, force=True)


def test_a_build_that_fails_says_why(parents, tmp_path: Path) -> None:
    client, python, _ = parents
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {python}\nRUN exit 7\n")
    with pytest.raises(ImageBuildError, match="building localhost/hub-test-broken:1 failed"):
        build(client, context, "localhost/hub-test-broken:1")
    with pytest.raises(ValueError, match="no parent image 'java': choose one of python, nodejs"):
        build_parent_image(client, "java", "x:1")
