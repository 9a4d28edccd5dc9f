"""The run history at scale on PostgreSQL: 1,000,000 runs, 5,000,000 step executions and 10,000,000 log lines
over 100 tenants, and the queries behind the pages timed through the services the pages call.

    .venv/bin/python -m bench.db_scale [--url postgresql+psycopg://postgres@127.0.0.1:5432/hub_bench_db_scale]
                                       [--runs 1000000] [--repeat 200] [--fresh]

The database is created (and seeded) when missing, or when --fresh; a seeded one is reused, so the ~10 minutes
of seeding are paid once. Seeding is done by the server (INSERT ... SELECT over generate_series), with the
hub's own schema and indexes in place. Measured, p50/p95 over --repeat calls on random tenants and runs:
  - runs list, first page (newest 50 of a tenant), and a deep page (50 runs from about 9,000 runs back, through
    the cursor the "Older" button sends); also first pages filtered by flow and by status;
  - run detail (the run, its version, 5 step executions, its replays);
  - log search (a run's lines containing a word, any case) and the run's first 500 lines.
Target: p95 under 100 ms each. Prints each query's plan (EXPLAIN ANALYZE) with the indexes it used.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from app.services.run_history import RunFilter, encode_cursor, list_runs, run_detail, run_logs
from app.storage import migrations
from app.storage.db import Database
from bench.common import percentile

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/hub_bench_db_scale"
TENANTS = 100
FLOWS_PER_TENANT = 5
STEPS_PER_RUN = 5
LINES_PER_RUN = 10
TARGET_MS = 100.0


def _ensure_database(url: str, fresh: bool) -> bool:
    """Create the database (dropping it with `fresh`); True when it is new."""
    parsed = sa.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                    {"n": parsed.database}).scalar()  # fmt: skip
        if exists and fresh:
            connection.exec_driver_sql(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
            exists = False
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    admin.dispose()
    return not exists


SEED_SQL = [
    # 100 tenants with 5 flows each.
    """INSERT INTO tenants (id, name, slug, weight, created_at, updated_at)
       SELECT gen_random_uuid(), 'Tenant ' || t, 'tenant-' || t, 1, now(), now() FROM generate_series(1, {tenants}) t""",
    """INSERT INTO flows (id, tenant_id, name, description, graph, trigger, status, lock_version, created_at, updated_at)
       SELECT gen_random_uuid(), t.id, 'Flow ' || f, '', '{{}}'::jsonb, '{{"kind": "webhook"}}'::jsonb, 'active', 1,
              now(), now()
       FROM tenants t CROSS JOIN generate_series(1, {flows}) f""",
    # Runs: spread over tenants and flows round-robin, one every ~2.6 s over the last 30 days (newest last); 8% fail.
    """CREATE TEMP TABLE bench_flows AS
       SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, tenant_id FROM flows""",
    """INSERT INTO runs (id, tenant_id, flow_id, status, trigger_kind, test_mode, started_at, finished_at, error)
       SELECT gen_random_uuid(), f.tenant_id, f.id,
              CASE WHEN g % 25 = 0 THEN 'failed' WHEN g % 13 = 0 THEN 'partially_failed' ELSE 'succeeded' END,
              'webhook', false,
              now() - interval '30 days' + (g * interval '2.592 seconds'),
              now() - interval '30 days' + (g * interval '2.592 seconds') + ((g % 997) * interval '1 millisecond'),
              CASE WHEN g % 25 = 0 THEN 'call: HTTP 503 from erp.example.com for order ' || g END
       FROM generate_series(1, {runs}) g
       JOIN bench_flows f ON f.n = g % (SELECT count(*) FROM bench_flows)""",
    """INSERT INTO step_executions (id, tenant_id, run_id, step_id, component, function, attempt, status, executor,
                                    message_id, started_at, finished_at, duration_ms, input, output, truncated, error)
       SELECT gen_random_uuid(), r.tenant_id, r.id, 'step_' || s, 'jsonata', 'transform', 1, 'succeeded', 'inline',
              md5(r.id::text || s), r.started_at + s * interval '1 millisecond',
              r.started_at + s * interval '1 millisecond', 0.4,
              jsonb_build_object('order', s, 'lines', jsonb_build_array(1, 2, 3)),
              jsonb_build_array(jsonb_build_object('order', s)), false, NULL
       FROM runs r CROSS JOIN generate_series(1, {steps}) s""",
    """INSERT INTO run_log_lines (tenant_id, run_id, step_id, ts, level, message)
       SELECT r.tenant_id, r.id, 'step_' || (1 + l % {steps}), r.started_at + l * interval '1 millisecond',
              CASE WHEN l = 9 THEN 'warning' ELSE 'info' END,
              'order ' || l || ' sent to the ERP, answer ' || (200 + l) || ' after ' || (l * 7) || ' ms'
       FROM runs r CROSS JOIN generate_series(1, {lines}) l""",
    "ANALYZE",
]


def seed(db: Database, runs: int) -> float:
    started = time.perf_counter()
    values = {"tenants": TENANTS, "flows": FLOWS_PER_TENANT, "runs": runs, "steps": STEPS_PER_RUN,
              "lines": LINES_PER_RUN}  # fmt: skip
    with db.engine.connect() as connection:
        for statement in SEED_SQL:
            t0 = time.perf_counter()
            if statement == "ANALYZE":
                connection.commit()
            connection.execute(sa.text(statement.format(**values)))
            print(f"  seed: {statement.split()[0]} {statement.split()[2] if len(statement.split()) > 2 else ''}"
                  f" {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        connection.commit()
    return time.perf_counter() - started


def _timed(repeat: int, call: Callable[[], Any]) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


class StatementCatcher:
    """Keeps the SQL statements the services send, to EXPLAIN them afterwards with the same parameters."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._catch)

    def _catch(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, parameters))


