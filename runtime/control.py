"""Control-plane job queues on rq (flow activation, polling ticks, token refresh, retention).

Polling ticks wait in one rq queue per tenant; control workers take from the control queue and the tenants'
tick queues in turn (round robin), so a tenant with thousands of ticks does not delay another's."""

CONTROL_QUEUE = "hub-control"
TICK_QUEUES = "hub:tick-queues"  # set of the tenants' tick queue names (a worker listens to all of them)


def tick_queue(tenant: str) -> str:
    """The rq queue of one tenant's polling ticks."""
    return f"hub-ticks-{tenant}"
