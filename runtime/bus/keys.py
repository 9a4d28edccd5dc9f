"""Redis key names. Every key of a tenant carries the tenant in a {hash tag}, so that on a Redis Cluster a
tenant's streams, runs and bodies live in one slot and a commit script may touch them together."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "hub"
TENANTS = f"{PREFIX}:tenants"  # set of tenants that have streams (global, outside any tenant's slot)
STEP_GROUP = "workers"
RECORDER_GROUP = "recorder"


@dataclass(frozen=True)
class TenantKeys:
    tenant: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{{self.tenant}}}"

    @property
    def steps(self) -> str:
        return f"{self.base}:steps"

    @property
    def events(self) -> str:
        return f"{self.base}:events"

    @property
    def rejected_events(self) -> str:
        return f"{self.base}:events:rejected"

    @property
    def delayed(self) -> str:
        return f"{self.base}:delayed"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def backlog(self) -> str:
        return f"{self.base}:backlog"

    def run(self, run_id: str) -> str:
        return f"{self.base}:run:{run_id}"

    def body(self, message_id: str) -> str:
        return f"{self.base}:body:{message_id}"

    def aggregate(self, flow_id: str, group: str) -> str:
        return f"{self.base}:agg:{flow_id}:{group}"

    def snapshots(self, flow_id: str) -> str:
        return f"{self.base}:snap:{flow_id}"

    def flow_version(self, version_id: str) -> str:
        return f"{self.base}:version:{version_id}"

    def reply(self, run_id: str) -> str:
        return f"{self.base}:reply:{run_id}"


def tenant_of_stream(stream: str) -> str:
    """The tenant id inside a stream key's hash tag."""
    start = stream.index("{") + 1
    return stream[start : stream.index("}", start)]
