"""How every hub process logs: one JSON object per line (for a log collector) or plain text (for a terminal).

A JSON line carries the time, level, logger, message and the service (worker, recorder, web...), and the
tenant, flow, run and step it is about: bound by the runtime while it processes a step, or passed by a call as
`extra={"tenant": ..., "run": ...}`."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Literal

import orjson

from runtime.log_context import current

IDS = ("tenant", "flow", "run", "step")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(current())
        for name in IDS:
            value = getattr(record, name, None)
            if value:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, style: Literal["auto", "text", "json"], service: str) -> None:
    """`auto`: text on a terminal, JSON otherwise (a service under a supervisor, a container, a pod)."""
    if style == "auto":
        style = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service) if style == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
