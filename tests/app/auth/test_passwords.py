from __future__ import annotations

from app.auth.passwords import hash_password, password_problem, verify_password


def test_hash_verifies_and_is_salted() -> None:
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first != second
    assert first.startswith("scrypt$")
    assert verify_password("correct horse battery", first)
    assert not verify_password("correct horse batterz", first)


def test_unknown_user_and_garbage_hash_never_verify() -> None:
    assert not verify_password("anything at all", None)
    assert not verify_password("anything at all", "md5$abc")
    assert not verify_password("anything at all", "scrypt$x$y$z$%%%$%%%")


def test_password_rules() -> None:
    assert password_problem("short") == "Use at least 10 characters."
    assert password_problem(" padded password ") is not None
    assert password_problem("long enough password") is None
