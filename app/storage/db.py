"""Engine and session factory. SQLite gets the pragmas that make it safe for several processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import ConfigError


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: every statement after it waits for another process's lock instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=10000")
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
        # A new file (the setting only takes before the first table): deleted runs then give their pages back
        # to the file system when the retention job runs the incremental vacuum.
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    # WAL lets the web app read while the worker's recorder writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # A database host that drops packets would otherwise hold a connecting thread for minutes.
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    return sa.create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def check_database(engine: Engine, variable: str = "HUB_DATABASE_URL") -> None:
    """Fail fast with one line naming the variable when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        safe_url = engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"{variable}: cannot connect to {safe_url} ({reason})") from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"{variable}: {exc.__class__.__name__}: {exc}") from None


@dataclass(frozen=True)
class Database:
    """The engine and its session factory, created once by the composition root and passed down."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Database:
        engine = create_db_engine(url, **kwargs)
        return cls(engine=engine, sessions=session_factory(engine))

    def dispose(self) -> None:
        self.engine.dispose()
