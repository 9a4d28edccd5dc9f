"""Redis key names. Every key of a tenant carries the tenant in a {hash tag}, so that on a Redis Cluster a
tenant's streams, runs and bodies live in one slot and a commit script may touch them together."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "hub"
TENANTS = f"{PREFIX}:tenants"  # set of tenants that have streams (global, outside any tenant's slot)
HOOK_CHANGES = f"{PREFIX}:hooks:changed"  # pub/sub: a webhook route changed (payload: its token)
WORK_CHANNEL = f"{PREFIX}:work"  # pub/sub: step messages were queued (wakes idle workers)
# The fair-share state shared by every worker, in a slot of its own (runtime/coordinator/).
FAIR = f"{PREFIX}:{{fair}}"
FAIR_VTIME = f"{FAIR}:vtime"  # zset tenant -> virtual time: measured worker ms divided by the tenant's weight
FAIR_SEEN = f"{FAIR}:seen"  # zset tenant -> when it last had work (ms): tenants recently active
FAIR_WORKERS = f"{FAIR}:workers"  # zset worker name -> until when it counts as alive (ms)
STEP_GROUP = "workers"
RECORDER_GROUP = "recorder"


@dataclass(frozen=True)
class TenantKeys:
    tenant: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{{self.tenant}}}"

    @property
    def legacy_steps(self) -> str:
        """The one steps stream per tenant of hubs before per-flow queues; workers still drain it."""
        return f"{self.base}:steps"

    def queue(self, flow_id: str) -> str:
        """The stream of step messages of one flow (group "workers"): each flow waits in its own queue."""
        return f"{self.base}:steps:{flow_id}"

    @property
    def queues(self) -> str:
        """Set of the tenant's queue streams (a member always has its stream and group)."""
        return f"{self.base}:queues"

    @property
    def ready(self) -> str:
        """Set of the queues that may hold undelivered messages (a reader removes one it finds empty)."""
        return f"{self.base}:ready"

    @property
    def queue_vtime(self) -> str:
        """zset queue -> virtual time (measured worker ms): the fair share between the tenant's flows."""
        return f"{self.base}:qvtime"

    @property
    def queue_cost(self) -> str:
        """hash queue -> recent wall ms per message (sizes batches and the charge taken up front)."""
        return f"{self.base}:qcost"

    @property
    def leases(self) -> str:
        """zset `<lease id>|<messages>` -> expiry (ms): the batches being processed, for concurrency quotas."""
        return f"{self.base}:leases"

    @property
    def quota(self) -> str:
        """hash of the tenant's quotas (weight, max_concurrent_steps, ...), written by the hub."""
        return f"{self.base}:quota"

    @property
    def penalties(self) -> str:
        """hash queue -> `low` (its time counts 4x) or `throttle` (one message a second): set by the hub's
        bad-citizen watch for flows that keep hitting their limits or crashing their runners."""
        return f"{self.base}:penalty"

    @property
    def throttled_until(self) -> str:
        """hash queue -> when a throttled queue may give its next message (ms)."""
        return f"{self.base}:throttle"

    def usage(self, minute: int) -> str:
        """hash of one minute's worker ms, steps and throttled counts (expires after an hour)."""
        return f"{self.base}:usage:{minute}"

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

    def batch(self, flow_id: str, step: str) -> str:
        """The values handed in to a batch step, in arrival order (a list)."""
        return f"{self.base}:batch:{flow_id}:{step}"

    def batch_generation(self, flow_id: str, step: str) -> str:
        """The message id that started the batch being filled: its window's end sends that batch only."""
        return f"{self.base}:batchgen:{flow_id}:{step}"

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

    def flow_limit(self, flow_id: str) -> str:
        """hash `limit`, `mode` (queue | skip | fail): the flow's runs in flight at most (set at publish)."""
        return f"{self.base}:flowlimit:{flow_id}"

    def flow_running(self, flow_id: str) -> str:
        """Counter of the flow's runs in flight that count against its limit."""
        return f"{self.base}:flowrunning:{flow_id}"

    def flow_waiting(self, flow_id: str) -> str:
        """List of `<queue>\n<envelope>`: first messages of runs waiting for a place under the flow's limit."""
        return f"{self.base}:flowwaiting:{flow_id}"

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