def _plan(db: Database, statement: str, parameters: Any) -> list[str]:
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
        ).all()
    return [row[0] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()

    new = _ensure_database(args.url, args.fresh)
    migrations.upgrade(args.url)
    db = Database.connect(args.url)
    with db.engine.connect() as connection:
        have = connection.exec_driver_sql("SELECT count(*) FROM runs").scalar() or 0
    if new or have == 0:
        print(f"seeding {args.runs:,} runs, {args.runs * STEPS_PER_RUN:,} step executions, "
              f"{args.runs * LINES_PER_RUN:,} log lines over {TENANTS} tenants ...", flush=True)  # fmt: skip
        print(f"seeded in {seed(db, args.runs):.0f} s")
    with db.engine.connect() as connection:
        counts = {t: connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                  for t in ("runs", "step_executions", "run_log_lines")}  # fmt: skip
        size = connection.exec_driver_sql(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).scalar()
        tenants = [
            r[0] for r in connection.execute(sa.text("SELECT id FROM tenants WHERE slug LIKE 'tenant-%'"))
        ]
        sample_runs = connection.exec_driver_sql(
            "SELECT tenant_id, id FROM runs TABLESAMPLE SYSTEM (1) LIMIT 2000").all()  # fmt: skip
        flows = connection.exec_driver_sql("SELECT tenant_id, id FROM flows").all()
    print(f"database: {counts['runs']:,} runs, {counts['step_executions']:,} step executions, "
          f"{counts['run_log_lines']:,} log lines, {size}")  # fmt: skip

    rng = random.Random(7)
    deep: dict[uuid.UUID, str] = {}
    back = min(9000, int(counts["runs"] / TENANTS * 0.9))
    with db.engine.connect() as connection:
        for tenant in tenants[:20]:
            row = connection.execute(sa.text(
                "SELECT started_at, id FROM runs WHERE tenant_id = :t ORDER BY started_at DESC, id DESC OFFSET :back "
                "LIMIT 1"), {"t": tenant, "back": back}).first()  # fmt: skip
            if row is not None:
                deep[tenant] = encode_cursor(row.started_at, row.id)

    def first_page() -> Any:
        return list_runs(db, rng.choice(tenants))

    def deep_page() -> Any:
        tenant = rng.choice(list(deep))
        return list_runs(db, tenant, older_than=deep[tenant])

    def by_flow() -> Any:
        tenant, flow = rng.choice(flows)
        return list_runs(db, tenant, RunFilter(flow_id=flow))

    def failed_only() -> Any:
        return list_runs(db, rng.choice(tenants), RunFilter(status="failed"))

    def detail() -> Any:
        tenant, run = rng.choice(sample_runs)
        return run_detail(db, tenant, run)

    def log_search() -> Any:
        tenant, run = rng.choice(sample_runs)
        return run_logs(db, tenant, run, text="answer 207")

    def log_page() -> Any:
        tenant, run = rng.choice(sample_runs)
        return run_logs(db, tenant, run)

    queries = [("runs list, first page", first_page), ("runs list, deep page (~9,000 back)", deep_page),
               ("runs list, one flow", by_flow), ("runs list, failed only", failed_only),
               ("run detail", detail), ("log search in a run", log_search), ("run log, first 500 lines", log_page)]  # fmt: skip
    results = []
    for name, call in queries:
        for _ in range(10):
            call()  # warm the pool and the cache the way a running hub is
        times = _timed(args.repeat, call)
        p50, p95 = percentile(times, 50), percentile(times, 95)
        results.append((name, p50, p95))
        print(f"{name:40s} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   {'met' if p95 < TARGET_MS else 'MISSED'}",
              flush=True)  # fmt: skip

    print("\nquery plans (EXPLAIN ANALYZE of the statements the services sent):")
    for name, call in queries:
        catcher = StatementCatcher(db.engine)
        call()
        event.remove(db.engine, "before_cursor_execute", catcher._catch)
        for statement, parameters in catcher.seen:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = _plan(db, statement, parameters)
            used = [line.strip() for line in plan if "Index" in line or "Seq Scan" in line]
            took = next((line.strip() for line in plan if line.strip().startswith("Execution Time")), "")
            print(f"- {name}: {took}")
            for line in used:
                print(f"    {line}")
    missed = [name for name, _, p95 in results if p95 >= TARGET_MS]
    print(f"\ntarget p95 < {TARGET_MS:.0f} ms: {'all met' if not missed else 'missed: ' + ', '.join(missed)}")
    db.dispose()


if __name__ == "__main__":
    main()
