"""Opaque random tokens: the caller keeps the token, the database keeps only its SHA-256."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
