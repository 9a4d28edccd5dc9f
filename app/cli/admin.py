"""Administration commands: users, tenants, keys."""

from __future__ import annotations

import sys

import click

from app.cli.main import reports_errors, settings
from app.errors import ValidationError


def _db():
    from app.storage.db import Database

    return Database.connect(settings().effective_database_url)


@click.group()
def admin() -> None:
    """Manage user accounts."""


@admin.command("create-user")
@click.argument("email")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option(
    "--tenant", "tenant_slug", default=None, help="Add the user to this tenant (slug); created if new."
)
@click.option(
    "--role", default="owner", type=click.Choice(["owner", "admin", "editor", "viewer"]), show_default=True
)
@click.option("--superuser", is_flag=True, help="May administer the whole hub.")
@reports_errors
def create_user(
    email: str, password: str, display_name: str, tenant_slug: str | None, role: str, superuser: bool
) -> None:
    """Create a local account (and optionally its membership in a tenant)."""
    from app.services import accounts

    db = _db()
    try:
        user = accounts.create_user(db, email, password, display_name, is_superuser=superuser)
        click.echo(f"created user {user.email}")
        if tenant_slug:
            tenant = accounts.find_tenant_by_slug(db, accounts.slugify(tenant_slug))
            if tenant is None:
                tenant = accounts.create_tenant(db, tenant_slug)
                click.echo(f"created tenant {tenant.slug}")
            accounts.add_member(db, tenant.id, user.id, role)
            click.echo(f"{user.email} is {role} of {tenant.slug}")
    finally:
        db.dispose()


@click.group()
def tenant() -> None:
    """Manage tenants."""


@tenant.command("create")
@click.argument("name")
@click.option("--slug", default=None, help="Short unique name; derived from NAME when omitted.")
@click.option("--weight", default=1, show_default=True, help="Fair-share weight against other tenants.")
@click.option("--owner", "owner_email", default=None, help="E-mail of an existing user to make owner.")
@reports_errors
def create_tenant(name: str, slug: str | None, weight: int, owner_email: str | None) -> None:
    """Create a tenant."""
    from app.services import accounts

    db = _db()
    try:
        owner = None
        if owner_email:
            owner = accounts.find_user_by_email(db, owner_email)
            if owner is None:
                raise ValidationError(
                    f"No user with the e-mail {owner_email}; create it with `hub admin create-user`."
                )
        created = accounts.create_tenant(db, name, slug, weight)
        click.echo(f"created tenant {created.slug} ({created.id})")
        if owner is not None:
            accounts.add_member(db, created.id, owner.id, "owner")
            click.echo(f"{owner.email} is owner of {created.slug}")
    finally:
        db.dispose()


@click.group()
def keys() -> None:
    """Manage the master key ring (HUB_SECRET_KEYS)."""


@keys.command("generate")
def generate() -> None:
    """Print a new random master key for HUB_SECRET_KEYS."""
    from app.keyring import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@reports_errors
def rotate() -> None:
    """Re-wrap every tenant's data key under the first key of HUB_SECRET_KEYS (safe while the hub runs).

    1. Put the new key first and keep the old ones in HUB_SECRET_KEYS, and restart every hub process with that
       ring (a process that does not know the new key cannot open what is re-wrapped under it).
    2. Run this command.
    3. When it reports nothing left, remove the old keys (and restart again)."""
    from app.keyring import load_key_ring
    from app.storage.db import Database
    from app.vault.store import Vault

    config = settings()
    ring = load_key_ring(config)
    db = Database.connect(config.effective_database_url)
    try:
        report = Vault(ring).rewrap_all(db)
    finally:
        db.dispose()
    click.echo(f"{report.rewrapped} tenant keys re-wrapped under master key {ring[0].key_id!r}")
    for problem in report.problems:
        click.echo(f"not re-wrapped: {problem}", err=True)
    if report.problems:
        sys.exit(1)
    if len(ring) > 1:
        click.echo(
            f"every data key is under {ring[0].key_id!r} now: the other keys may leave HUB_SECRET_KEYS"
        )


COMMANDS = [admin, tenant, keys]
