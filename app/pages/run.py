"""One run: its timeline of step executions with their data, its log lines, replay; live while it runs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import reflex as rx

from app.components.formatting import RUN_COLORS, duration, when
from app.components.json_view import json_view
from app.context import get_context
from app.errors import HubError
from app.services import runs as run_service
from app.services.run_history import LEVELS, LOG_PAGE, LogLine, RunDetail, RunSnapshot, read_run, run_logs
from app.state.auth import EDIT_ROLES, AuthState
from app.templates.layout import page_layout

ROUTE = "/runs/[run_id]"
LIVE = ("queued", "running")
POLL_S = 1.0
WATCH_LIMIT_S = 30 * 60  # a page left open on a run that never ends stops asking after this
SESSION_CHECK_ROUNDS = 30  # a live page checks its session this often (a logout or removal stops it)
MAX_SHOWN_LINES = 5000
ALL_LEVELS = "all"
RUN_KEYS = ("id", "flow", "flow_id", "status", "color", "trigger", "started", "finished", "duration", "error",
            "version", "replay_of", "failed", "pending")  # fmt: skip
log = logging.getLogger(__name__)


def _snapshot(tenant_id: str, run_id: uuid.UUID | None, level: str, text: str, after_id: int) -> RunSnapshot:
    ctx = get_context()
    return read_run(ctx.db, ctx.bus, uuid.UUID(tenant_id), run_id, level="" if level == ALL_LEVELS else level,
                    text=text, after_id=after_id)  # fmt: skip


class RunState(AuthState):
    run: dict[str, str] = {}
    steps: list[dict[str, Any]] = []
    replays: list[dict[str, str]] = []
    logs: list[dict[str, str]] = []
    logs_more: bool = False  # the last read filled a page: more lines may follow
    log_level: str = ALL_LEVELS
    log_text: str = ""
    error: str = ""
    notice: str = ""
    live: bool = False
    _last_log_id: int = 0
    _watching: str = ""  # the token of the one watch loop that may update this page

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    def _run_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(str(self.router.page.params.get("run_id", "")))
        except ValueError:
            return None

    def _read(self) -> RunSnapshot:
        return _snapshot(self.tenant_id, self._run_id(), self.log_level, self.log_text, self._last_log_id)

    @rx.event
    def load(self):
        redirect = self.require_login()
        self.run, self.steps, self.replays, self.logs, self.error, self.notice = {}, [], [], [], "", ""
        self.log_level, self.log_text, self._last_log_id, self.logs_more = ALL_LEVELS, "", 0, False
        self._watching, self.live = "", False
        if redirect is not None or not self.tenant_id:
            return redirect
        self._apply(self._read())
        if self.live:
            self._watching = uuid.uuid4().hex
            return RunState.watch(self._watching)
        return None

    def _apply(self, found: RunSnapshot) -> None:
        self.error = found.error
        if found.in_flight:
            run_id = str(self._run_id())
            self.run = {key: "" for key in RUN_KEYS} | {"id": run_id, "status": "queued", "color": "gray",
                                                        "pending": "yes"}  # fmt: skip
            self.live = True
            return
        if found.detail is None:
            self.run, self.live = {}, False
            return
        self._show(found.detail)
        self._add_lines(found.lines)

    def _show(self, detail: RunDetail) -> None:
        r = detail.run
        self.run = {
            "id": str(r.id), "flow": r.flow_name, "flow_id": str(r.flow_id), "status": r.status.replace("_", " "),
            "color": RUN_COLORS.get(r.status, "gray"), "trigger": r.trigger + (" (test)" if r.test else ""),
            "started": when(r.started_at, seconds=True), "finished": when(r.finished_at, seconds=True),
            "duration": duration(r.duration_ms), "error": r.error or "",
            "version": str(detail.version) if detail.version else "deleted",
            "replay_of": str(r.replay_of_id or ""), "failed": "yes" if r.status in ("failed", "partially_failed") else "",
            "pending": "",
        }  # fmt: skip
        self.live = r.status in LIVE
        steps = [
            {"id": str(s.id), "step": s.step_id, "what": f"{s.component} · {s.function}" if s.component else "",
             "attempt": str(s.attempt), "status": s.status, "color": RUN_COLORS.get(s.status, "gray"),
             "where": f"{s.executor} · {s.instance}" if s.instance else s.executor,
             "designer": f"/flows/{r.flow_id}?node={s.step_id}", "started": when(s.started_at, seconds=True),
             "duration": duration(s.duration_ms), "input": s.input, "output": s.output,
             "truncated": "yes" if s.truncated else "", "error": s.error or ""}
            for s in detail.steps
        ]  # fmt: skip
        if [s["id"] for s in steps] != [s["id"] for s in self.steps]:  # else nothing new to send the browser
            self.steps = steps
        self.replays = [{"id": str(p.id), "short": p.id.hex[:8], "status": p.status.replace("_", " "),
                         "color": RUN_COLORS.get(p.status, "gray"), "started": when(p.started_at, seconds=True)}
                        for p in detail.replays]  # fmt: skip

    def _add_lines(self, lines: list[LogLine]) -> None:
        self.logs_more = len(lines) >= LOG_PAGE
        if not lines:
            return
        self._last_log_id = lines[-1].id
        room = MAX_SHOWN_LINES - len(self.logs)
        if room <= 0:
            self.notice = (f"The page shows the first {MAX_SHOWN_LINES:,} log lines; search or filter the log to "
                           "find the others.")  # fmt: skip
            self.logs_more = False
            return
        self.logs = self.logs + [
            {"ts": when(line.ts, seconds=True), "level": line.level, "step": line.step_id or "",
             "message": line.message, "color": {"error": "red", "warn": "amber"}.get(line.level, "gray")}
            for line in lines[:room]
        ]  # fmt: skip

    def _read_logs(self, *, reset: bool = False) -> None:
        run_id = self._run_id()
        if run_id is None or not self.run.get("flow_id"):
            return
        if reset:
            self.logs, self._last_log_id, self.notice = [], 0, ""
        try:
            lines = run_logs(get_context().db, uuid.UUID(self.tenant_id), run_id,
                             level="" if self.log_level == ALL_LEVELS else self.log_level, text=self.log_text,
                             after_id=self._last_log_id)  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
            return
        self._add_lines(lines)

    @rx.event
    def more_logs(self) -> None:
        self._read_logs()

    @rx.event(background=True)
    async def watch(self, token: str):
        """Follow a running run: new steps and log lines appear without a reload, until it finishes. The reads
        happen outside the state's lock, so the page's own events never wait behind them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WATCH_LIMIT_S
        rounds = failures = 0
        while True:
            await asyncio.sleep(POLL_S)
            rounds += 1
            async with self:
                if self._watching != token or not self.live:
                    return
                if loop.time() > deadline or failures >= 5:
                    self.live = False
                    self.notice = ("Live updates stopped (after 30 minutes, or the database did not answer); "
                                   "reload the page to follow the run again.")  # fmt: skip
                    return
                if rounds % SESSION_CHECK_ROUNDS == 0 and self.require_login() is not None:
                    self.live = False  # logged out, or no longer a member: no more of this tenant's data
                    return
                asked = (self.tenant_id, self._run_id(), self.log_level, self.log_text, self._last_log_id)
            try:
                found = await asyncio.to_thread(_snapshot, *asked)
            except Exception:  # the database or Redis did not answer: try again, give up after a few rounds
                log.warning("run page: reading run %s failed", asked[1], exc_info=True)
                failures += 1
                continue
            failures = 0
            async with self:
                if self._watching != token or asked[2:] != (self.log_level, self.log_text, self._last_log_id):
                    continue  # the filter changed or another loop took over meanwhile: this read is stale
                self._apply(found)
                if not self.live:
                    return

    @rx.event
    def stop_watching(self) -> None:
        """The page was left: its watch loop ends at its next round."""
        self._watching = ""

    @rx.event
    def set_log_level(self, value: str) -> None:
        self.log_level = value if value in (ALL_LEVELS, *LEVELS) else ALL_LEVELS
        self._read_logs(reset=True)

    @rx.event
    def set_log_text(self, value: str) -> None:
        self.log_text = value
        self._read_logs(reset=True)

    @rx.event
    def replay(self, from_failed_step: bool):
        self.error = self._refusal("replay runs")
        run_id = self._run_id()
        if self.error or run_id is None:
            return None
        ctx = get_context()
        try:
            new_run = run_service.replay_run(ctx.db, ctx.bus, uuid.UUID(self.tenant_id), run_id,
                                             from_failed_step=from_failed_step,
                                             user_id=uuid.UUID(self.user_id) if self.user_id else None)  # fmt: skip
        except HubError as exc:
            self.error = str(exc)
            return None
        return rx.redirect(f"/runs/{new_run}")


