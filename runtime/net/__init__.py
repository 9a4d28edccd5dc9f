"""Outbound network access of steps."""
