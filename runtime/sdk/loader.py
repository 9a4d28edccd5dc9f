"""Loading a Python component from its folder: descriptor, module, one handler per function."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.components.descriptor import DescriptorError, load_descriptor_json, parse_descriptor
from runtime.components.registry import spec_from_descriptor
from runtime.components.spec import ComponentSpec


class ComponentLoadError(Exception):
    """The component folder cannot be loaded; the message says what to fix."""


@dataclass(frozen=True)
class LoadedComponent:
    spec: ComponentSpec
    handlers: dict[str, Callable[..., Any]]
    verify: Callable[[dict[str, Any]], None] | None


def load_component(folder: Path) -> LoadedComponent:
    """Read `folder/component.json`, import the module named by `x-hub.entry_point`, find every function."""
    folder = folder.resolve()
    descriptor_path = folder / "component.json"
    if not descriptor_path.is_file():
        raise ComponentLoadError(f"{folder} has no component.json")
    try:
        raw = load_descriptor_json(descriptor_path.read_bytes())
        parsed = parse_descriptor(raw, name=folder.name)
    except DescriptorError as exc:
        raise ComponentLoadError(f"component.json: {exc}") from None
    module_name = str((raw.get("x-hub") or {}).get("entry_point") or "")
    if not module_name:
        raise ComponentLoadError("component.json: x-hub.entry_point must name the component's Python module")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ComponentLoadError(f"cannot import {module_name!r} from {folder}: {exc}") from None
    handlers = {}
    for function in parsed.descriptor.functions:
        handler = getattr(module, function.id, None)
        if not callable(handler):
            raise ComponentLoadError(
                f"{module_name} has no function {function.id!r} for the {function.kind} of that id"
            )
        handlers[function.id] = handler
    verify = getattr(module, "verify_credentials", None)
    spec = spec_from_descriptor(parsed.descriptor.name, parsed.cleaned, handlers, runtime="python")
    return LoadedComponent(spec, handlers, verify if callable(verify) else None)
