"""The step runner: runs one component's steps for an executor that talks to it over stdin/stdout.

    python -m runtime.steps.runner COMPONENT_FOLDER

Reads one JSON request per line and answers one JSON line per request, in order:

    {"id": 1, "function": "lookup", "fields": {...}, "message": {"data": ...},
     "context": {"tenant": ..., "flow": ..., "run": ..., "step": ..., "message_id": ..., "attempt": 1,
                 "snapshot": {...}, "credential": {...}, "test": false, "egress_allow": ["10.1.0.0/16"]}}
    -> {"id": 1, "outputs": [{"data": ...}], "error": null, "retryable": true, "rebound_s": null,
        "snapshot": null, "reply": null, "logs": [["info", "..."]], "delay_s": 0, "ms": 1.2}

    {"id": 2, "verify": {...credential...}}  ->  {"id": 2, "ok": true, "error": null}
    {"id": 3, "ready": ["lookup"]}  ->  {"id": 3, "ok": true, "error": null}
        (activation asks: the component loaded and has these functions; `true` for all of them)
    {"id": 4, "model": {"function": "lookup", "name": "list_projects", "fields": {...}, "credential": {...}}}
        ->  {"id": 4, "ok": true, "options": {"value": "label"}, "error": null}
        (a dynamic select's choices: the model function is called with the fields and the credential)

What the component prints goes to stderr, so it cannot corrupt the answers. The process executor keeps a
runner warm per tenant and component; the Docker image built by `hub component new` runs it as its command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from runtime.components.options import normalize_options
from runtime.net.egress import EgressPolicy
from runtime.sdk.loader import ComponentLoadError, LoadedComponent, load_component
from runtime.steps.context import StepContext
from runtime.steps.executor import InlineExecutor, StepInvocation
from runtime.steps.message import Message

END_OF_STDERR = (
    "\x1e"  # a line of its own on stderr before each answer (runtime/executors/process.py reads it)
)


def handle(component: LoadedComponent, request: dict[str, Any]) -> dict[str, Any]:
    request_id = request.get("id")
    if "ready" in request:  # the component loaded when the runner started, or the runner would not be here
        wanted = request["ready"] if isinstance(request["ready"], list) else []
        missing = sorted(str(f) for f in wanted if f not in component.handlers)
        error = f"no function {', '.join(missing)} (it has: {', '.join(sorted(component.handlers))})"
        return {"id": request_id, "ok": not missing, "error": error if missing else None}
    if "verify" in request:
        if component.verify is None:
            return {"id": request_id, "ok": True, "error": None}
        try:
            component.verify(request["verify"] or {})
        except Exception as exc:  # the author's check said no, or broke: either way the credential fails
            return {"id": request_id, "ok": False, "error": str(exc) or exc.__class__.__name__}
        return {"id": request_id, "ok": True, "error": None}
    if "model" in request:
        return _model(component, request_id, request["model"] if isinstance(request["model"], dict) else {})
    function = str(request.get("function") or "")
    handler = component.handlers.get(function)
    if handler is None:
        known = ", ".join(sorted(component.handlers))
        return _failure(request_id, f"no function {function!r} (it has: {known})")
    ctx = request.get("context") or {}
    context = StepContext(
        tenant_id=str(ctx.get("tenant", "")),
        flow_id=str(ctx.get("flow", "")),
        run_id=str(ctx.get("run", "")),
        step_id=str(ctx.get("step", "")),
        message_id=str(ctx.get("message_id", "")),
        attempt=int(ctx.get("attempt", 1)),
        snapshot=dict(ctx.get("snapshot") or {}),
        credential=ctx.get("credential"),
        test_mode=bool(ctx.get("test")),
        egress=EgressPolicy.parse(",".join(ctx.get("egress_allow") or [])),
    )
    invocation = StepInvocation(
        component=component.spec.name,
        function=function,
        fields=request.get("fields") or {},
        message=Message.from_body(request.get("message") or {}),
        context=context,
    )
    result = InlineExecutor().execute(invocation, handler)
    return {
        "id": request_id,
        "outputs": [output.to_body() for output in result.outputs] if result.ok else [],
        "error": result.error,
        "retryable": result.retryable,
        "rebound_s": result.rebound_delay_s,
        "snapshot": result.snapshot,
        "reply": result.reply,
        "logs": result.logs,
        "delay_s": result.delay_s,
        "ms": round(result.duration_ms, 3),
    }


def _model(component: LoadedComponent, request_id: Any, model: dict[str, Any]) -> dict[str, Any]:
    name = str(model.get("name") or "")
    found = component.model(name)
    if found is None:
        return {"id": request_id, "ok": False, "options": None,
                "error": f"the component has no model function {name!r}"}  # fmt: skip
    try:
        options = normalize_options(
            found(dict(model.get("fields") or {}), dict(model.get("credential") or {}))
        )
    except Exception as exc:  # the author's function failed (a refused credential, a typo): say what it said
        return {"id": request_id, "ok": False, "options": None, "error": str(exc) or exc.__class__.__name__}
    return {"id": request_id, "ok": True, "options": options, "error": None}


def _failure(request_id: Any, error: str) -> dict[str, Any]:
    return {"id": request_id, "outputs": [], "error": error, "retryable": False, "rebound_s": None,
            "snapshot": None, "reply": None, "logs": [], "delay_s": 0, "ms": 0}  # fmt: skip


def _answer(component: LoadedComponent, line: bytes) -> bytes:
    """One request line in, one answer line out, whatever the request or the component does."""
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return orjson.dumps(_failure(None, f"the request is not JSON: {exc}"))
    if not isinstance(request, dict):
        return orjson.dumps(_failure(None, "a request must be a JSON object"))
    request_id = request.get("id")
    try:
        answer = handle(component, request)
    except SystemExit:  # a component calling sys.exit() must not take the runner down with it
        answer = _failure(request_id, "the component called sys.exit()")
    except Exception as exc:  # malformed fields of the request itself
        answer = _failure(request_id, f"bad request: {exc.__class__.__name__}: {exc}")
    try:
        return orjson.dumps(answer, default=str)
    except TypeError as exc:  # outputs JSON cannot carry (non-string keys, integers beyond 64 bits)
        return orjson.dumps(_failure(request_id, f"the step's output cannot be sent as JSON: {exc}"))


def serve(component: LoadedComponent, requests: BinaryIO, answers: BinaryIO) -> None:
    for line in requests:
        if line.strip():
            answer = _answer(component, line)
            # The end of this request's stderr: a container engine may deliver stderr after the answer.
            sys.stderr.write(END_OF_STDERR + "\n")
            sys.stderr.flush()
            answers.write(answer + b"\n")
            answers.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m runtime.steps.runner COMPONENT_FOLDER\n")
        return 2
    # The protocol owns the real stdout; anything the component prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # File descriptor 1 too, so that C extensions and child processes cannot write into the answers.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    # And the requests come on a private descriptor: a child process the component leaves behind must not
    # read (and so swallow) the next request from fd 0.
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())
    os.close(devnull)
    try:
        component = load_component(Path(argv[1]))
    except ComponentLoadError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    serve(component, requests, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
