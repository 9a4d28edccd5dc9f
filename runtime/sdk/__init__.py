"""The component SDK: what a component's author imports.

A component is a folder with a `component.json` (the elastic.io / OIH descriptor, plus an `x-hub` block
naming its Python module) and that module, which defines one function per trigger or action id:

    def lookup(message: Message, fields: dict, context: Context) -> Message | list[Message] | dict | None

Return the output(s), or None for none; raise StepError (retried), PermanentStepError (not retried) or call
`context.rebound(reason, delay_s)`; keep state between runs in `context.snapshot`; answer a waiting webhook
caller with `context.reply(body, status, headers)`; log with `context.log(text, level)`. An optional
`verify_credentials(credential: dict) -> None` raises when the credential does not work. docs/components.md
has a full example; `hub component new NAME` writes one to start from.
"""

from runtime.sdk.loader import ComponentLoadError, LoadedComponent, load_component
from runtime.steps.context import StepContext as Context
from runtime.steps.errors import PermanentStepError, Rebound, StepError
from runtime.steps.message import Message

__all__ = [
    "ComponentLoadError",
    "Context",
    "LoadedComponent",
    "Message",
    "PermanentStepError",
    "Rebound",
    "StepError",
    "load_component",
]
