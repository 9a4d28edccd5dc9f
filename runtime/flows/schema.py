"""The flow document: nodes, edges and trigger. Shared by the designer, the API and the runtime."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NODE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class RetryPolicy(BaseModel):
    """How often a failing step is tried, with exponential backoff and jitter between attempts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=25)
    base_delay_s: float = Field(default=1.0, ge=0, le=3600)
    max_delay_s: float = Field(default=300.0, ge=0, le=86400)


class NodeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retry: RetryPolicy = RetryPolicy()
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    executor: Literal["inline", "process", "docker"] | None = None
    # Runners (processes or containers) of the step's component kept for this step in each worker: they run its
    # messages side by side; more start while a backlog waits, within the worker's limits.
    instances: int = Field(default=1, ge=1, le=16)
    # A polling trigger's cron expression (5 fields, UTC, aligned to the wall clock): when the flow runs.
    schedule: str | None = Field(default=None, max_length=200)


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=NODE_ID_PATTERN)
    component: str = Field(min_length=1, max_length=200)
    function: str = Field(min_length=1, max_length=200)
    name: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)
    credential_id: str | None = None
    settings: NodeSettings = NodeSettings()
    # Where the designer draws the node; the runtime ignores it.
    position: dict[str, float] | None = None


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    target: str
    # A JSONata expression on the message the source emitted; the edge is followed when it is truthy.
    condition: str | None = None


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["webhook", "schedule", "manual", "polling"] = "manual"
    cron: str | None = None


class Concurrency(BaseModel):
    """At most `limit` runs of the flow in flight; a run beyond it waits for a place (`queue`), is not started
    (`skip`: a webhook caller gets 429, a polling tick counts as skipped) or is recorded as failed (`fail`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(ge=1, le=10_000)
    when_exceeded: Literal["queue", "skip", "fail"] = "queue"


class FlowGraph(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    trigger: Trigger = Trigger()
    concurrency: Concurrency | None = None
    # Imported component -> the version the flow was designed with; publishing resolves that version, so a newer
    # import never changes a flow until someone upgrades it in the designer. The runtime ignores it (a published
    # version carries the components it uses).
    pins: dict[str, str] = Field(default_factory=dict)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)
