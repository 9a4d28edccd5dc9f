"""Components that ship with the hub but run their code in a sandboxed runner, never in a worker: the Python
code step. Their folders live under runtime/components/sandboxed/ and their catalog entry is `folder:hub/NAME`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from runtime.components.registry import spec_from_descriptor
from runtime.components.spec import ComponentSpec

SHIPPED_ROOT = Path(__file__).resolve().parent / "sandboxed"
SHIPPED_PREFIX = "folder:hub/"
NAMES = ("code",)


def shipped_folder(entry: str) -> Path | None:
    """The folder of a shipped component's catalog entry (`folder:hub/code`), or None for any other entry."""
    if not entry.startswith(SHIPPED_PREFIX):
        return None
    name = entry.removeprefix(SHIPPED_PREFIX)
    return SHIPPED_ROOT / name if name in NAMES else None


def shipped_descriptors() -> dict[str, dict]:
    return {name: json.loads((SHIPPED_ROOT / name / "component.json").read_text()) for name in NAMES}


def shipped_specs() -> list[ComponentSpec]:
    return [
        dataclasses.replace(
            spec_from_descriptor(name, descriptor, runtime="python"), code=f"{SHIPPED_PREFIX}{name}"
        )
        for name, descriptor in shipped_descriptors().items()
    ]
