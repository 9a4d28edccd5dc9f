"""The credential vault: AES-256-GCM under per-tenant data keys wrapped by the master key ring.

crypto.py seals and opens bytes; store.py is where a credential's values are encrypted and decrypted.
"""
