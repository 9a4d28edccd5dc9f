"""The control plane's minute check: flows left starting or stopping (their job lost) are converged again, and
active polling flows whose schedule Redis lost get it back; real Redis, rq and rq-scheduler."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from rq import Queue
from rq_scheduler import Scheduler

from app.control import reaper, schedules
from app.control.context import serving
from app.services import flows
from app.storage.models import Flow
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from runtime.control import CONTROL_QUEUE
from tests.app.control.test_flow_jobs import run_jobs
from tests.app.control.test_schedules import activate, control, polling_flow
from tests.app.hub_runtime import HubRuntime


def _age(hub: HubRuntime, flow_id, minutes: int) -> None:
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        session.execute(sa.update(Flow).where(Flow.id == flow_id)
                        .values(updated_at=utcnow() - dt.timedelta(minutes=minutes)))  # fmt: skip


def test_a_flow_whose_activation_job_was_lost_is_converged_again(hub: HubRuntime) -> None:
    lost, recent = polling_flow(hub), polling_flow(hub)
    for flow_id in (lost, recent):  # asked for, but the job never ran (a worker killed, Redis restarted)
        flows.set_status(hub.db, hub.tenant_id, flow_id, flows.FlowStatus.STARTING, flows.WAITING)
    _age(hub, lost, minutes=5)
    with serving(control(hub)):
        assert reaper.reap() == {"stuck": 1, "schedules": 0}  # the recent one may still be on its way
    run_jobs(hub, control(hub))
    with tenant_session(hub.db.sessions, hub.tenant_id) as session:
        assert session.get(Flow, lost).status == "active"
        assert session.get(Flow, recent).status == "starting"


def test_an_active_polling_flow_gets_back_the_schedule_redis_lost(hub: HubRuntime) -> None:
    flow_id = polling_flow(hub)
    activate(hub, flow_id)
    schedules.remove(hub.bus.redis, flow_id)  # as after a Redis restart without its data
    with serving(control(hub)):
        assert reaper.reap() == {"stuck": 0, "schedules": 1}
    run_jobs(hub, control(hub))
    assert schedules.scheduled(hub.bus.redis, flow_id) is not None
    with serving(control(hub)):
        assert reaper.reap() == {"stuck": 0, "schedules": 0}


def test_the_check_is_installed_once_however_many_schedulers_start(hub: HubRuntime) -> None:
    scheduler = Scheduler(queue_name=CONTROL_QUEUE, connection=hub.bus.redis)
    reaper.install(scheduler)
    reaper.install(Scheduler(queue_name=CONTROL_QUEUE, connection=hub.bus.redis))
    assert [job.id for job in scheduler.get_jobs()] == [reaper.JOB_ID]
    scheduler.enqueue_jobs()
    assert [job.id for job in Queue(CONTROL_QUEUE, connection=hub.bus.redis).jobs] == [reaper.JOB_ID]
    run_jobs(hub, control(hub))  # and it runs in a worker
