"""The Python code step: the code someone wrote in the designer, run in this runner process. The process
executor confines the process (bubblewrap: no network, only the system's and the runtime's files read-only,
its own memory and time limits), so the code never runs inside a worker."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from runtime.steps.errors import PermanentStepError

FILENAME = "<code step>"


@functools.lru_cache(maxsize=64)
def _process(source: str) -> Any:
    """The user's process function, compiled once per distinct source in this runner."""
    namespace: dict[str, Any] = {"__name__": "code_step_user"}
    try:
        exec(compile(source, FILENAME, "exec"), namespace)  # noqa: S102  # the point of this step, sandboxed
    except SyntaxError as exc:
        raise PermanentStepError(f"the code does not parse: line {exc.lineno}: {exc.msg}") from None
    process = namespace.get("process")
    if not callable(process):
        raise PermanentStepError("the code must define a function process(data)")
    return process


def run(message: Any, fields: dict[str, Any], context: Any) -> Any:
    process = _process(str(fields.get("code") or ""))
    wanted = len(inspect.signature(process).parameters)
    return process(message.data, context) if wanted >= 2 else process(message.data)
