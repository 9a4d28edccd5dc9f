"""One module per page; each holds its own substate."""
