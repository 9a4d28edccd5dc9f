"""Authenticated encryption (AES-256-GCM, a random 96-bit nonce per encryption) and data-key wrapping.

Associated data binds every ciphertext to where it belongs (tenant, credential): a blob copied to another row
or tenant fails to open instead of decrypting there."""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class DecryptionError(Exception):
    """The blob was not sealed with this key and associated data (wrong key, tampered, or moved)."""


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def open_sealed(key: bytes, blob: bytes, associated: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionError("the ciphertext is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag:
        raise DecryptionError("the ciphertext does not open with this key here") from None


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def data_key_context(tenant_id: uuid.UUID, key_row_id: uuid.UUID) -> bytes:
    return b"hub.tenant-key:" + tenant_id.bytes + key_row_id.bytes


def credential_context(tenant_id: uuid.UUID, credential_id: uuid.UUID) -> bytes:
    return b"hub.credential:" + tenant_id.bytes + credential_id.bytes


def oauth_client_context(tenant_id: uuid.UUID, client_id: uuid.UUID) -> bytes:
    return b"hub.oauth-client:" + tenant_id.bytes + client_id.bytes
