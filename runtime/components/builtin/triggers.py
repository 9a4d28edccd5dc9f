"""Triggers: the first step of a flow. The message that started the run passes through unchanged."""

from __future__ import annotations

from typing import Any

from runtime.steps.context import StepContext
from runtime.steps.message import Message


def pass_through(message: Message, _fields: dict[str, Any], _context: StepContext) -> Message:
    return message


MANUAL = {
    "title": "Manual trigger",
    "description": "Starts the flow by hand (from the designer's Run button or the API) with the data given.",
    "triggers": {
        "start": {
            "title": "Start by hand",
            "main": "builtin:manual.start",
            "type": "manual",
            "fields": {},
            "x-hub": {"fusible": True},
        }
    },
}

WEBHOOK = {
    "title": "Webhook",
    "description": "Starts the flow when its URL is called; the request's method, headers, query and body "
    "become the message.",
    "triggers": {
        "receive": {
            "x-hub": {"fusible": True},
            "title": "Receive a request",
            "main": "builtin:webhook.receive",
            "type": "webhook",
            "fields": {},
        }
    },
}

SCHEDULE = {
    "title": "Schedule",
    "description": "Starts the flow on a cron schedule.",
    "triggers": {
        "tick": {
            "x-hub": {"fusible": True},
            "title": "On schedule",
            "main": "builtin:schedule.tick",
            "type": "polling",
            "fields": {
                "cron": {
                    "label": "Cron expression",
                    "viewClass": "TextFieldView",
                    "placeholder": "*/5 * * * *",
                }
            },
        }
    },
}
