"""Commands that run a part of the hub: up (all in one), web, worker, recorder, scheduler, router, redis, migrate."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import time

import click

from app.cli.main import reports_errors, settings
from app.config import HubSettings
from app.errors import ConfigError
from app.keyring import ensure_dev_key
from app.paths import PROJECT_ROOT


def _migrate(config: HubSettings) -> str | None:
    from app.services.catalog import sync_builtins
    from app.services.templates import sync_gallery
    from app.storage import migrations
    from app.storage.db import Database, check_database

    url = config.effective_database_url
    db = Database.connect(url)
    try:
        check_database(db.engine)
        migrations.upgrade(url)
        sync_builtins(db)  # the built-in library, as the catalog shows it, follows the code
        sync_gallery(db)  # so do the templates shipped with the hub
    finally:
        db.dispose()
    return migrations.head_revision(url)


def _redis(config: HubSettings):
    import redis

    from app.processes.embedded_redis import resolve_redis_url

    url = resolve_redis_url(config.redis_url, config.data_path)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"HUB_REDIS_URL: cannot reach Redis ({exc})") from None
    return client


@click.command()
@reports_errors
def migrate() -> None:
    """Apply database migrations up to the newest schema."""
    head = _migrate(settings())
    click.echo(f"database schema at revision {head}")


@click.command()
@reports_errors
def redis() -> None:
    """Run the embedded Redis in the foreground (for running web/worker separately without a Redis server)."""
    from app.processes.embedded_redis import EmbeddedRedis

    config = settings()
    server = EmbeddedRedis(config.data_path, appendfsync=config.redis_appendfsync)
    server.start()
    click.echo(f"embedded Redis at 127.0.0.1:{server.port}, data in {server.folder}; Ctrl-C stops it")
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@click.command()
@reports_errors
def web() -> None:
    """Serve the web app (production build, one port) with Reflex."""
    from app.web_environment import reflex_environment

    config = settings()
    _redis(config).close()  # fail here, with the variable's name, rather than on the first login
    env = reflex_environment({**os.environ, **config.as_environment()})
    argv = [
        sys.executable, "-m", "reflex", "run", "--env", "prod",
        "--frontend-port", str(config.web_port), "--loglevel", "warning",
    ]  # fmt: skip
    os.chdir(PROJECT_ROOT)
    # exec: the supervisor's signals reach Reflex directly, and its children share our process group.
    os.execve(sys.executable, argv, env)  # noqa: S606 - argv is ours, no shell involved


@click.command()
@reports_errors
def worker() -> None:
    """Run a worker: flow steps from the streams bus, and control jobs from the rq queue."""
    import socket
    import threading

    from runtime.bus.streams import StreamsBus
    from runtime.components.builtin import builtin_registry
    from runtime.net.egress import EgressPolicy
    from runtime.worker import Worker as StepWorker
    from runtime.worker import WorkerConfig

    config = settings()
    connection = _redis(config)
    name = f"{socket.gethostname()}-{os.getpid()}"
    egress = EgressPolicy.parse(config.egress_allow)
    from app.control.context import ControlContext, serving
    from app.control.worker import ControlWorker
    from app.executors import image_check, step_executors
    from app.keyring import load_key_ring
    from app.oauth.tokens import TokenKeeper
    from app.services.catalog import TenantCatalog
    from app.services.quotas import quota_defaults
    from app.services.retention import default_policy
    from app.services.webhooks import RouteDefaults
    from app.storage.db import Database
    from app.vault.secret_source import VaultSecrets
    from app.vault.store import Vault

    db = Database.connect(config.effective_database_url)  # connects on the first credential a step needs
    vault = functools.cache(lambda: Vault(load_key_ring(config)))
    credentials = VaultSecrets(db, vault, TokenKeeper(db, vault, connection, egress))
    executors = step_executors(config)
    control = ControlContext(
        db,
        StreamsBus(connection),
        lambda tenant_id: TenantCatalog(db, tenant_id),
        executors,
        RouteDefaults(config.effective_public_base_url, config.webhook_tenant_rps, config.tenant_max_backlog),
        image_check(config),
        quota_defaults(config),
        default_policy(config),
    )
    defaults = quota_defaults(config)
    registry = builtin_registry()
    # Several step loops (slots) share the executors; each takes its own batches by fair share, so a tenant
    # flooding one slot with slow steps leaves the others to the rest.
    slots = [
        StepWorker(
            StreamsBus(connection),
            registry,
            WorkerConfig(name=f"{name}-{i}", egress=egress, default_quota=defaults, manages_executors=i == 0),
            executors=executors,
            credentials=credentials,
        )
        for i in range(config.worker_slots)
    ]
    stop = threading.Event()
    crashed = threading.Event()

    def run_steps(steps: StepWorker) -> None:
        try:
            steps.run(stop)
        except Exception:
            # A worker that silently stopped taking steps would look healthy: stop the whole process.
            logging.getLogger("hub.worker").exception("the step worker failed; stopping")
            crashed.set()
            os.kill(os.getpid(), signal.SIGTERM)

    # A stop asked for before rq has installed its own handlers (the step worker may already be busy) is
    # remembered here and handed to rq as soon as it is listening.
    early_stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: early_stop.set())

    class StoppableControlWorker(ControlWorker):
        def _install_signal_handlers(self) -> None:
            super()._install_signal_handlers()
            if early_stop.is_set():
                # Not request_stop(): while idle it raises StopRequested, and rq calls this method outside the
                # try block that would catch it. The flag is what its loop checks before each dequeue.
                self._stop_requested = True

    threads = [
        threading.Thread(target=run_steps, args=(s,), name=f"step-slot-{i}") for i, s in enumerate(slots)
    ]
    for thread in threads:
        thread.start()
    try:
        # rq owns the main thread (it installs the SIGTERM/SIGINT handlers); SimpleWorker, because forking
        # beside running threads is unsafe. When rq returns, the step slots finish their batches and stop too.
        with serving(control):
            StoppableControlWorker(connection).work(logging_level=config.log_level)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for executor in executors.values():  # warm runners and containers go with the worker
            close = getattr(executor, "close", None)
            if close is not None:
                close()
    if crashed.is_set():
        sys.exit(1)


@click.command()
@reports_errors
def recorder() -> None:
    """Run the run recorder: stores run, step and log events from Redis in the database."""
    import socket
    import threading

    from app.recorder.service import Recorder, RecorderConfig
    from app.storage.db import Database, check_database
    from runtime.bus.streams import StreamsBus

    config = settings()
    db = Database.connect(config.effective_database_url)
    check_database(db.engine)
    service = Recorder(
        db, StreamsBus(_redis(config)), RecorderConfig(name=f"{socket.gethostname()}-{os.getpid()}")
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # The batch in hand is written and acknowledged before the loop sees the flag.
        signal.signal(signum, lambda *_: stop.set())
    try:
        service.run(stop)
    finally:
        db.dispose()


@click.command()
@reports_errors
def scheduler() -> None:
    """Run the scheduler that enqueues periodic jobs (polling ticks, retention). Start any number: one is active
    (it holds a lease in Redis), the others stand by and take over within 20 s when it dies."""
    from app.control.citizens import install as install_watch
    from app.control.leader import LeaderScheduler, Lease
    from app.control.reaper import install as install_reaper
    from app.control.retention import install as install_retention
    from runtime.control import CONTROL_QUEUE

    def lead(scheduler) -> None:
        install_reaper(
            scheduler
        )  # flows left starting/stopping, schedules Redis lost: handed back every minute
        install_watch(scheduler)  # flows that keep hitting their limits or crashing: escalated every minute
        install_retention(scheduler)  # runs past their tenant's retention: deleted every hour

    config = settings()
    connection = _redis(config)
    lease = Lease(connection, lease_s=config.scheduler_lease_s)
    # Four passes a lease at least: a slow pass keeps it, a dead holder is replaced within one lease.
    interval = min(5.0, config.scheduler_lease_s / 4)
    LeaderScheduler(queue_name=CONTROL_QUEUE, connection=connection, interval=interval, lease=lease,
                    on_lead=lead).run()  # fmt: skip


def _sync_routes(config: HubSettings, client) -> int:
    """Every webhook route and tenant quota rebuilt from the database (start-up; heals a Redis that lost
    data)."""
    from app.services.catalog import TenantCatalog
    from app.services.egress import publish as publish_egress
    from app.services.quotas import publish_all, quota_defaults
    from app.services.webhooks import RouteDefaults, sync_all_routes
    from app.storage.db import Database
    from runtime.bus.streams import StreamsBus

    db = Database.connect(config.effective_database_url)
    try:
        defaults = RouteDefaults(
            config.effective_public_base_url, config.webhook_tenant_rps, config.tenant_max_backlog
        )
        publish_all(db, client, quota_defaults(config))
        publish_egress(db, client)
        return sync_all_routes(db, StreamsBus(client), lambda tenant: TenantCatalog(db, tenant), defaults)
    finally:
        db.dispose()


@click.command()
@click.option("--host", help="Address to listen on (default: HUB_ROUTER_HOST).")
@click.option("--port", type=int, help="Port to listen on (default: HUB_ROUTER_PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes sharing the port (each with its own connections; no shared state).")  # fmt: skip
@reports_errors
def router(host: str | None, port: int | None, workers: int) -> None:
    """Serve webhooks (/hook/...) on their own port, apart from the web app; run as many as you like."""
    import subprocess

    from app.api.webhooks import standalone_router
    from runtime.router.server import run

    config = settings()
    _redis(config).close()  # fail here with the variable's name, not on the first request
    host, port = host or config.router_host, port or config.router_port
    if workers == 1:
        run(standalone_router, host, port)
        return
    # Several processes on one port (SO_REUSEPORT: the kernel spreads connections); each is a whole router.
    argv = [sys.executable, "-m", "app.cli", "router", "--host", host, "--port", str(port), "--workers", "1"]
    children = [subprocess.Popen(argv) for _ in range(workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    sys.exit(max(codes))


@click.group()
def routes() -> None:
    """Webhook routes as the routers see them."""


@routes.command("sync")
@reports_errors
def routes_sync() -> None:
    """Rebuild every webhook route in Redis from the database (safe to run any time)."""
    config = settings()
    count = _sync_routes(config, _redis(config))
    click.echo(f"{count} flows' webhook routes synchronised")


@click.command()
@reports_errors
def up() -> None:
    """Run the whole hub on this machine: migrations, embedded Redis, worker, scheduler and web app."""
    from app.processes.embedded_redis import EmbeddedRedis
    from app.processes.supervisor import Child, Supervisor

    config = settings()
    config.data_path.mkdir(parents=True, exist_ok=True)
    ensure_dev_key(config)
    revision = _migrate(config)
    click.echo(f"hub: database ready at revision {revision} ({_safe_db(config)})", err=True)

    env = {**os.environ, **config.as_environment()}
    embedded = None
    if config.uses_embedded_redis:
        embedded = EmbeddedRedis(config.data_path, appendfsync=config.redis_appendfsync)
        env["HUB_REDIS_URL"] = embedded.start()
        click.echo(f"hub: embedded Redis on 127.0.0.1:{embedded.port} (data in {embedded.folder})", err=True)
    try:
        client = _redis(config)  # the embedded one, once started, is found through its data folder
        try:
            _sync_routes(config, client)
        finally:
            client.close()
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise

    hub = [sys.executable, "-m", "app.cli"]
    supervisor = Supervisor(
        [
            Child("worker", [*hub, "worker"]),
            Child("recorder", [*hub, "recorder"]),
            Child("scheduler", [*hub, "scheduler"]),
            Child("web", [*hub, "web"]),
        ]
    )
    supervisor.install_signal_handlers()
    code = 0
    try:
        supervisor.start_all(env, cwd=str(PROJECT_ROOT))
        _announce(config)
        code = supervisor.wait()
    finally:
        click.echo("hub: stopping", err=True)
        supervisor.stop_all()
        if embedded is not None:
            embedded.stop()
        click.echo("hub: stopped", err=True)
    sys.exit(code)


def _safe_db(config: HubSettings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(config.effective_database_url).render_as_string(hide_password=True)


def _announce(config: HubSettings) -> None:
    from app.services.accounts import any_user_exists
    from app.storage.db import Database

    db = Database.connect(config.effective_database_url)
    try:
        has_users = any_user_exists(db)
    finally:
        db.dispose()
    base = config.effective_public_base_url
    click.echo(f"\n  Integration Hub is starting at {base}  (first start builds the UI: ~30 s)", err=True)
    if has_users:
        click.echo(f"  Log in at {base}/login\n", err=True)
    else:
        click.echo(
            f"  No account yet: open {base}/setup to create the first one,\n"
            "  or run `hub admin create-user EMAIL --tenant NAME --superuser`\n",
            err=True,
        )
    click.echo("  Ctrl-C stops everything.\n", err=True)


COMMANDS = [up, web, worker, recorder, scheduler, router, routes, redis, migrate]
