"""Service functions shared by the UI, the CLI and (later) the REST API. Each takes the tenant explicitly."""
