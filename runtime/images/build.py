"""Build the parent images component authors build on (`hub image build python|nodejs`): the build context is
assembled here (the Dockerfile beside this module, the runtime package or the sailor runner) and built with the
docker SDK on any Docker-API engine (DOCKER_HOST; podman's service works).

Offline builds: `wheels` is a folder of wheels for the Python image's requirements (`pip download -r
runtime/images/python/requirements.txt -d FOLDER` on a machine that can reach an index), installed with
`--no-index`; `base` names an image already on the engine (`docker load`) instead of the default one."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException

IMAGES = Path(__file__).resolve().parent
RUNTIME = IMAGES.parent
KINDS = ("python", "nodejs")


class ImageBuildError(Exception):
    """The engine could not build the image; the message carries the end of the build log."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str


def build_parent_image(
    client: docker.DockerClient,
    kind: str,
    tag: str,
    *,
    base: str | None = None,
    wheels: Path | None = None,
) -> BuiltImage:
    if kind not in KINDS:
        raise ValueError(f"no parent image {kind!r}: choose one of {', '.join(KINDS)}")
    with tempfile.TemporaryDirectory(prefix=f"hub-image-{kind}-") as folder:
        context = Path(folder)
        shutil.copy(IMAGES / kind / "Dockerfile", context / "Dockerfile")
        buildargs = {"BASE": base} if base else {}
        if kind == "python":
            shutil.copy(IMAGES / "python" / "requirements.txt", context / "requirements.txt")
            shutil.copytree(
                RUNTIME, context / "runtime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
            (context / "wheels").mkdir()
            if wheels is not None:
                for wheel in wheels.glob("*.whl"):
                    shutil.copy(wheel, context / "wheels" / wheel.name)
                buildargs["PIP_OPTIONS"] = "--no-index"
        else:
            shutil.copy(RUNTIME / "executors" / "sailor" / "runner.cjs", context / "runner.cjs")
        return build(client, context, tag, buildargs)


def build(
    client: docker.DockerClient, context: Path, tag: str, buildargs: dict[str, str] | None = None
) -> BuiltImage:
    """Build `context` (a folder with a Dockerfile); the build's own output is in the error when it fails."""
    try:
        image, _ = client.images.build(
            path=str(context), tag=tag, buildargs=buildargs or {}, rm=True, pull=False
        )
    except BuildError as exc:
        said = [str(step.get("stream") or step.get("error") or "").rstrip() for step in exc.build_log]
        tail = "\n".join(line for line in said if line)[-3000:]
        raise ImageBuildError(f"building {tag} failed: {exc.msg}\n{tail}") from None
    except (DockerException, OSError) as exc:
        raise ImageBuildError(f"the container engine cannot build {tag}: {exc}") from None
    return BuiltImage(tag, str(image.id))