def _fact(label: str, value: Any, testid: str = "") -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"), rx.text(value, size="2", data_testid=testid),
                     spacing="0")  # fmt: skip


def _header() -> rx.Component:
    r = RunState.run
    return rx.vstack(
        rx.hstack(
            rx.badge(r["status"], color_scheme=r["color"], size="3", data_testid="run-status"),
            rx.cond(RunState.live, rx.hstack(rx.spinner(size="1"), rx.text("live", size="1", color_scheme="blue"),
                                             align="center", data_testid="run-live")),
            rx.link(r["flow"], href="/flows/" + r["flow_id"], data_testid="run-flow"),
            rx.spacer(),
            rx.button(rx.icon("rotate-ccw", size=14), "Replay whole run", variant="soft",
                      on_click=RunState.replay(False), disabled=~RunState.can_edit | RunState.live,
                      data_testid="replay-run"),
            rx.cond(r["failed"] != "",
                    rx.button(rx.icon("skip-forward", size=14), "Replay from the failed step",
                              on_click=RunState.replay(True), disabled=~RunState.can_edit,
                              data_testid="replay-failed")),
            width="100%", align="center", spacing="3",
        ),
        rx.hstack(
            _fact("Run", rx.code(r["id"])), _fact("Trigger", r["trigger"]), _fact("Version", r["version"]),
            _fact("Started (UTC)", r["started"]), _fact("Finished", r["finished"]), _fact("Duration", r["duration"]),
            spacing="6", wrap="wrap",
        ),
        rx.cond(r["pending"] != "", rx.text("This run has started: it shows here as soon as its first steps are "
                                            "recorded.", size="2", color_scheme="gray", data_testid="run-pending")),
        rx.cond(r["replay_of"] != "", rx.text("Replay of ", rx.link(r["replay_of"], href="/runs/" + r["replay_of"],
                                                                     data_testid="replay-of"), size="2")),
        rx.cond(RunState.replays.length() > 0, rx.hstack(
            rx.text("Replayed as", size="2"),
            rx.foreach(RunState.replays, lambda p: rx.link(rx.badge(p["short"], " ", p["status"], color_scheme=p["color"]),
                                                           href="/runs/" + p["id"], data_testid="replayed-as")),
            wrap="wrap",
        )),
        rx.cond(r["error"] != "", rx.callout(r["error"], icon="circle-x", color_scheme="red", width="100%",
                                             data_testid="run-error")),
        width="100%",
    )  # fmt: skip


