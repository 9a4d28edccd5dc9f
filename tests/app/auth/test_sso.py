"""Single sign-on against a real OpenID provider: the ID token checked (signature, issuer, audience, nonce), people
matched by subject, then by a verified e-mail (linking the account), new accounts only when allowed; refusals
say why."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app.auth import sessions
from app.auth.sso import SingleSignOn, SsoConfig, SsoError
from app.services import accounts
from app.storage.models import User
from app.storage.scoping import system_session
from tests.conftest import OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_PLACEHOLDER_REDIRECT
from tests.oidc_server import OidcServer, authorize_without_browser

BROWSER = "the browser's binding cookie"


def sso(db, redis, op: OidcServer, **overrides) -> SingleSignOn:
    config = SsoConfig(
        issuer=op.issuer,
        client_id=OIDC_CLIENT_ID,
        client_secret=OIDC_CLIENT_SECRET,
        scopes=("openid", "email", "profile"),
        redirect_uri=OIDC_PLACEHOLDER_REDIRECT,
        create_users=False,
        session_days=1,
    )
    return SingleSignOn(db, redis, SsoConfig(**{**config.__dict__, **overrides}))


def sign_in(single: SingleSignOn, login: str) -> str:
    back = parse_qs(urlsplit(authorize_without_browser(single.begin(BROWSER), login)).query)
    return single.finish(state=back["state"][0], code=back["code"][0], binding=BROWSER)


def test_a_member_is_matched_by_verified_email_then_by_subject(db, redis, oidc_server) -> None:
    email = f"dana-{uuid.uuid4().hex[:6]}@example.com"
    user = accounts.create_user(db, email, "a long password!!")
    single = sso(db, redis, oidc_server)
    token = sign_in(single, email)
    info = sessions.resolve(db, token)
    assert info is not None and info.user_id == user.id
    with system_session(db.sessions) as session:
        linked = session.get(User, user.id)
        assert (linked.oidc_issuer, linked.oidc_subject) == (oidc_server.issuer, email)
        linked.email = f"renamed-{email}"  # the e-mail changes here; the subject still finds the account
    assert sessions.resolve(db, sign_in(single, email)).user_id == user.id


def test_a_stranger_is_refused_unless_accounts_may_be_created(db, redis, oidc_server) -> None:
    login = f"erin-{uuid.uuid4().hex[:6]}"
    with pytest.raises(SsoError, match=f"no account here for {login}@example.com; ask an administrator"):
        sign_in(sso(db, redis, oidc_server), login)
    token = sign_in(sso(db, redis, oidc_server, create_users=True), login)
    info = sessions.resolve(db, token)
    assert info is not None and info.email == f"{login}@example.com" and info.tenants == []
    with system_session(db.sessions) as session:
        created = session.scalar(sa.select(User).where(User.email == f"{login}@example.com"))
        assert created.password_hash is None and created.oidc_subject == login


def test_a_state_works_once_and_a_sign_in_for_another_client_is_refused(db, redis, oidc_server) -> None:
    email = f"finn-{uuid.uuid4().hex[:6]}@example.com"
    accounts.create_user(db, email, "a long password!!")
    single = sso(db, redis, oidc_server)
    back = parse_qs(urlsplit(authorize_without_browser(single.begin(BROWSER), email)).query)
    single.finish(state=back["state"][0], code=back["code"][0], binding=BROWSER)
    with pytest.raises(SsoError, match="expired or was already used"):
        single.finish(state=back["state"][0], code=back["code"][0], binding=BROWSER)
    with pytest.raises(SsoError, match="expired or was already used"):
        single.finish(state="made-up", code="x", binding=BROWSER)
    # Login CSRF: someone's callback link (their code and state) opened in another browser logs nobody in.
    back = parse_qs(urlsplit(authorize_without_browser(single.begin("attacker's browser"), email)).query)
    with pytest.raises(SsoError, match="started in another browser"):
        single.finish(state=back["state"][0], code=back["code"][0], binding=BROWSER)
    # A code issued to hub-test, brought to a hub configured as another client, is not accepted.
    other = sso(db, redis, oidc_server, client_id="someone-else")
    back = parse_qs(urlsplit(authorize_without_browser(single.begin(BROWSER), email)).query)
    with pytest.raises(SsoError, match="did not confirm the sign-in"):
        other.finish(state=back["state"][0], code=back["code"][0], binding=BROWSER)


def test_a_disabled_account_cannot_sign_in(db, redis, oidc_server) -> None:
    email = f"gus-{uuid.uuid4().hex[:6]}@example.com"
    user = accounts.create_user(db, email, "a long password!!")
    with system_session(db.sessions) as session:
        session.get(User, user.id).is_active = False
    with pytest.raises(SsoError, match="disabled"):
        sign_in(sso(db, redis, oidc_server), email)
