"""Which executors a worker of this hub has: built-ins run inline; imported Python and Node.js components in
sandboxed runner processes whose code comes from $HUB_COMPONENTS_DIR; with HUB_EXECUTOR=docker, components
published as images in warm containers (DOCKER_HOST, or podman's Docker-API socket)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound

from app.config import HubSettings
from app.errors import ConfigError
from app.services.component_code import folder_resolver
from runtime.executors.docker import DockerExecutor
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.steps.executor import Executor, InlineExecutor


def _pooling(settings: HubSettings) -> dict[str, Any]:
    return {
        "idle_s": settings.runner_idle_s,
        "max_instances": settings.max_instances,
        "max_tenant_runners": settings.tenant_max_runners,
        "scale_down_s": settings.runner_scale_down_s,
    }


def process_executor(settings: HubSettings) -> ProcessExecutor:
    # Runners see the system, the interpreter and their own code, never the hub's data or configuration.
    return ProcessExecutor(folder_resolver(settings.components_path), SandboxPolicy(), **_pooling(settings))


def verification_runners(settings: HubSettings) -> dict[str, ProcessExecutor]:
    """Executors for one Verify of a credential (an imported component's own check), closed after it."""
    runners = {"process": process_executor(settings)}
    if settings.executor == "docker":
        runners["docker"] = DockerExecutor(client=engine_client(), user=settings.container_user, idle_s=1)
    return runners


def step_executors(settings: HubSettings) -> dict[str, Executor]:
    executors: dict[str, Executor] = {"inline": InlineExecutor(), "process": process_executor(settings)}
    if settings.executor == "docker":
        containers = DockerExecutor(
            client=engine_client(), user=settings.container_user, **_pooling(settings)
        )
        containers.reconcile()  # what a worker of this host left behind when it was killed
        executors["docker"] = containers
    return executors


def container_engine(settings: HubSettings) -> docker.DockerClient:
    """The engine components' images are pulled onto and run on (DOCKER_HOST); only with the docker executor."""
    if settings.executor != "docker":
        raise ConfigError(
            "Components published as images run in the docker executor, which this hub does not have: set "
            "HUB_EXECUTOR=docker (and DOCKER_HOST) on the web and worker processes."
        )
    return engine_client()


def engine_client() -> docker.DockerClient:
    """DOCKER_HOST's engine (or the local socket), or a ConfigError saying so."""
    try:
        return docker.from_env()
    except DockerException as exc:
        raise ConfigError(f"The container engine cannot be reached ({exc}); check DOCKER_HOST.") from None


def image_check(settings: HubSettings) -> Callable[[str], str | None] | None:
    """For activation: why a component's image cannot run here (None: it can); None without a docker executor."""
    if settings.executor != "docker":
        return None

    def check(image: str) -> str | None:
        if not image:
            return "its descriptor names no image (x-hub.image)"
        try:
            docker.from_env().images.get(image)
        except ImageNotFound:
            return f"the image {image!r} is not on the container engine: pull or load it, then activate again"
        except (DockerException, OSError) as exc:
            return f"the container engine cannot be reached ({exc}); check DOCKER_HOST"
        return None

    return check
