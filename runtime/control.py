"""Control-plane job queues on rq (flow activation, polling ticks, token refresh, retention)."""

CONTROL_QUEUE = "hub-control"
