"""The built-in library, run inline in the worker. `builtin_registry()` resolves them by name."""

from __future__ import annotations

import functools

from runtime.components.builtin import email, http_poll, http_request, sql, transform, triggers, utility
from runtime.components.registry import StaticRegistry, spec_from_descriptor
from runtime.components.shipped import shipped_descriptors, shipped_specs

_COMPONENTS = {
    "manual": (triggers.MANUAL, {"start": triggers.pass_through}),
    "webhook": (triggers.WEBHOOK, {"receive": triggers.pass_through}),
    "schedule": (triggers.SCHEDULE, {"tick": triggers.pass_through}),
    "jsonata": (transform.JSONATA, {"transform": transform.transform}),
    "filter": (transform.FILTER, {"filter": transform.filter_}),
    "split": (transform.SPLIT, {"split": transform.split}),
    "aggregate": (transform.AGGREGATE, {"aggregate": transform.aggregate}),
    "batch": (transform.BATCH, {"batch": transform.batch}),
    "router": (transform.ROUTER, {"all": triggers.pass_through, "first": triggers.pass_through}),
    "http": (http_request.HTTP, {"request": http_request.request}),
    "http_poll": (http_poll.HTTP_POLL, {"poll": http_poll.poll}),
    "email": (email.EMAIL, {"send": email.send}),
    "sql": (sql.SQL, {"query": sql.query}),
    "log": (utility.LOG, {"log": utility.log}),
    "reply": (utility.REPLY, {"reply": utility.reply}),
    "delay": (utility.DELAY, {"delay": utility.delay}),
}
# The descriptors' verifyCredentials hooks: what the Credentials page's Verify runs.
_VERIFY = {"email": email.verify, "sql": sql.verify}


@functools.cache
def builtin_registry() -> StaticRegistry:
    """The built-ins run inline; the shipped ones (the code step) run in a sandboxed runner."""
    inline = [spec_from_descriptor(name, desc, handlers, verify=_VERIFY.get(name))
              for name, (desc, handlers) in _COMPONENTS.items()]  # fmt: skip
    return StaticRegistry([*inline, *shipped_specs()])


def builtin_descriptors() -> dict[str, dict]:
    return {**{name: descriptor for name, (descriptor, _) in _COMPONENTS.items()}, **shipped_descriptors()}
