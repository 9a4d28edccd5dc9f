"""The step contract: messages in, outputs out; the executors that run steps."""
