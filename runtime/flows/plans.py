"""Compiled execution plans per flow version, loaded from Redis and cached (versions never change)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from runtime.components.registry import spec_from_pin
from runtime.components.spec import ComponentResolver, ComponentSpec
from runtime.flows.compiler import ExecutionPlan, compile_flow


class PlanNotFoundError(LookupError):
    """The flow version was never published to this Redis (or was deleted)."""


class VersionStore(Protocol):
    def load_version(self, tenant: str, version_id: str) -> dict | None: ...


class PinnedComponents:
    """The runtime's own components first, then the imported ones a flow version pinned when it was saved."""

    def __init__(self, base: ComponentResolver, pinned: dict[str, dict]) -> None:
        self.base = base
        self.pinned = pinned

    def get(self, name: str) -> ComponentSpec | None:
        spec = self.base.get(name)
        if spec is not None or name not in self.pinned:
            return spec
        return spec_from_pin(name, self.pinned[name])


class PlanCache:
    def __init__(self, store: VersionStore, components: ComponentResolver, size: int = 1024) -> None:
        self.store = store
        self.components = components
        self.size = size
        self._plans: OrderedDict[tuple[str, str], ExecutionPlan] = OrderedDict()

    def get(self, tenant: str, version_id: str) -> ExecutionPlan:
        key = (tenant, version_id)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        document = self.store.load_version(tenant, version_id)
        if document is None:
            raise PlanNotFoundError(f"flow version {version_id} is not published for tenant {tenant}")
        # Raises FlowValidationError if a component disappeared since the version was saved.
        resolver = PinnedComponents(self.components, document.get("components") or {})
        plan = compile_flow(document["graph"], resolver, flow_id=document["flow"], version_id=version_id)
        self._plans[key] = plan
        if len(self._plans) > self.size:
            self._plans.popitem(last=False)
        return plan
