"""The SQL query component against a real PostgreSQL (HUB_TEST_DATABASE_URL, set by .ci/run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from runtime.components.builtin.sql import query
from runtime.net.egress import EgressPolicy, EgressRefusedError
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError, StepError
from runtime.steps.message import Message

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    url = make_url(postgres_url).set(drivername="postgresql")
    yield url.render_as_string(hide_password=False)
    # The session's database is shared: leave it as found (the migration tests compare its tables).
    engine = sa.create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists sql_step_orders"))
    engine.dispose()


def _context(url: str, egress: str = "127.0.0.1,localhost,::1") -> StepContext:
    return StepContext("t", "f", "r", "s", "m", 1, credential={"url": url}, egress=EgressPolicy.parse(egress))


def test_statements_rows_and_each(database) -> None:
    ctx = _context(database)
    query(
        Message(),
        {"query": "create table if not exists sql_step_orders (id int primary key, total numeric)"},
        ctx,
    )
    query(Message(), {"query": "delete from sql_step_orders"}, ctx)
    inserted = query(
        Message(data={"orders": [{"id": 1, "total": 9.5}]}),
        {"query": "insert into sql_step_orders values (:id, :total)", "params": "orders[0]"},
        ctx,
    )
    assert inserted.data == {"rowcount": 1}
    query(Message(), {"query": "insert into sql_step_orders values (2, 20), (3, 30)"}, ctx)
    rows = query(
        Message(data={"min": 5}),
        {
            "query": "select id, total from sql_step_orders where total > :min order by id",
            "params": "{'min': min}",
        },
        ctx,
    )
    assert rows.data == [{"id": 1, "total": "9.5"}, {"id": 2, "total": "20"}, {"id": 3, "total": "30"}]
    each = query(Message(), {"query": "select id from sql_step_orders order by id", "mode": "each"}, ctx)
    assert [m.data for m in each] == [{"id": 1}, {"id": 2}, {"id": 3}]
    # A value that would break pasted SQL is only ever bound.
    hostile = query(
        Message(data={"id": "1; drop table sql_step_orders"}),
        {"query": "select count(*) as n from sql_step_orders where id::text = :id", "params": "{'id': id}"},
        ctx,
    )
    assert hostile.data == [{"n": 0}]


def test_errors_are_classified(database) -> None:
    ctx = _context(database)
    with pytest.raises(PermanentStepError, match="the query failed: syntax error"):
        query(Message(), {"query": "selec 1"}, ctx)
    with pytest.raises(
        PermanentStepError, match="parameters do not match: A value is required for bind parameter"
    ):
        query(Message(), {"query": "select :missing"}, ctx)
    with pytest.raises(StepError, match="could not run the query"):
        query(Message(), {"query": "select pg_sleep(2)", "timeout_s": 1}, ctx)
    with pytest.raises(EgressRefusedError):
        query(Message(), {"query": "select 1"}, _context(database, egress=""))
    for option in ("host=127.0.0.2", "passfile=/root/.pgpass", "service=prod", "sslkey=/etc/key"):
        with pytest.raises(PermanentStepError, match="the database URL may not set"):
            query(Message(), {"query": "select 1"}, _context(f"{database}?{option}"))
    with pytest.raises(PermanentStepError, match="only PostgreSQL"):
        query(Message(), {"query": "select 1"}, _context("sqlite:////etc/passwd"))
