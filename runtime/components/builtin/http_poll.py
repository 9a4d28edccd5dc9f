"""HTTP polling trigger: on each tick, GET a URL and emit the items not seen before.

The items come from a JSONata expression on the response body (default: the body itself), each item's
identity from another (`id`). The ids already emitted are kept in the node's snapshot (the last 5,000), which
the worker saves in the same commit as the emitted items: an item is emitted once, even across restarts.
"""

from __future__ import annotations

from typing import Any

from runtime.components.builtin.http_request import request
from runtime.components.builtin.transform import _evaluate
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError
from runtime.steps.message import Message

SEEN_LIMIT = 5_000


def poll(message: Message, fields: dict[str, Any], context: StepContext) -> list[Message]:
    response = request(message, {**fields, "method": "GET"}, context)
    body = response.data["body"]
    items = _evaluate(fields, "items", body) if fields.get("items") else body
    if items is None:
        items = []
    if not isinstance(items, list):
        items = [items]
    seen: list[str] = list(context.snapshot.get("seen") or [])
    known = set(seen)
    first_poll = "seen" not in context.snapshot
    fresh: list[Message] = []
    for item in items:
        identity = _evaluate(fields, "id", item)
        if identity is None:
            raise PermanentStepError(f"the id expression gave nothing for an item: {str(item)[:200]}")
        key = str(identity)
        if key in known:
            continue
        known.add(key)
        seen.append(key)
        if not (first_poll and fields.get("skip_existing")):
            fresh.append(Message(data=item))
    context.snapshot["seen"] = seen[-SEEN_LIMIT:]
    context.log(f"{len(items)} items, {len(fresh)} new", "debug")
    return fresh


HTTP_POLL = {
    "title": "HTTP polling",
    "description": "Calls a URL on a schedule and starts the flow with each item it has not seen before.",
    "x-hub": {"credential_kinds": ["basic", "bearer", "api_key", "oauth2_code", "oauth2_client"]},
    "triggers": {
        "poll": {
            "title": "Poll a URL for new items",
            "main": "builtin:http_poll.poll",
            "type": "polling",
            "x-hub": {"uses_snapshot": True},
            "fields": {
                "url": {"label": "URL", "viewClass": "TextFieldView", "required": True},
                "items": {
                    "label": "Items (JSONata on the response)",
                    "viewClass": "JSONataView",
                    "placeholder": "data.items",
                },
                "id": {
                    "label": "Item id (JSONata on an item)",
                    "viewClass": "JSONataView",
                    "required": True,
                    "placeholder": "id",
                },
                "skip_existing": {
                    "label": "Skip the items already there on the first poll",
                    "viewClass": "CheckBoxView",
                },
            },
        }
    },
}
