"""The run recorder: turns the runtime's events streams into run, step-execution and log rows in SQL."""