def _data(label: str, value: rx.Var) -> rx.Component:
    return rx.box(rx.text(label, size="1", weight="bold", color_scheme="gray"), json_view(value=value, open=3),
                  flex="1", min_width="0")  # fmt: skip


def _step(step: rx.Var) -> rx.Component:
    return rx.card(
        rx.el.details(
            rx.el.summary(rx.hstack(
                rx.icon("chevrons-up-down", size=14, color="var(--gray-9)"),
                rx.badge(step["status"], color_scheme=step["color"]),
                rx.text(step["step"], weight="bold"),
                rx.text(step["what"], size="1", color_scheme="gray"),
                rx.cond(step["attempt"] != "1", rx.badge("attempt ", step["attempt"], variant="outline")),
                rx.spacer(),
                rx.text(step["where"], size="1", color_scheme="gray", data_testid="step-executor"),
                rx.text(step["started"], size="1", color_scheme="gray"),
                rx.text(step["duration"], size="1"),
                align="center", spacing="3", width="100%",
            ), style={"cursor": "pointer", "list_style": "none", "display": "block"}),
            rx.vstack(
                rx.cond(step["error"] != "", rx.callout(step["error"], icon="circle-x", color_scheme="red",
                                                        width="100%", data_testid="step-error")),
                rx.cond(step["truncated"] != "", rx.text("Values larger than the history keeps are cut and marked.",
                                                         size="1", color_scheme="amber")),
                rx.hstack(_data("Input", step["input"]), _data("Output", step["output"]), width="100%",
                          align="start", spacing="4"),
                rx.link("Open this step in the designer", href=step["designer"].to(str), size="1",
                        data_testid="step-designer-link"),
                margin_top="8px", width="100%",
            ),
        ),
        width="100%",
        data_testid="step-row",
    )  # fmt: skip


