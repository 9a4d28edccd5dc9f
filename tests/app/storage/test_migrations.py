"""Migrations: up to head and down to base on SQLite and PostgreSQL; the schema matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.storage import migrations
from app.storage.base import Base
from app.storage.db import create_db_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = create_db_engine(url)
    # The session database may hold the shared migrated schema; start from nothing.
    migrations.downgrade(url, "base")
    engine.dispose()
    return url


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    assert _tables(empty_url) == set(Base.metadata.tables)
    migrations.downgrade(empty_url, "base")
    assert _tables(empty_url) == set()
    migrations.upgrade(empty_url)
    engine = create_db_engine(empty_url)
    try:
        assert migrations.current_revision(engine) == migrations.head_revision(empty_url)
    finally:
        engine.dispose()


def test_schema_matches_models(empty_url: str) -> None:
    """No model change may ship without its migration."""
    migrations.upgrade(empty_url)
    engine = create_db_engine(empty_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
