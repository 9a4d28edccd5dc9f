"""Which runners a flow needs, and the runners every worker keeps warm.

A step runs inline (a built-in's handler), in a runner process (Python and Node.js code) or in a container (an
image). Activation starts a flow's runners once, so that a component that cannot load fails the activation
rather than every message. Active flows whose webhook answers synchronously must not pay a cold start on a
request: their runners are *pinned* in a per-tenant hash in Redis (`hub:{tenant}:warm`, one field per flow),
which every worker reads in its housekeeping and keeps running, exempt from the idle stop. Deactivating the
flow unpins them; the idle stop then takes them like any other."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import redis

from runtime.bus.keys import PREFIX, TenantKeys
from runtime.flows.compiler import ExecutionPlan, PlanStep

WARM_TENANTS = f"{PREFIX}:warm-tenants"  # the tenants with pinned runners


@dataclass(frozen=True, order=True)
class RunnerSpec:
    executor: str  # "process" or "docker"
    code: str  # where the component's code is (folder:...), or its image
    network: bool = False
    functions: tuple[str, ...] = ()  # the functions the flow calls: a warm-up checks they load
    instances: int = 1  # how many the flow's steps ask for (the most any of them asks)

    def merged(self, other: RunnerSpec) -> RunnerSpec:
        """One runner serving what both need (two steps, or two flows, use the same component code)."""
        return RunnerSpec(
            self.executor,
            self.code,
            self.network or other.network,
            tuple(sorted(set(self.functions) | set(other.functions))),
            max(self.instances, other.instances),
        )

    def to_json(self) -> list[object]:
        return [self.executor, self.code, self.network, list(self.functions), self.instances]

    @classmethod
    def from_json(cls, value: list[object]) -> RunnerSpec:
        executor, code, network, functions, *rest = value
        instances = int(rest[0]) if rest else 1  # type: ignore[call-overload]
        return cls(str(executor), str(code), bool(network), tuple(str(f) for f in functions), instances)  # type: ignore[union-attr]


def executor_name(step: PlanStep) -> str:
    """Built-ins (with a handler) run inline; Python and Node.js components' code in a runner process;
    components published as images in a container."""
    if step.function.handler is not None:
        return "inline"
    if step.component.runtime in ("python", "nodejs"):
        return "process"
    return step.component.runtime


def runners_of(plan: ExecutionPlan) -> list[RunnerSpec]:
    """The runners a flow's steps need (one per component code, with every function the flow calls)."""
    needed: dict[tuple[str, str], RunnerSpec] = {}
    for step in plan.steps.values():
        executor = executor_name(step)
        if executor == "inline":
            continue
        code = step.component.code or step.component.name
        network = (step.component.descriptor.get("x-hub") or {}).get("network") is True
        spec = RunnerSpec(executor, code, network, (step.function.id,), step.node.settings.instances)
        seen = needed.get((executor, code))
        needed[(executor, code)] = seen.merged(spec) if seen else spec
    return sorted(needed.values())


class WarmSet:
    """The pinned runners of every active flow with a synchronous webhook, per tenant, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def pin(self, tenant: str, flow: str, specs: Iterable[RunnerSpec]) -> None:
        found = [spec.to_json() for spec in specs]
        if not found:
            self.unpin(tenant, flow)
            return
        self.redis.hset(TenantKeys(tenant).warm, flow, orjson.dumps(found))
        self.redis.sadd(WARM_TENANTS, tenant)

    def unpin(self, tenant: str, flow: str) -> None:
        self.redis.hdel(TenantKeys(tenant).warm, flow)

    def flows(self, tenant: str) -> dict[str, list[RunnerSpec]]:
        raw = self.redis.hgetall(TenantKeys(tenant).warm)
        return {
            (flow.decode() if isinstance(flow, bytes) else flow): [
                RunnerSpec.from_json(v) for v in orjson.loads(specs)
            ]
            for flow, specs in raw.items()
        }

    def pinned(self) -> dict[str, set[RunnerSpec]]:
        """Every pinned runner, by tenant, in two round trips. A tenant stays in the set after its last unpin:
        removing it could race another worker's pin, and an empty hash costs next to nothing."""
        tenants = sorted(t.decode() if isinstance(t, bytes) else t for t in self.redis.smembers(WARM_TENANTS))
        pipe = self.redis.pipeline(transaction=False)
        for tenant in tenants:
            pipe.hvals(TenantKeys(tenant).warm)
        found: dict[str, set[RunnerSpec]] = {}
        for tenant, values in zip(tenants, pipe.execute(), strict=True):
            specs = {RunnerSpec.from_json(v) for raw in values for v in orjson.loads(raw)}
            if specs:
                found[tenant] = specs
        return found
