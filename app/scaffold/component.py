"""Writes a new component folder: component.json, the handlers module, a test and a Dockerfile."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.errors import ValidationError

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,49}$")


def _descriptor(name: str, module: str, title: str) -> dict:
    return {
        "title": title,
        "description": f"{title}: describe what it connects to.",
        "version": "0.1.0",
        "docsUrl": "",
        "x-hub": {"runtime": "python", "entry_point": module, "credential_kinds": ["fields"]},
        "credentials": {
            "fields": {
                "api_key": {"label": "API key", "viewClass": "PasswordFieldView", "required": True},
            }
        },
        "triggers": {
            "poll": {
                "title": "New numbers",
                "type": "polling",
                "main": f"{module}:poll",
                "x-hub": {"uses_snapshot": True},
                "fields": {
                    "count": {"label": "How many per poll", "viewClass": "TextFieldView", "placeholder": "3"}
                },
            }
        },
        "actions": {
            "greet": {
                "title": "Greet",
                "main": f"{module}:greet",
                "fields": {
                    "greeting": {"label": "Greeting", "viewClass": "TextFieldView", "required": True},
                    "loud": {"label": "Shout", "viewClass": "CheckBoxView"},
                },
                "metadata": {
                    "in": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                    "out": {"type": "object", "properties": {"text": {"type": "string"}}},
                },
            }
        },
    }


HANDLERS = '''"""{title}: the component's functions, one per trigger or action id in component.json."""

from __future__ import annotations

from runtime.sdk import Context, Message, PermanentStepError, StepError


def verify_credentials(credential: dict) -> None:
    """Called when a person saves a credential: raise to say it does not work."""
    if not str(credential.get("api_key", "")).strip():
        raise PermanentStepError("the API key is empty")


def greet(message: Message, fields: dict, context: Context) -> Message:
    """An action: one message in, one out. Raise StepError to be retried, PermanentStepError to fail."""
    name = (message.data or {{}}).get("name")
    if not name:
        raise PermanentStepError("the message has no name to greet")
    text = f"{{fields['greeting']}}, {{name}}!"
    if fields.get("loud") in (True, "on", "true"):
        text = text.upper()
    context.log(f"greeted {{name}}")
    return Message(data={{"text": text}}, metadata=message.metadata)


def poll(message: Message, fields: dict, context: Context) -> list[Message]:
    """A polling trigger: emits what is new since the last poll; the snapshot survives between runs."""
    try:
        count = int(fields.get("count") or 3)
    except ValueError:
        raise PermanentStepError("count must be a whole number") from None
    if count > 1000:
        raise StepError("too many at once; try again with a smaller count")
    last = int(context.snapshot.get("last", 0))
    context.snapshot["last"] = last + count
    return [Message(data={{"number": n}}) for n in range(last + 1, last + count + 1)]
'''

TEST = '''"""Tests of {title}: run its functions the way the hub's step runner does."""

from __future__ import annotations

from pathlib import Path

from runtime.sdk import load_component
from runtime.steps.runner import handle

COMPONENT = load_component(Path(__file__).resolve().parents[1])


def _call(function: str, data: object, fields: dict, snapshot: dict | None = None) -> dict:
    request = {{"id": 1, "function": function, "fields": fields, "message": {{"data": data}},
               "context": {{"message_id": "m1", "snapshot": snapshot or {{}}}}}}
    return handle(COMPONENT, request)


def test_greet() -> None:
    answer = _call("greet", {{"name": "Ada"}}, {{"greeting": "Hello", "loud": True}})
    assert answer["error"] is None
    assert answer["outputs"] == [{{"data": {{"text": "HELLO, ADA!"}}}}]


def test_greet_without_a_name_fails_for_good() -> None:
    answer = _call("greet", {{}}, {{"greeting": "Hello"}})
    assert (answer["error"], answer["retryable"]) == ("the message has no name to greet", False)


def test_poll_continues_where_it_stopped() -> None:
    first = _call("poll", None, {{"count": 2}})
    assert [o["data"]["number"] for o in first["outputs"]] == [1, 2]
    second = _call("poll", None, {{"count": 2}}, first["snapshot"])
    assert [o["data"]["number"] for o in second["outputs"]] == [3, 4]


def test_verify_credentials() -> None:
    assert handle(COMPONENT, {{"id": 1, "verify": {{"api_key": "k"}}}})["ok"] is True
    assert handle(COMPONENT, {{"id": 2, "verify": {{"api_key": ""}}}})["error"] == "the API key is empty"
'''

DOCKERFILE = """# The component's image: the hub's Python parent image (its step runner) plus this folder.
# Build the parent once with `hub image build python`; `hub component add-image` reads component.json from
# /component and pins the image's digest.
ARG HUB_PARENT_IMAGE=integration-hub-python:0.1.0
FROM ${{HUB_PARENT_IMAGE}}
COPY . /component
# Third-party packages the component needs go in requirements.txt.
RUN if [ -s /component/requirements.txt ]; then python3 -m pip install --no-cache-dir -r /component/requirements.txt; fi
USER 65534:65534
"""

README = """# {title}

A component for Integration Hub (see the hub's docs/components.md).

- `component.json`: the descriptor (elastic.io / OIH format plus the `x-hub` block).
- `{module}.py`: one function per trigger or action id.
- `tests/`: run with `pytest {name}/tests` from the hub's checkout.
- Import into the catalog: `hub component import {name}`.
"""


def new_component(name: str, parent: Path) -> Path:
    """Create `parent/name`; refuses an invalid name or an existing folder."""
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"{name!r} is not a component name: lower-case letters, digits and '-', starting with a letter."
        )
    folder = parent / name
    if folder.exists():
        raise ValidationError(f"{folder} already exists; choose another name or remove it.")
    module = name.replace("-", "_") + "_component"
    title = name.replace("-", " ").title()
    (folder / "tests").mkdir(parents=True)
    (folder / "component.json").write_text(json.dumps(_descriptor(name, module, title), indent=2) + "\n")
    (folder / f"{module}.py").write_text(HANDLERS.format(title=title))
    (folder / "tests" / f"test_{module}.py").write_text(TEST.format(title=title))
    (folder / "Dockerfile").write_text(DOCKERFILE.format(name=name))
    (folder / "requirements.txt").write_text("")
    (folder / "README.md").write_text(README.format(title=title, module=module, name=name))
    return folder