def _logs() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Log", size="4"),
            rx.spacer(),
            rx.select.root(
                rx.select.trigger(data_testid="log-level"),
                rx.select.content(rx.select.item("All levels", value=ALL_LEVELS),
                                  *[rx.select.item(f"{level} and worse", value=level) for level in LEVELS]),
                value=RunState.log_level, on_change=RunState.set_log_level,
            ),
            rx.input(placeholder="Search the log", value=RunState.log_text, on_change=RunState.set_log_text,
                     debounce_timeout=300, width="220px", data_testid="log-search"),
            width="100%", align="center",
        ),
        rx.cond(
            RunState.logs.length() > 0,
            rx.box(rx.foreach(RunState.logs, lambda line: rx.hstack(
                rx.text(line["ts"], size="1", color_scheme="gray", white_space="nowrap"),
                rx.badge(line["level"], color_scheme=line["color"], variant="soft"),
                rx.text(line["step"], size="1", weight="bold", white_space="nowrap"),
                rx.text(line["message"], size="1", style={"white_space": "pre-wrap", "word_break": "break-word"}),
                spacing="2", align="start", data_testid="log-line",
            )), width="100%", max_height="400px", overflow_y="auto", font_family="monospace"),
            rx.text("No log lines.", size="2", color_scheme="gray", data_testid="log-empty"),
        ),
        rx.cond(RunState.logs_more & ~RunState.live,
                rx.button("Load more lines", variant="soft", size="1", on_click=RunState.more_logs,
                          data_testid="log-more")),
        rx.cond(RunState.notice != "", rx.text(RunState.notice, size="2", color_scheme="amber",
                                               data_testid="run-notice")),
        width="100%",
        margin_top="16px",
    )  # fmt: skip


def run_page() -> rx.Component:
    # Unmounted only when another page is shown (a run's replay is the same page with another run).
    return rx.box(_run_page(), on_unmount=RunState.stop_watching, width="100%")


def _run_page() -> rx.Component:
    return page_layout(
        "/runs",
        "Run",
        "What happened in this run, step by step.",
        rx.cond(RunState.error != "", rx.callout(RunState.error, icon="circle-alert", color_scheme="red",
                                                 width="100%", data_testid="run-page-error")),
        rx.cond(
            RunState.run.contains("id"),
            rx.vstack(
                _header(),
                rx.heading("Steps", size="4", margin_top="16px"),
                rx.cond(RunState.steps.length() > 0, rx.vstack(rx.foreach(RunState.steps, _step), width="100%"),
                        rx.text("No step has finished yet.", size="2", color_scheme="gray")),
                _logs(),
                width="100%",
            ),
        ),
    )  # fmt: skip
