"""Component specs built from component.json-style descriptors, and a simple in-memory resolver."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runtime.components.spec import ComponentSpec, FunctionSpec


def _required_fields(function: Mapping[str, Any]) -> tuple[str, ...]:
    fields = function.get("fields") or {}
    return tuple(
        name for name, spec in fields.items() if isinstance(spec, Mapping) and spec.get("required") is True
    )


def _kinds(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return tuple(k for k in value if isinstance(k, str)) if isinstance(value, list | tuple) else default


def spec_from_descriptor(
    name: str,
    descriptor: Mapping[str, Any],
    handlers: Mapping[str, Callable[..., Any]] | None = None,
    *,
    runtime: str = "builtin",
    verify: Callable[..., str] | None = None,
) -> ComponentSpec:
    """Read the parts of a descriptor the runtime needs: functions, their kind, required fields, credentials."""
    handlers = handlers or {}
    credentials = descriptor.get("credentials") or {}
    top = descriptor.get("x-hub") if isinstance(descriptor.get("x-hub"), Mapping) else {}
    credential_kinds = tuple(k for k in (top.get("credential_kinds") or ()) if isinstance(k, str))
    if not credential_kinds and credentials:
        credential_kinds = ("fields",)
    functions: dict[str, FunctionSpec] = {}
    for kind, section in (("trigger", "triggers"), ("action", "actions")):
        for function_id, function in (descriptor.get(section) or {}).items():
            hub = function.get("x-hub") if isinstance(function.get("x-hub"), Mapping) else {}
            functions[function_id] = FunctionSpec(
                id=function_id,
                kind=kind,  # type: ignore[arg-type]
                title=function.get("title", function_id),
                required_fields=_required_fields(function),
                credential_kinds=_kinds(hub.get("credential_kinds"), credential_kinds),
                credential_required=bool(hub.get("credential_required", False)),
                uses_snapshot=bool(hub.get("uses_snapshot", False)),
                fusible=bool(hub.get("fusible", False)) and not hub.get("uses_snapshot", False),
                first_route_only=hub.get("routing") == "first",
                handler=handlers.get(function_id),
            )
    return ComponentSpec(
        name=name,
        version=str(descriptor.get("version", "1.0.0")),
        title=descriptor.get("title", name),
        functions=functions,
        runtime=runtime,  # type: ignore[arg-type]
        descriptor=dict(descriptor),
        verify=verify,
    )


def spec_from_pin(name: str, pin: Mapping[str, Any]) -> ComponentSpec:
    """The spec of an imported component as a flow version pins it: {version, runtime, entry, descriptor}."""
    descriptor = {**(pin.get("descriptor") or {}), "version": pin.get("version", "")}
    spec = spec_from_descriptor(name, descriptor, runtime=str(pin.get("runtime") or "docker"))
    return dataclasses.replace(spec, code=str(pin.get("entry") or ""))


class StaticRegistry:
    """Resolves component names from a fixed set of specs (the built-ins, or a test's own)."""

    def __init__(self, specs: Iterable[ComponentSpec] = ()) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def get(self, name: str) -> ComponentSpec | None:
        return self._specs.get(name)

    def with_components(self, *specs: ComponentSpec) -> StaticRegistry:
        return StaticRegistry([*self._specs.values(), *specs])

    def names(self) -> list[str]:
        return sorted(self._specs)
