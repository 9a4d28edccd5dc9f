"""Verify on the Credentials page: does this credential work? Runs the component's verify-credentials hook, or
for OAuth2 gets a valid token (renewed if due) and asks the provider who it belongs to. The outcome is kept on
the credential (status and reason), and what is shown is masked like a step's error."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests

from app.oauth import provider
from app.oauth.tokens import TokenKeeper, TokenRefreshBusy, TokenRefreshFailed, client_config, needs_renewal
from app.services.credentials import visible_credential
from app.services.members import EDITORS, require_role
from app.storage.db import Database
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from app.storage.types import utcnow
from app.vault.store import Vault
from runtime.components.spec import ComponentResolver
from runtime.executors.process import ProcessExecutor
from runtime.net.egress import EgressPolicy
from runtime.steps.context import StepContext
from runtime.steps.credentials import redact, secret_strings


@dataclass(frozen=True)
class Verification:
    outcome: Literal["ok", "failed", "unchecked"]
    message: str


class _Failed(Exception):
    """The credential does not work; `lasting` False: it may work later (nothing is recorded then)."""

    def __init__(self, message: str, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


def verify_credential(
    db: Database,
    vault: Vault,
    components: ComponentResolver,
    tokens: TokenKeeper,
    egress: EgressPolicy,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    credential_id: uuid.UUID,
    runners: Mapping[str, ProcessExecutor] | None = None,
) -> Verification:
    """`runners`: the executors (by name: process, docker) where an imported component's own verifyCredentials
    runs: its code in a sandboxed runner, or its image in a container."""
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "verify credentials")
        credential = visible_credential(session, user_id, credential_id)
        kind, component_name, name = credential.kind, credential.component_name, credential.name
        values = vault.reveal(session, credential)
        try:
            config = client_config(session, vault, credential, values) if kind == "oauth2_code" else None
        except TokenRefreshFailed as exc:  # its OAuth2 client was deleted
            return Verification("failed", str(exc))
    secrets = secret_strings(values)
    try:
        if kind in ("oauth2_code", "oauth2_client"):
            message = _verify_token(tokens, tenant_id, credential_id, kind, values, config)
        elif kind == "fields":
            message = _verify_with_component(components, component_name, values, egress, tenant_id, runners)
        else:
            return Verification(
                "unchecked",
                f"{name!r} holds no address to try it against; it is checked when a step uses it.",
            )
    except _Failed as exc:
        reason = redact(str(exc), secrets)
        if exc.lasting:
            _record(db, tenant_id, credential_id, ("error", f"Verify failed: {reason}"))
        return Verification("failed", reason)
    if message is None:
        return Verification("unchecked", _no_hook(components, component_name))
    _record(db, tenant_id, credential_id, ("ok", None))
    return Verification("ok", redact(message, secrets))


def _verify_token(
    tokens: TokenKeeper,
    tenant_id: uuid.UUID,
    credential_id: uuid.UUID,
    kind: str,
    values: dict[str, Any],
    config: provider.ClientConfig | None,
) -> str:
    try:
        if needs_renewal(kind, values):
            values = tokens.fresh(tenant_id, credential_id)
    except TokenRefreshFailed as exc:
        raise _Failed(str(exc)) from None
    except TokenRefreshBusy as exc:
        raise _Failed(str(exc), lasting=False) from None
    if config is None or not config.userinfo_url:
        return "the provider issued a valid access token"
    try:
        provider.check_url(config.userinfo_url, tokens.egress)
        answer = requests.get(
            config.userinfo_url,
            headers={"Authorization": f"Bearer {values['access_token']}"},
            timeout=provider.HTTP_TIMEOUT_S,
        )
    except provider.ProviderRefused as exc:
        raise _Failed(str(exc)) from None
    except (requests.RequestException, provider.ProviderUnreachable) as exc:
        raise _Failed(
            f"the provider's userinfo endpoint cannot be reached ({type(exc).__name__})", False
        ) from None
    if answer.status_code in (401, 403):
        raise _Failed(f"the provider refused the access token ({answer.status_code}); reconnect")
    if not answer.ok:
        raise _Failed(f"the provider's userinfo endpoint answered {answer.status_code}", lasting=False)
    try:
        claims = answer.json()
    except ValueError:
        claims = {}
    claims = claims if isinstance(claims, dict) else {}
    who = next((str(claims[k]) for k in ("email", "preferred_username", "name", "sub") if claims.get(k)), "")
    return f"the provider accepts the access token{f' of {who}' if who else ''}"


def _verify_with_component(
    components: ComponentResolver,
    component_name: str | None,
    values: dict[str, Any],
    egress: EgressPolicy,
    tenant_id: uuid.UUID,
    runners: Mapping[str, ProcessExecutor] | None,
) -> str | None:
    spec = components.get(component_name or "")
    executor = (runners or {}).get("docker" if spec is not None and spec.runtime == "docker" else "process")
    if spec is not None and spec.verify is None and spec.code and executor is not None:
        credential = {k: v for k, v in values.items() if k != "kind"}
        accepted, why = executor.verify(tenant_id.hex, spec.code, credential)
        if not accepted:
            raise _Failed(why or "the component did not accept the credential")
        return f"{spec.title} accepted the credential (its own check)"
    if spec is None or spec.verify is None:
        return None
    context = StepContext(
        tenant_id=tenant_id.hex, flow_id="", run_id="", step_id="verify", message_id="verify", attempt=1,
        credential=dict(values), egress=egress,
    )  # fmt: skip
    try:
        return spec.verify(dict(values), context)
    except Exception as exc:  # the hook's own error says what is wrong with the credential
        raise _Failed(str(exc) or type(exc).__name__) from None


def _no_hook(components: ComponentResolver, component_name: str | None) -> str:
    spec = components.get(component_name or "")
    if spec is None:
        return f"the component {component_name!r} is no longer in the catalog"
    if spec.runtime == "docker":
        return (
            f"{spec.title}'s own check (verifyCredentials) runs in the component's container, and this hub has "
            "no docker executor (HUB_EXECUTOR=docker); the credential is checked when a step uses it"
        )
    if spec.runtime != "builtin":
        return (
            f"{spec.title}'s own check (verifyCredentials) runs in the component's runner, and its code is not "
            "installed here: import the component's folder (`hub component import FOLDER`)"
        )
    return f"{spec.title} has no credential check; the credential is checked when a step uses it"


def _record(
    db: Database, tenant_id: uuid.UUID, credential_id: uuid.UUID, status: tuple[str, str | None]
) -> None:
    with tenant_session(db.sessions, tenant_id) as session:
        credential = session.get(Credential, credential_id)
        if credential is not None:
            credential.status, credential.status_reason = status
            credential.meta = {**(credential.meta or {}), "verified_at": utcnow().isoformat()}
