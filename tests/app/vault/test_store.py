"""The vault's encryption: round trips, random nonces, ciphertexts bound to their row and tenant, key rings."""

from __future__ import annotations

import os
import uuid

import pytest

from app.config import MasterKey
from app.services import accounts
from app.storage.models import Credential, TenantKey
from app.storage.scoping import system_session, tenant_session
from app.vault.store import Vault, VaultError

RING = [MasterKey(key_id="k1", key=os.urandom(32))]


def store(db, tenant_id, vault: Vault, values: dict, name: str = "c") -> uuid.UUID:
    with tenant_session(db.sessions, tenant_id) as session:
        return vault.store(session, tenant_id, name=name, kind="api_key", values=values).id


def reveal(db, tenant_id, vault: Vault, credential_id: uuid.UUID) -> dict:
    with tenant_session(db.sessions, tenant_id) as session:
        return vault.reveal(session, session.get(Credential, credential_id))


def test_round_trip_and_no_plaintext_at_rest(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    vault = Vault(RING)
    cid = store(db, tenant, vault, {"key": "sk-live-123"})
    assert reveal(db, tenant, vault, cid) == {"key": "sk-live-123"}
    with tenant_session(db.sessions, tenant) as session:
        row = session.get(Credential, cid)
        assert b"sk-live-123" not in row.ciphertext
        key_row = session.get(TenantKey, row.data_key_id)
        assert key_row.master_key_id == "k1" and len(key_row.wrapped_key) == 12 + 32 + 16


def test_every_encryption_has_its_own_nonce(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    vault = Vault(RING)
    a, b = store(db, tenant, vault, {"key": "same"}), store(db, tenant, vault, {"key": "same"})
    with tenant_session(db.sessions, tenant) as session:
        blob_a, blob_b = session.get(Credential, a).ciphertext, session.get(Credential, b).ciphertext
    assert blob_a[:12] != blob_b[:12] and blob_a != blob_b


def test_a_ciphertext_copied_to_another_row_does_not_open(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    vault = Vault(RING)
    secret, decoy = store(db, tenant, vault, {"key": "secret"}), store(db, tenant, vault, {"key": "decoy"})
    with tenant_session(db.sessions, tenant) as session:
        session.get(Credential, decoy).ciphertext = session.get(Credential, secret).ciphertext
    with pytest.raises(VaultError, match="copied from another row or tenant"):
        reveal(db, tenant, vault, decoy)


def test_a_ciphertext_moved_to_another_tenant_does_not_open(db) -> None:
    acme, beta = accounts.create_tenant(db, "Acme").id, accounts.create_tenant(db, "Beta").id
    vault = Vault(RING)
    secret = store(db, acme, vault, {"key": "acme's"})
    decoy = store(db, beta, vault, {"key": "beta's"})
    with system_session(db.sessions) as session:
        stolen = session.get(Credential, secret)
        session.get(Credential, decoy).ciphertext = stolen.ciphertext
    with pytest.raises(VaultError):
        reveal(db, beta, vault, decoy)


def test_tampering_is_detected(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    vault = Vault(RING)
    cid = store(db, tenant, vault, {"key": "k"})
    with tenant_session(db.sessions, tenant) as session:
        row = session.get(Credential, cid)
        row.ciphertext = row.ciphertext[:-1] + bytes([row.ciphertext[-1] ^ 1])
    with pytest.raises(VaultError, match="does not decrypt"):
        reveal(db, tenant, vault, cid)


def test_a_key_ring_without_the_wrapping_key_says_which_one_is_missing(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    cid = store(db, tenant, Vault(RING), {"key": "k"})
    other = Vault([MasterKey(key_id="k2", key=os.urandom(32))])
    with pytest.raises(VaultError, match="master key 'k1', which is not in HUB_SECRET_KEYS"):
        reveal(db, tenant, other, cid)
    wrong = Vault([MasterKey(key_id="k1", key=os.urandom(32))])
    with pytest.raises(VaultError, match="does not open the tenant's data key"):
        reveal(db, tenant, wrong, cid)


def test_any_key_of_the_ring_decrypts_and_the_first_encrypts(db) -> None:
    tenant = accounts.create_tenant(db, "Acme").id
    old = store(db, tenant, Vault(RING), {"key": "old"})
    new_ring = [MasterKey(key_id="k2", key=os.urandom(32)), *RING]
    assert reveal(db, tenant, Vault(new_ring), old) == {"key": "old"}
    # A new tenant's data key is wrapped by the first key of the ring.
    other = accounts.create_tenant(db, "Beta").id
    cid = store(db, other, Vault(new_ring), {"key": "new"})
    with tenant_session(db.sessions, other) as session:
        assert session.get(TenantKey, session.get(Credential, cid).data_key_id).master_key_id == "k2"


def test_an_empty_key_ring_is_refused() -> None:
    with pytest.raises(VaultError, match="HUB_SECRET_KEYS"):
        Vault([])


def test_rotation_rewraps_every_data_key_under_the_new_master_key(db) -> None:
    tenants = [accounts.create_tenant(db, name).id for name in ("Acme", "Beta", "Gamma")]
    ids = {t: store(db, t, Vault(RING), {"key": f"secret of {t}"}) for t in tenants}
    new = MasterKey(key_id="k2", key=os.urandom(32))
    report = Vault([new, *RING]).rewrap_all(db, batch=2)
    assert report.rewrapped == 3 and report.problems == []
    # The old key can go: the new one alone opens everything, and the credentials were not touched.
    for tenant, cid in ids.items():
        assert reveal(db, tenant, Vault([new]), cid) == {"key": f"secret of {tenant}"}
    assert Vault([new, *RING]).rewrap_all(db).rewrapped == 0  # nothing left: idempotent


def test_rotation_reports_a_data_key_no_key_of_the_ring_opens(db) -> None:
    acme, beta = accounts.create_tenant(db, "Acme").id, accounts.create_tenant(db, "Beta").id
    store(db, acme, Vault(RING), {"key": "a"})
    lost = MasterKey(key_id="lost", key=os.urandom(32))
    store(db, beta, Vault([lost]), {"key": "b"})
    new = MasterKey(key_id="k2", key=os.urandom(32))
    report = Vault([new, *RING]).rewrap_all(db)
    assert report.rewrapped == 1
    assert len(report.problems) == 1 and "'lost', which is not in HUB_SECRET_KEYS" in report.problems[0]


def test_a_nonce_never_repeats_over_100000_encryptions() -> None:
    from app.vault import crypto

    key = crypto.new_data_key()
    nonces = {crypto.seal(key, b"x", b"ctx")[: crypto.NONCE_BYTES] for _ in range(100_000)}
    assert len(nonces) == 100_000
