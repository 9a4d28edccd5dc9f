"""`hub component import|list` against a real database file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from app.services import accounts
from app.storage.db import Database

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "component-json"


def _hub(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_import_and_list(sqlite_template, tmp_path) -> None:
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    db = Database.connect(f"sqlite:///{path}")
    accounts.create_tenant(db, "Acme")
    db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=f"sqlite:///{path}", HUB_DATA_DIR=str(tmp_path), HUB_LOG_LEVEL="WARNING")

    done = _hub(
        env, "component", "import", str(FIXTURES / "elasticio__postgresql-component.json"), "--tenant", "acme"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "imported postgresql-component 0.0.0+"
    )  # no version in it: one from its content
    assert "warning: actions.sqlQuery.fields.label: is not a field definition" in done.stdout
    again = _hub(
        env, "component", "import", str(FIXTURES / "elasticio__postgresql-component.json"), "--tenant", "acme"
    )
    assert again.stdout.startswith("already imported postgresql-component")

    listed = _hub(env, "component", "list", "--tenant", "acme")
    assert listed.returncode == 0 and "postgresql" in listed.stdout and "tenant" in listed.stdout

    broken = tmp_path / "broken.json"
    broken.write_text('{"title": "x", ')
    failed = _hub(env, "component", "import", str(broken))
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: component.json is not valid JSON")
    unknown = _hub(env, "component", "list", "--tenant", "nope")
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "error: No tenant with the slug 'nope'.")


def test_add_image_from_the_command_line(sqlite_template, tmp_path, container_engine) -> None:
    import io
    import json
    import uuid

    import docker

    from app.services.component_images import DESCRIPTOR_LABEL
    from tests.container_engine import TEST_IMAGE

    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    db = Database.connect(f"sqlite:///{path}")
    accounts.create_tenant(db, "Acme")
    db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=f"sqlite:///{path}", HUB_DATA_DIR=str(tmp_path), HUB_LOG_LEVEL="WARNING",
               DOCKER_HOST=container_engine.url)  # fmt: skip

    usage = _hub(env, "component", "add-image", "localhost/x:1", "--credential", "Registry")
    assert usage.returncode == 2 and "--credential needs --tenant" in usage.stderr
    unknown = _hub(env, "component", "add-image", "localhost/x:1", "--tenant", "acme", "--credential", "Nope")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        "error: No container-registry credential named 'Nope' in this tenant.",
    )
    missing = _hub(env, "component", "add-image", "localhost/never-loaded:1", "--no-pull", "--tenant", "acme")
    assert missing.returncode == 2
    assert missing.stderr.startswith(
        "error: The image localhost/never-loaded:1 is not on the container engine"
    )

    descriptor = {"title": "Loaded", "version": "2.0.0", "actions": {"go": {"title": "Go", "main": "x.go"}}}
    image = f"localhost/hub-test-cli:{uuid.uuid4().hex[:8]}"
    engine = docker.DockerClient(base_url=container_engine.url)
    dockerfile = f"FROM {TEST_IMAGE}\nLABEL {DESCRIPTOR_LABEL}={json.dumps(json.dumps(descriptor))}\n"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=image, rm=True)
    try:
        added = _hub(env, "component", "add-image", image, "--no-pull", "--tenant", "acme")
        assert added.returncode == 0, added.stderr
        assert added.stdout.startswith("added hub-test-cli 2.0.0")
    finally:
        engine.images.remove(image, force=True)
