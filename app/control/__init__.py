"""The control plane: work on flows that is not a message (activation, deactivation) done by rq jobs in the
workers, which hold the runners. The web process only asks (enqueue) and shows the status the job leaves."""
