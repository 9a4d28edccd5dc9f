"""JSONata transform, filter and split: the data-shaping steps."""

from __future__ import annotations

from typing import Any

from runtime.flows.expressions import ExpressionError, compile_expression, evaluate, truthy
from runtime.steps.context import StepContext
from runtime.steps.errors import PermanentStepError
from runtime.steps.message import Message


def _expression(fields: dict[str, Any], name: str) -> Any:
    try:
        return compile_expression(str(fields[name]))
    except ExpressionError as exc:
        raise PermanentStepError(f"{_which(name)} does not parse: {exc}") from None


def _evaluate(fields: dict[str, Any], name: str, data: Any) -> Any:
    try:
        return evaluate(_expression(fields, name), data)
    except PermanentStepError:
        raise
    except Exception as exc:  # jsonata's evaluation errors carry a position and code in the message
        raise PermanentStepError(f"{_which(name)} failed: {exc}") from None


def _which(name: str) -> str:
    return "the expression" if name == "expression" else f"the {name} expression"


def transform(message: Message, fields: dict[str, Any], _context: StepContext) -> Message:
    return Message(data=_evaluate(fields, "expression", message.data), metadata=message.metadata)


def filter_(message: Message, fields: dict[str, Any], context: StepContext) -> Message | None:
    if truthy(_evaluate(fields, "condition", message.data)):
        return message
    context.log("filtered out: condition is false", "debug")
    return None


SPLIT_KEY = "split"
AGGREGATED_KEY = "aggregated"


def split(message: Message, fields: dict[str, Any], context: StepContext) -> list[Message]:
    items = _evaluate(fields, "path", message.data) if fields.get("path") else message.data
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    # Which group each item belongs to, so that an aggregate step further on can put them together again.
    group = f"{context.message_id}:{context.step_id}"
    return [
        Message(
            data=item,
            metadata={**message.metadata, SPLIT_KEY: {"group": group, "index": i, "count": len(items)}},
        )
        for i, item in enumerate(items)
    ]


MAX_GROUP = 10_000


def aggregate(message: Message, fields: dict[str, Any], context: StepContext) -> Message | None:
    metadata = dict(message.metadata)
    if metadata.pop(AGGREGATED_KEY, None):  # the whole group, handed back by the commit that completed it
        return Message(data=message.data, metadata=metadata)
    part = metadata.get(SPLIT_KEY)
    if not isinstance(part, dict) or not {"group", "index", "count"} <= part.keys():
        raise PermanentStepError(
            "aggregate collects the items of a split: this message did not come from one"
        )
    if int(part["count"]) > MAX_GROUP:
        raise PermanentStepError(
            f"a group of {part['count']} items is more than aggregate takes ({MAX_GROUP})"
        )
    value = _evaluate(fields, "value", message.data) if fields.get("value") else message.data
    context.collect(str(part["group"]), int(part["index"]), int(part["count"]), value)
    return None


BATCHED_KEY = "batched"
MAX_BATCH = 10_000
MAX_WINDOW_S = 7 * 24 * 3600


def _number(fields: dict[str, Any], name: str, default: float) -> float:
    raw = fields.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise PermanentStepError(f"batch {name} {raw!r} is not a number") from None


def batch(message: Message, fields: dict[str, Any], context: StepContext) -> Message | None:
    """Collects unrelated messages (of any runs) into batches of `size`, or what arrived within `window_s` of
    a batch's first message; the batch goes on as one message whose data is the list of values."""
    metadata = dict(message.metadata)
    if metadata.pop(BATCHED_KEY, None):  # the whole batch, handed back by the commit that completed it
        return Message(data=message.data, metadata=metadata)
    generation = metadata.get("batch_flush")
    if generation:  # the window of the batch that message started has ended
        context.flush_batch(str(generation))
        return None
    size, window_s = _number(fields, "size", 100), _number(fields, "window_s", 60)
    if not (1 <= size <= MAX_BATCH and size == int(size)):
        raise PermanentStepError(f"batch size must be a whole number from 1 to {MAX_BATCH} (got {size:g})")
    if not 0 <= window_s <= MAX_WINDOW_S:
        raise PermanentStepError(f"batch window must be between 0 (none) and {MAX_WINDOW_S} seconds")
    value = _evaluate(fields, "value", message.data) if fields.get("value") else message.data
    context.batch(int(size), window_s, value)
    return None


_EXPRESSION_FIELD = {"label": "JSONata expression", "viewClass": "JSONataView", "required": True}

JSONATA = {
    "title": "JSONata transform",
    "description": "Reshapes the message with a JSONata expression; the result becomes the new message.",
    "actions": {
        "transform": {
            "x-hub": {"fusible": True},
            "title": "Transform",
            "main": "builtin:jsonata.transform",
            "fields": {"expression": _EXPRESSION_FIELD},
        }
    },
}

FILTER = {
    "title": "Filter",
    "description": "Passes the message on only when the condition (JSONata) is true.",
    "actions": {
        "filter": {
            "x-hub": {"fusible": True},
            "title": "Filter by condition",
            "main": "builtin:filter.filter",
            "fields": {"condition": {**_EXPRESSION_FIELD, "label": "Condition"}},
        }
    },
}

SPLIT = {
    "title": "Split",
    "description": "Emits one message per element of an array (the data itself, or the array a JSONata path selects).",
    "actions": {
        "split": {
            "x-hub": {"fusible": True},
            "title": "Split an array",
            "main": "builtin:split.split",
            "fields": {
                "path": {"label": "Array path (JSONata)", "viewClass": "JSONataView", "required": False}
            },
        }
    },
}


ROUTER = {
    "title": "Router",
    "description": "Branches the flow: the conditions (JSONata) are on its outgoing edges. 'Every matching branch' "
    "follows all edges whose condition holds; 'first matching branch' tries them in order, and an edge without "
    "a condition placed last catches everything else.",
    "actions": {
        "all": {
            "title": "Every matching branch",
            "main": "builtin:router.all",
            "x-hub": {"fusible": True},
            "fields": {},
        },
        "first": {
            "title": "First matching branch",
            "main": "builtin:router.first",
            "x-hub": {"fusible": True, "routing": "first"},
            "fields": {},
        },
    },
}


AGGREGATE = {
    "title": "Aggregate",
    "description": "Puts the items of a split back into one message (a list in their original order), once every "
    "item has arrived; items that failed hold the group back until they are replayed.",
    "actions": {
        "aggregate": {
            "title": "Collect the items of a split",
            "main": "builtin:aggregate.aggregate",
            "x-hub": {"fusible": True},
            "fields": {
                "value": {
                    "label": "Value to collect (JSONata, default: the item)",
                    "viewClass": "JSONataView",
                }
            },
        }
    },
}

BATCH = {
    "title": "Batch",
    "description": "Collects separate messages, from any runs, into one message holding a list: when the batch "
    "has Size values, or Window seconds after its first one, whichever comes first. The batch goes on in the "
    "run of the message that filled it (or, at the window's end, of its first message); the other runs end "
    "at this step.",
    "actions": {
        "batch": {
            "title": "Batch messages by count or time",
            "main": "builtin:batch.batch",
            "x-hub": {"fusible": True},
            "fields": {
                "size": {"label": "Size (values per batch, up to 10,000)", "viewClass": "TextFieldView",
                         "placeholder": "100"},
                "window_s": {"label": "Window (seconds after the first value; 0: wait for Size)",
                             "viewClass": "TextFieldView", "placeholder": "60"},
                "value": {"label": "Value to collect (JSONata, default: the message)", "viewClass": "JSONataView"},
            },
        }
    },
}  # fmt: skip
