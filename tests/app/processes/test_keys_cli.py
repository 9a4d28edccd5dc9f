"""`hub keys rotate` as a command: re-wraps under the first key and says when the old ones may go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.config import parse_key_ring
from app.keyring import generate_key
from app.services import accounts
from app.storage import migrations
from app.storage.db import Database
from app.storage.scoping import tenant_session
from app.vault.store import Vault


def test_keys_rotate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrations.upgrade(url)
    old, new = f"old:{generate_key()}", f"new:{generate_key()}"
    db = Database.connect(url)
    tenant = accounts.create_tenant(db, "Acme").id
    with tenant_session(db.sessions, tenant) as session:
        Vault(parse_key_ring(old)).store(session, tenant, name="c", kind="api_key", values={"key": "v"})
    env = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SECRET_KEYS": f"{new},{old}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "rotate"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "1 tenant keys re-wrapped under master key 'new'" in done.stdout
    assert "may leave HUB_SECRET_KEYS" in done.stdout
    env["HUB_SECRET_KEYS"] = new  # the old key removed: everything is under the new one already
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "rotate"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "0 tenant keys re-wrapped" in done.stdout
    db.dispose()
