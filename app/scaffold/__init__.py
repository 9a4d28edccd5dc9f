"""`hub component new`: a new Python component to start from, with descriptor, tests and a Dockerfile."""
