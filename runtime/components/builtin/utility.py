"""Log, reply and delay: steps that act beside the data rather than on it."""

from __future__ import annotations

from typing import Any

from runtime.components.builtin.transform import _evaluate
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError
from runtime.steps.message import Message

LEVELS = ("debug", "info", "warning", "error")


def log(message: Message, fields: dict[str, Any], context: StepContext) -> Message:
    level = str(fields.get("level") or "info").lower()
    if level not in LEVELS:
        raise PermanentStepError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    text = _evaluate(fields, "message", message.data) if fields.get("message") else message.data
    context.log(text if isinstance(text, str) else repr(text), level)
    return message


def reply(message: Message, fields: dict[str, Any], context: StepContext) -> Message:
    body = _evaluate(fields, "body", message.data) if fields.get("body") else message.data
    try:
        status = int(fields.get("status") or 200)
    except (TypeError, ValueError):
        raise PermanentStepError(f"reply status {fields.get('status')!r} is not a number") from None
    if not 100 <= status <= 599:
        raise PermanentStepError(f"reply status {status} is not an HTTP status")
    headers = {str(k): str(v) for k, v in (fields.get("headers") or {}).items()}
    context.reply(body, status, headers)
    return message


def delay(message: Message, fields: dict[str, Any], context: StepContext) -> Message:
    try:
        seconds = float(fields.get("seconds", 0))
    except (TypeError, ValueError):
        raise PermanentStepError(f"delay seconds {fields.get('seconds')!r} is not a number") from None
    if seconds < 0 or seconds > 30 * 24 * 3600:
        raise PermanentStepError("delay must be between 0 seconds and 30 days")
    context.delay(seconds)
    return message


LOG = {
    "title": "Log",
    "description": "Writes a line to the run's log (the message, or a JSONata expression of it) and passes it on.",
    "actions": {
        "log": {
            "x-hub": {"fusible": True},
            "title": "Write to the run log",
            "main": "builtin:log.log",
            "fields": {
                "message": {"label": "Text (JSONata)", "viewClass": "JSONataView"},
                "level": {"label": "Level", "viewClass": "SelectView", "model": {lv: lv for lv in LEVELS}},
            },
        }
    },
}

REPLY = {
    "title": "Reply to webhook",
    "description": "Answers the caller of a synchronous webhook with a status, headers and a body.",
    "actions": {
        "reply": {
            "x-hub": {"fusible": True},
            "title": "Reply",
            "main": "builtin:reply.reply",
            "fields": {
                "status": {"label": "Status", "viewClass": "TextFieldView", "placeholder": "200"},
                "body": {"label": "Body (JSONata)", "viewClass": "JSONataView"},
                "headers": {"label": "Headers", "viewClass": "TextAreaView"},
            },
        }
    },
}

DELAY = {
    "title": "Delay",
    "description": "Holds the message back for a while without occupying a worker.",
    "actions": {
        "delay": {
            "title": "Wait",
            "main": "builtin:delay.delay",
            "fields": {"seconds": {"label": "Seconds", "viewClass": "TextFieldView", "required": True}},
        }
    },
}
