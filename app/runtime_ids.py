"""How the hub's database ids appear in the runtime: tenants, flows, versions and runs as 32-digit hex.

The runtime treats them as opaque strings (they name Redis keys); the database keeps UUIDs.
"""

from __future__ import annotations

import uuid


def runtime_id(value: uuid.UUID) -> str:
    return value.hex


def database_id(value: str) -> uuid.UUID:
    """Raises ValueError for a string that is not a UUID."""
    return uuid.UUID(value)
