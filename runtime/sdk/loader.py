"""Loading a Python component from its folder: descriptor, module, one handler per function."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
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
    # Where the component's other functions live: a dynamic select's model names one (see model()).
    module: ModuleType | None = None

    def model(self, name: str) -> Callable[..., Any] | None:
        """A dynamic select's model function: called with (fields, credential), returns the choices."""
        found = (
            getattr(self.module, name, None) if self.module is not None and not name.startswith("_") else None
        )
        return found if callable(found) else None


def _import(folder: Path, module_name: str) -> ModuleType:
    """Import the component's module from its own folder under a name of its own, so that two components
    whose modules have the same name never get each other's code."""
    relative = Path(*module_name.split("."))
    path = folder / relative.with_suffix(".py")
    if not path.is_file():
        path = folder / relative / "__init__.py"
    if not path.is_file():
        raise ComponentLoadError(f"{folder} has no module {module_name!r} ({relative}.py)")
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # after everything else: its helper modules, never a shadow of others
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    unique = f"_hub_component_{digest}_{module_name.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ComponentLoadError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[unique]
        raise ComponentLoadError(f"importing {path} failed: {exc.__class__.__name__}: {exc}") from None
    return module


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
    hub = parsed.cleaned.get("x-hub")
    module_name = str((hub if isinstance(hub, dict) else {}).get("entry_point") or "")
    if not module_name:
        raise ComponentLoadError("component.json: x-hub.entry_point must name the component's Python module")
    module = _import(folder, module_name)
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
    return LoadedComponent(spec, handlers, verify if callable(verify) else None, module)
