"""`hub image build`: the parent images component authors build on (runtime/images/)."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.main import reports_errors
from app.errors import HubError


@click.group()
def image() -> None:
    """Container images: the parent images of components."""


@image.command("build")
@click.argument("kind", type=click.Choice(["python", "nodejs"]))
@click.option("--tag", default=None, help="Image tag; integration-hub-KIND:VERSION when omitted.")
@click.option(
    "--base",
    default=None,
    help="Base image already on the engine (default: python:3.11-slim / node:20-slim).",
)
@click.option("--wheels", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Offline: a folder with wheels of runtime/images/python/requirements.txt.")  # fmt: skip
@reports_errors
def build(kind: str, tag: str | None, base: str | None, wheels: Path | None) -> None:
    """Build a parent image on DOCKER_HOST's engine."""
    from importlib.metadata import version

    from app.executors import engine_client
    from runtime.images.build import ImageBuildError, build_parent_image

    client = engine_client()
    tag = tag or f"integration-hub-{kind}:{version('integration-hub')}"
    try:
        built = build_parent_image(client, kind, tag, base=base, wheels=wheels)
    except ImageBuildError as exc:
        raise HubError(str(exc)) from None
    click.echo(f"built {built.tag} ({built.id[:19]})")


COMMANDS = [image]
