"""Redis key names. Every key of a tenant carries the tenant in a {hash tag}, so that on a Redis Cluster a
tenant's streams, runs and bodies live in one slot and a commit script may touch them together."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "hub"
TENANTS = f"{PREFIX}:tenants"  # set of tenants that have streams (global, outside any tenant's slot)
HOOK_CHANGES = f"{PREFIX}:hooks:changed"  # pub/sub: a webhook route changed (payload: its token)
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

    def attachments(self, message_id: str) -> str:
        """The files a webhook request brought, one after the other; attachments name their byte range."""
        return f"{self.base}:files:{message_id}"

    def aggregate(self, flow_id: str, group: str) -> str:
        return f"{self.base}:agg:{flow_id}:{group}"

    def snapshots(self, flow_id: str) -> str:
        return f"{self.base}:snap:{flow_id}"

    def flow_version(self, version_id: str) -> str:
        return f"{self.base}:version:{version_id}"

    def reply(self, run_id: str) -> str:
        return f"{self.base}:reply:{run_id}"

    def hook_state(self, token: str) -> str:
        """`<rev>:<1|0>`: the route's revision and whether it accepts requests. The ingress script checks it
        atomically with the write, so a rotated, revoked or deactivated URL stops at once on every router."""
        return f"{self.base}:hook:{token}"

    def hook_revision(self, token: str) -> str:
        """Counter that orders the changes of a route (each change takes the next revision)."""
        return f"{self.base}:hookrev:{token}"

    def hook_capture(self, flow_id: str) -> str:
        """The last request captured by a flow's test URL, for the designer."""
        return f"{self.base}:capture:{flow_id}"

    @property
    def credentials_generation(self) -> str:
        """Counter bumped whenever one of the tenant's credentials changes: workers' caches read it again."""
        return f"{self.base}:credgen"

    @property
    def warm(self) -> str:
        """Hash flow id -> the runners its synchronous webhook needs warm on every worker (runtime/executors/warm.py)."""
        return f"{self.base}:warm"

    def rate(self, scope: str) -> str:
        """GCRA state (the theoretical arrival time) of a webhook rate limit: `tenant` or `flow:<id>`."""
        return f"{self.base}:rate:{scope}"


def hook_route(token: str) -> str:
    """A webhook token's route document (global: a caller's URL names no tenant)."""
    return f"{PREFIX}:hook:{token}"


def reply_channel(router_id: str) -> str:
    """Pub/sub channel on which a router hears the replies and ends of the synchronous runs it waits for."""
    return f"{PREFIX}:replies:{router_id}"


def tenant_of_stream(stream: str) -> str:
    """The tenant id inside a stream key's hash tag."""
    start = stream.index("{") + 1
    return stream[start : stream.index("}", start)]
