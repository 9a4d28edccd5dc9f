"""The kinds of credential and the fields a person fills in for each: the built-in kinds are fixed here, a
component's own kind ("fields") takes its fields from the component's descriptor (credentials.fields).

Which values may be shown again after saving is decided here too: only what names things (a host, a user name,
a header name) and choices; everything else is write-only and shown as a mask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.components.descriptor import FieldDef
from runtime.steps.credentials import NOT_SECRET


def _field(name: str, label: str, kind: str = "text", **extra: Any) -> FieldDef:
    view = {"text": "TextFieldView", "password": "PasswordFieldView", "textarea": "TextAreaView"}[kind]
    return FieldDef(name=name, label=label, view_class=view, kind=kind, **extra)


@dataclass(frozen=True)
class CredentialType:
    kind: str
    label: str
    fields: tuple[FieldDef, ...]
    entered_by_hand: bool = True  # OAuth2 authorization-code credentials are made by "Connect"


BUILTIN_TYPES: dict[str, CredentialType] = {
    t.kind: t
    for t in (
        CredentialType(
            "api_key",
            "API key",
            (
                _field("key", "API key", "password", required=True),
                _field(
                    "header", "Header", placeholder="X-API-Key", note="The HTTP header that carries the key."
                ),
            ),
        ),
        CredentialType(
            "basic",
            "Basic auth",
            (
                _field("username", "User name", required=True),
                _field("password", "Password", "password", required=True),
            ),
        ),
        CredentialType("bearer", "Bearer token", (_field("token", "Token", "password", required=True),)),
        CredentialType(
            "oauth2_client",
            "OAuth2 client credentials",
            (
                _field(
                    "token_url",
                    "Token URL",
                    required=True,
                    placeholder="https://auth.example.com/oauth/token",
                ),
                _field("client_id", "Client ID", required=True),
                _field("client_secret", "Client secret", "password", required=True),
                _field("scope", "Scopes", placeholder="read write", note="Separated by spaces."),
                _field(
                    "audience", "Audience", note="Only for providers that ask for one (Auth0, for example)."
                ),
            ),
        ),
        CredentialType("oauth2_code", "OAuth2 connection", (), entered_by_hand=False),
        CredentialType(
            "registry",
            "Container registry",
            (
                _field(
                    "registry",
                    "Registry",
                    required=True,
                    placeholder="registry.example.com:5000",
                    note="Host (and port) of the registry whose component images this login pulls.",
                ),
                _field("username", "User name", required=True),
                _field("password", "Password or token", "password", required=True),
            ),
        ),
    )
}
FIELDS_LABEL = "Component fields"
# Names that are never secrets although not in the runtime's list (they configure, they do not prove).
SHOWN_NAMES = NOT_SECRET | {
    "token_url",
    "client_id",
    "audience",
    "security",
    "url_base",
    "region",
    "registry",
}


def shown_again(field: FieldDef) -> bool:
    """Whether a saved value of this field may be shown to a person again (never for a password field)."""
    if field.kind == "password":
        return False
    return field.kind in ("select", "checkbox") or field.name.lower() in SHOWN_NAMES


def kind_label(kind: str) -> str:
    found = BUILTIN_TYPES.get(kind)
    return found.label if found else FIELDS_LABEL
