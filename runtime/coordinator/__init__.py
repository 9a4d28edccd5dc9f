"""The resource coordinator: which tenant's and which flow's messages a worker takes next (weighted fair
queueing on measured worker time, shared by every worker through Redis), within the tenants' quotas.

It decides only what runs next; how a step runs is the executors' business (runtime/executors/)."""
