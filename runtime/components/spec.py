"""What the runtime needs to know about a component and its functions (from a component.json descriptor)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FunctionKind = Literal["trigger", "action"]


@dataclass(frozen=True)
class FunctionSpec:
    id: str
    kind: FunctionKind
    title: str
    required_fields: tuple[str, ...] = ()
    # Credential kinds a node of this function accepts; empty means it takes none.
    credential_kinds: tuple[str, ...] = ()
    credential_required: bool = False
    # Polling triggers keep state between runs ("last seen id"); others skip loading it.
    uses_snapshot: bool = False
    # Cheap, pure and trusted (built-in data shaping): the worker may run it in the same commit as the step
    # before it instead of a round trip through the stream. Never true for I/O or snapshot-keeping steps.
    fusible: bool = False
    # Each output takes only the first outgoing edge whose condition holds (if / elif / else), not all of them.
    first_route_only: bool = False
    # Built-in (inline) implementation; None for components run by the process or docker executors.
    handler: Callable[..., Any] | None = None


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    version: str
    title: str
    functions: dict[str, FunctionSpec]
    runtime: Literal["builtin", "python", "nodejs", "docker"] = "builtin"
    descriptor: dict[str, Any] = field(default_factory=dict)
    # The descriptor's verifyCredentials hook, for built-ins: (credential values, context) -> what was checked;
    # raises a StepError saying why the credential does not work.
    verify: Callable[..., str] | None = None
    # Where an imported component's code is installed (`folder:...` for Python), as its catalog entry says.
    code: str = ""

    def function(self, function_id: str) -> FunctionSpec | None:
        return self.functions.get(function_id)


class ComponentResolver(Protocol):
    def get(self, name: str) -> ComponentSpec | None: ...


class CredentialLookup(Protocol):
    """Answers which kind a credential is, or None when it does not exist for this tenant/editor."""

    def kind_of(self, credential_id: str) -> str | None: ...

    def component_of(self, credential_id: str) -> str | None:
        """For a component's own kind ("fields"): the component whose fields it holds."""
        ...
