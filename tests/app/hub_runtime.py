"""The app wired to a real runtime for tests: a database, a real Redis, in-process workers and a recorder."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.recorder.service import Recorder, RecorderConfig
from app.services import accounts, flows
from app.services import runs as run_service
from app.storage.db import Database
from app.storage.models import Run, RunLogLine, StepExecution
from app.storage.scoping import tenant_session
from runtime.bus.streams import StreamsBus
from runtime.components.builtin import builtin_registry
from runtime.components.registry import StaticRegistry
from runtime.worker import Worker, WorkerConfig
from tests.runtime.conftest import flaky_component


@dataclass
class HubRuntime:
    db: Database
    bus: StreamsBus
    components: StaticRegistry
    tenant_id: uuid.UUID = field(init=False)
    workers: list[Worker] = field(default_factory=list)
    recorders: list[Recorder] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tenant_id = self.new_tenant("Acme")

    def new_tenant(self, name: str) -> uuid.UUID:
        return accounts.create_tenant(self.db, f"{name} {uuid.uuid4().hex[:6]}").id

    def worker(self, name: str = "w1") -> Worker:
        worker = Worker(
            self.bus, self.components, WorkerConfig(name=name, housekeeping_interval_s=0.02, block_ms=10)
        )
        self.workers.append(worker)
        return worker

    def recorder(self, name: str | None = None, **config: Any) -> Recorder:
        settings = {"block_ms": 10, "housekeeping_interval_s": 0.02, **config}
        recorder = Recorder(
            self.db, self.bus, RecorderConfig(name=name or f"{socket.gethostname()}-r", **settings)
        )
        self.recorders.append(recorder)
        return recorder

    def flow(self, nodes: list[dict], edges: list[dict], tenant_id: uuid.UUID | None = None) -> uuid.UUID:
        tenant_id = tenant_id or self.tenant_id
        flow = flows.create_flow(self.db, tenant_id, "test flow", {"nodes": nodes, "edges": edges})
        flows.publish_flow(self.db, self.bus, self.components, tenant_id, flow.id)
        return flow.id

    def start(self, flow_id: uuid.UUID, data: Any, tenant_id: uuid.UUID | None = None) -> uuid.UUID:
        return run_service.start_manual_run(
            self.db, self.bus, self.components, tenant_id or self.tenant_id, flow_id, data
        )

    def drive(self, until: Callable[[], bool], timeout: float = 20.0) -> None:
        """Run workers and recorders in turn until `until()` holds."""
        if not self.workers:
            self.worker()
        if not self.recorders:
            self.recorder()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                worker.run_once()
            for recorder in self.recorders:
                recorder.run_once()
            if until():
                return
        raise AssertionError("the runs were not recorded as finished in time")

    def run(self, run_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> Run | None:
        with tenant_session(self.db.sessions, tenant_id or self.tenant_id) as session:
            run = session.get(Run, run_id)
            if run is not None:
                session.expunge(run)
            return run

    def finished(self, run_id: uuid.UUID) -> bool:
        run = self.run(run_id)
        return run is not None and run.finished_at is not None

    def run_to_end(self, flow_id: uuid.UUID, data: Any) -> Run:
        run_id = self.start(flow_id, data)
        self.drive(lambda: self.finished(run_id))
        run = self.run(run_id)
        assert run is not None
        return run

    def steps(self, run_id: uuid.UUID) -> list[StepExecution]:
        with tenant_session(self.db.sessions, self.tenant_id) as session:
            rows = session.scalars(
                sa.select(StepExecution)
                .where(StepExecution.run_id == run_id)
                .order_by(StepExecution.started_at, StepExecution.attempt)
            ).all()
            session.expunge_all()
            return list(rows)

    def logs(self, run_id: uuid.UUID) -> list[RunLogLine]:
        with tenant_session(self.db.sessions, self.tenant_id) as session:
            rows = session.scalars(
                sa.select(RunLogLine).where(RunLogLine.run_id == run_id).order_by(RunLogLine.id)
            ).all()
            session.expunge_all()
            return list(rows)


def make_hub_runtime(db: Database, redis: Any) -> HubRuntime:
    components = builtin_registry().with_components(flaky_component(redis))
    return HubRuntime(db, StreamsBus(redis), components)
