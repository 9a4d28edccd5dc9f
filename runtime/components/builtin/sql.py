"""SQL query against PostgreSQL: the database URL comes from the node's credential, parameters from the message.

The query uses named parameters (`select * from orders where id = :id`), filled from a JSONata expression
that gives an object; values are always bound, never pasted into the SQL. Rows come back as one message
(a list) or one message per row. The host is checked against the egress policy and connected to by its
checked address (libpq's hostaddr); with sslmode=verify-full TLS still verifies the certificate against the host name.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from runtime.components.builtin.transform import _evaluate
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message

MAX_ROWS = 10_000
SAFE_QUERY_OPTIONS = frozenset({"sslmode", "application_name", "connect_timeout", "target_session_attrs"})


def _engine(credential: dict[str, Any], context: StepContext, timeout_s: float) -> sa.Engine:
    raw = str(credential.get("url") or "")
    try:
        url = make_url(raw)
    except Exception:
        raise PermanentStepError(
            "the credential's database URL is not a URL (postgresql://user:pass@host/db)"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise PermanentStepError(
            f"only PostgreSQL databases are supported here, not {url.get_backend_name()!r}"
        )
    host = url.host or ""
    if not host:
        raise PermanentStepError("the database URL names no host")
    # Only connection options that cannot point the connection elsewhere or read the worker's files.
    refused = sorted(set(url.query) - SAFE_QUERY_OPTIONS)
    if refused:
        raise PermanentStepError(
            f"the database URL may not set {', '.join(refused)}; allowed: {', '.join(sorted(SAFE_QUERY_OPTIONS))}"
        )
    address = context.egress.check_host(host, url.port or 5432)
    url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(
        url,
        poolclass=NullPool,  # a connection per execution: steps of many tenants share the worker
        connect_args={
            "hostaddr": address,
            "passfile": "/dev/null",  # never the worker's own stored passwords
            "connect_timeout": max(1, int(timeout_s)),
            "options": f"-c statement_timeout={int(timeout_s * 1000)}",
        },
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)  # dates, decimals, UUIDs: their text


def query(message: Message, fields: dict[str, Any], context: StepContext) -> list[Message] | Message:
    sql = str(fields.get("query") or "").strip()
    if not sql:
        raise PermanentStepError("the query is empty")
    params = _evaluate(fields, "params", message.data) if fields.get("params") else {}
    if not isinstance(params, dict):
        raise PermanentStepError(
            f"params must give an object of parameter values, got {type(params).__name__}"
        )
    mode = str(fields.get("mode") or "rows")
    if mode not in ("rows", "each"):
        raise PermanentStepError(f"mode {mode!r} is not rows or each")
    timeout = float(fields.get("timeout_s") or 30)
    engine = _engine(context.credential or {}, context, timeout)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(sql), params)
            if not result.returns_rows:
                return Message(data={"rowcount": result.rowcount}, metadata=message.metadata)
            rows = [
                {k: _jsonable(v) for k, v in row.items()} for row in result.mappings().fetchmany(MAX_ROWS + 1)
            ]
    except sa.exc.OperationalError as exc:  # unreachable server, timeouts: may pass
        raise StepError(f"the database could not run the query: {str(exc.orig).strip()}") from None
    except sa.exc.DBAPIError as exc:  # a syntax error, a constraint: will not pass by retrying
        raise PermanentStepError(f"the query failed: {str(exc.orig).strip()}") from None
    except sa.exc.StatementError as exc:  # e.g. a :name in the query that the parameters lack
        raise PermanentStepError(f"the query's parameters do not match: {exc.orig}") from None
    finally:
        engine.dispose()
    if len(rows) > MAX_ROWS:
        raise PermanentStepError(
            f"the query returned more than {MAX_ROWS} rows; add a LIMIT or page with OFFSET"
        )
    context.log(f"query returned {len(rows)} rows", "debug")
    if mode == "each":
        return [Message(data=row, metadata=message.metadata) for row in rows]
    return Message(data=rows, metadata=message.metadata)


def verify(credential: dict[str, Any], context: StepContext) -> str:
    """The credential check of the Credentials page: connect and run `SELECT 1`."""
    engine = _engine(credential, context, 15.0)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        raise PermanentStepError(f"the database refused the connection: {str(exc.orig).strip()}") from None
    finally:
        engine.dispose()
    return f"connected to {engine.url.database or 'the database'} on {engine.url.host}"


SQL = {
    "title": "SQL query",
    "description": "Runs a query against a PostgreSQL database with parameters from the message.",
    "x-hub": {"credential_kinds": ["fields"], "credential_required": True},
    "credentials": {
        "fields": {
            "url": {
                "label": "Database URL",
                "viewClass": "PasswordFieldView",
                "required": True,
                "placeholder": "postgresql://user:password@db.example.com:5432/shop",
            }
        }
    },
    "actions": {
        "query": {
            "title": "Run a query",
            "main": "builtin:sql.query",
            "x-hub": {"credential_required": True},
            "fields": {
                "query": {
                    "label": "SQL",
                    "viewClass": "CodeFieldView",
                    "required": True,
                    "placeholder": "select * from orders where id = :id",
                },
                "params": {
                    "label": "Parameters (JSONata object)",
                    "viewClass": "JSONataView",
                    "placeholder": "{'id': id}",
                },
                "mode": {
                    "label": "Output",
                    "viewClass": "SelectView",
                    "model": {"rows": "One message with all rows", "each": "One message per row"},
                },
            },
        }
    },
}
