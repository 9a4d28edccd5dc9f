"""`hub component import|list`: the component catalog from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.admin import _db
from app.cli.main import reports_errors
from app.errors import NotFoundError


@click.group()
def component() -> None:
    """Manage the component catalog."""


def _tenant_id(db, slug: str | None):
    from app.services import accounts

    if slug is None:
        return None
    tenant = accounts.find_tenant_by_slug(db, accounts.slugify(slug))
    if tenant is None:
        raise NotFoundError(f"No tenant with the slug {slug!r}.")
    return tenant.id


def _report(result, done: str) -> None:
    state = f"already {done}" if result.unchanged else done
    click.echo(f"{state} {result.name} {result.version} ({len(result.warnings)} warnings)")
    for warning in result.warnings:
        click.echo(f"  warning: {warning}")


@component.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--tenant", "tenant_slug", default=None, help="Private to this tenant (slug); global when omitted."
)
@click.option("--name", default=None, help="Catalog name; derived from the folder or file name when omitted.")
@reports_errors
def import_(path: Path, tenant_slug: str | None, name: str | None) -> None:
    """Import a component.json file, or a component folder (component.json with its metadata files)."""
    from app.config import get_settings
    from app.services import catalog

    db = _db()
    try:
        tenant_id = _tenant_id(db, tenant_slug)
        if path.is_dir():
            result = catalog.import_folder(
                db, path, tenant_id=tenant_id, name=name, components_dir=get_settings().components_path
            )
        else:
            default = catalog.name_from_file(path.name) or path.parent.name.split("__")[-1]
            result = catalog.import_descriptor(
                db, path.read_bytes(), name=name or default, tenant_id=tenant_id
            )
    finally:
        db.dispose()
    _report(result, "imported")


@component.command("add-image")
@click.argument("reference")
@click.option(
    "--tenant", "tenant_slug", default=None, help="Private to this tenant (slug), pulled with its login."
)
@click.option(
    "--credential",
    "credential_name",
    default=None,
    help="The tenant's container-registry credential to pull with (by name); found by registry if omitted.",
)
@click.option(
    "--no-pull", is_flag=True, help="Air-gapped: the image is already on the engine (`docker load`)."
)
@click.option("--name", default=None, help="Catalog name; the repository's last part when omitted.")
@reports_errors
def add_image(reference: str, tenant_slug: str | None, credential_name: str | None, no_pull: bool,
              name: str | None) -> None:  # fmt: skip
    """Add a component by image reference: pull it (DOCKER_HOST's engine), read its descriptor, pin its digest."""
    import sqlalchemy as sa

    from app.config import get_settings
    from app.executors import engine_client
    from app.keyring import load_key_ring
    from app.services.component_images import add_image as add
    from app.storage.models import Credential
    from app.storage.scoping import tenant_session
    from app.vault.store import Vault

    db = _db()
    try:
        tenant_id = _tenant_id(db, tenant_slug)
        credential_id = None
        if credential_name is not None:
            if tenant_id is None:
                raise click.UsageError("--credential needs --tenant: pull credentials belong to a tenant")
            with tenant_session(db.sessions, tenant_id) as session:
                credential_id = session.scalar(
                    sa.select(Credential.id).where(
                        Credential.name == credential_name, Credential.kind == "registry"
                    )
                )
            if credential_id is None:
                raise NotFoundError(
                    f"No container-registry credential named {credential_name!r} in this tenant."
                )
        client = engine_client()
        # The vault (and so the master key) only when a tenant's login may be needed.
        vault = Vault(load_key_ring(get_settings())) if tenant_id and not no_pull else None
        result = add(db, vault, client, reference, tenant_id=tenant_id,
                     credential_id=credential_id, pull=not no_pull, name=name)  # fmt: skip
    finally:
        db.dispose()
    _report(result, "added")


@component.command("list")
@click.option("--tenant", "tenant_slug", required=True, help="Show what this tenant sees (slug).")
@reports_errors
def list_(tenant_slug: str) -> None:
    """List the components a tenant sees: global ones and its own."""
    from app.services import catalog

    db = _db()
    try:
        entries = catalog.list_components(db, _tenant_id(db, tenant_slug))
    finally:
        db.dispose()
    for entry in entries:
        click.echo(
            f"{entry.name:30} {entry.version:16} {entry.scope:7} {entry.triggers} triggers, {entry.actions} actions"
            f"  {entry.title}"
        )


@component.command("new")
@click.argument("name")
@click.option(
    "--dir", "parent", default=".", type=click.Path(file_okay=False, path_type=Path), show_default=True
)
@reports_errors
def new(name: str, parent: Path) -> None:
    """Write a new Python component to start from: descriptor, handlers, tests and a Dockerfile."""
    from app.scaffold.component import new_component

    folder = new_component(name, parent)
    click.echo(
        f"created {folder}: edit component.json and the handlers, then `hub component import {folder}`"
    )


COMMANDS = [component]
