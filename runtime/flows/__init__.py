"""Flow schema (shared with the designer) and the compiler that turns a flow version into an execution plan."""
