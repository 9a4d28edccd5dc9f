"""Credentials: the tenant's vault of secrets for connected systems (list, create, edit write-only, delete,
Connect and Reconnect for OAuth2), and the OAuth2 clients admins register for Connect."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import reflex as rx

from app.api import notices
from app.api.oauth import BINDING_COOKIE
from app.components.config_form import SELECT_STYLE
from app.components.credential_form import credential_field, credential_fields
from app.context import HubContext, get_context
from app.errors import HubError
from app.executors import verification_runners
from app.oauth import clients as oauth_clients
from app.oauth import connect, provider
from app.oauth.connect import CALLBACK_PATH
from app.services import catalog, verification
from app.services import credentials as service
from app.state.auth import EDIT_ROLES, AuthState
from app.templates.layout import page_layout

ROUTE = "/credentials"
ADMIN_ROLES = ("owner", "admin")
KIND_CHOICES = [
    ["api_key", "API key"],
    ["basic", "Basic auth"],
    ["bearer", "Bearer token"],
    ["oauth2_client", "OAuth2 client credentials"],
    ["fields", "A component's own fields"],
    ["oauth2_code", "OAuth2 connection (Connect)"],
    ["registry", "Container registry (pulls component images)"],
]
CLIENT_FIELDS = ("name", "client_id", "client_secret", "authorize_url", "token_url", "userinfo_url", "scopes")


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


class CredentialsState(AuthState):
    # Where the provider's callback checks that Connect comes back to the browser that started it.
    oauth_binding: str = rx.Cookie("", name=BINDING_COOKIE, path="/", max_age=900, same_site="lax")

    rows: list[dict[str, str]] = []
    clients: list[dict[str, str]] = []
    components: list[list[str]] = []  # [name, title, "oauth" or ""]
    notice: str = ""
    error: str = ""

    # The credential form: "" (closed), "new" or "edit".
    mode: str = ""
    editing_id: str = ""
    kind: str = "api_key"
    component: str = ""
    name: str = ""
    personal: bool = False
    client_choice: str = ""
    fields: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    form_key: str = "0"

    # The OAuth2 client form (admins).
    client_mode: str = ""
    client_editing: str = ""
    client_values: dict[str, str] = {}
    client_pkce: bool = True
    client_error: str = ""
    client_key: str = "0"

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @rx.var
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @rx.var
    def connecting(self) -> bool:
        return self.kind == "oauth2_code"

    # -- plumbing --------------------------------------------------------------------------------------------
    def _user(self) -> uuid.UUID | None:
        return uuid.UUID(self.user_id) if self.user_id else None

    def _tenant(self) -> uuid.UUID:
        return uuid.UUID(self.tenant_id)

    def _reload(self) -> None:
        ctx = get_context()
        self.rows = [
            {
                "id": str(c.id),
                "name": c.name,
                "kind": c.kind,
                "kind_label": c.kind_label,
                "component": c.component_name or "",
                "scope": "Personal" if c.personal else "Shared",
                "status": c.status,
                "reason": c.status_reason or "",
                "account": c.account,
                "last_used": _when(c.last_used_at),
                "used_by": ", ".join(u.flow_name + (" (active)" if u.active else "") for u in c.used_by),
            }
            for c in service.list_credentials(ctx.db, self._tenant(), self._user())
        ]
        self.clients = [
            {"id": str(c.id), "name": c.name, "client_id": c.client_id, "token_url": c.token_url,
             "scopes": " ".join(c.scopes), "connections": str(c.connections), "component": c.component_name or ""}
            for c in oauth_clients.list_clients(ctx.db, self._tenant(), self._user())
        ]  # fmt: skip
        self.components = [
            [name, title, "oauth" if oauth else ""]
            for name, title, oauth in catalog.credential_components(ctx.db, self._tenant())
        ]

    def _act(self, action: Callable[[HubContext], str | None]) -> Any:
        """Run a change as the user (the service checks the role as it is now), reload, and say what happened."""
        self.error, self.notice = "", ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return None
        try:
            self.notice = action(get_context()) or ""
        except service.CredentialFieldsError as exc:
            self.errors = exc.errors
            self.error = str(exc)
            return None
        except HubError as exc:
            self.error = str(exc)
            return None
        self._reload()
        return None

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            return redirect
        self.mode, self.client_mode, self.errors, self.error, self.notice = "", "", {}, "", ""
        self.rows, self.clients = [], []
        if self.role not in EDIT_ROLES:
            self.error = f"Your role here ({self.role or 'none'}) cannot see credentials; ask an admin."
            return None
        query = self.router.url.query_parameters
        if query.get("connect_error"):
            self.error = (
                notices.take(get_context().redis, query["connect_error"]) or "Connect did not complete."
            )
        try:
            self._reload()
        except HubError as exc:
            self.error = str(exc)
            return None
        if query.get("connected"):
            name = next((r["name"] for r in self.rows if r["id"] == query["connected"]), "")
            account = next((r["account"] for r in self.rows if r["id"] == query["connected"]), "")
            if name:
                self.notice = f"Connected {name!r}" + (f" as {account}." if account else ".")
        return None

    # -- the credential form ---------------------------------------------------------------------------------
    def _set_fields(self, shown: dict[str, str] | None = None) -> None:
        self.errors = {}
        self.form_key = secrets.token_hex(4)  # a new form: the inputs take their new default values
        if self.kind == "oauth2_code" or (self.kind == "fields" and not self.component):
            self.fields = []
            return
        try:
            found = service.form_fields(
                get_context().components_for(self._tenant()), self.kind, self.component
            )
        except HubError as exc:
            self.fields, self.error = [], str(exc)
            return
        self.fields = [credential_field(f, (shown or {}).get(f.name, "")) for f in found]

    @rx.event
    def new(self) -> None:
        self.mode, self.editing_id, self.kind, self.component, self.name = "new", "", "api_key", "", ""
        self.personal, self.error, self.notice = False, "", ""
        self.client_choice = self.clients[0]["id"] if self.clients else ""
        self._set_fields()

    @rx.event
    def choose_kind(self, kind: str) -> None:
        if kind == self.kind:
            return  # a new form would drop what was typed
        self.kind, self.error = kind, ""
        self._set_fields()

    @rx.event
    def choose_component(self, name: str) -> None:
        self.component, self.error = name, ""
        self._set_fields()

    @rx.event
    def choose_client(self, client_id: str) -> None:
        self.client_choice = client_id

    @rx.event
    def set_personal(self, value: bool) -> None:
        self.personal = value

    def _view_of(self, credential_id: str) -> service.CredentialView | None:
        """The credential as the user may see it now; None (with the reason shown) when they may not."""
        self.error, self.notice = "", ""
        ctx = get_context()
        try:
            return service.get_credential(ctx.db, ctx.vault, ctx.components_for(self._tenant()), self._tenant(),
                                          self._user(), uuid.UUID(credential_id))  # fmt: skip
        except (HubError, ValueError) as exc:
            self.error = str(exc)
            return None

    @rx.event
    def edit(self, credential_id: str) -> None:
        view = self._view_of(credential_id)
        if view is None:
            return
        self.mode, self.editing_id, self.kind = "edit", credential_id, view.kind
        self.component, self.name, self.personal = view.component_name or "", view.name, view.personal
        self._set_fields(view.values)

    @rx.event
    def close(self) -> None:
        self.mode, self.errors = "", {}

    def _save(self, form: dict[str, Any]) -> None:
        values = {
            f["name"]: form.get(f["name"], False if f["kind"] == "checkbox" else "") for f in self.fields
        }
        name = str(form.get("__name", ""))
        self.errors = {}
        tenant, user = self._tenant(), self._user()
        if self.mode == "edit":
            credential_id = uuid.UUID(self.editing_id)

            def change(ctx: HubContext) -> str:
                view = service.update_credential(ctx.db, ctx.vault, ctx.components_for(tenant), tenant, user,
                                                 credential_id, name=name, values=values, changes=ctx.bus)  # fmt: skip
                return f"Saved {view.name!r}."
        else:

            def change(ctx: HubContext) -> str:
                view = service.create_credential(ctx.db, ctx.vault, ctx.components_for(tenant), tenant, user,
                                                 name=name, kind=self.kind, values=values,
                                                 component_name=self.component or None, personal=self.personal)  # fmt: skip
                return f"Saved {view.name!r}; its values are stored encrypted and will not be shown again."

        self._act(change)
        if not self.error:
            self.mode = ""

    @rx.event
    def delete(self, credential_id: str) -> None:
        tenant, user = self._tenant(), self._user()

        def remove(ctx: HubContext) -> str:
            return f"Deleted {service.delete_credential(ctx.db, tenant, user, uuid.UUID(credential_id), ctx.bus)!r}."

        self._act(remove)
        if not self.error and self.editing_id == credential_id:
            self.mode = ""

    @rx.event
    def verify(self, credential_id: str) -> None:
        tenant, user = self._tenant(), self._user()
        outcome: list[verification.Verification] = []

        def check(ctx: HubContext) -> str:
            runners = verification_runners(
                ctx.settings
            )  # for an imported component's own check; gone after it
            try:
                found = verification.verify_credential(ctx.db, ctx.vault, ctx.components_for(tenant), ctx.tokens,
                                                       ctx.egress, tenant, user, uuid.UUID(credential_id),
                                                       runners=runners)  # fmt: skip
            finally:
                for runner in runners.values():
                    runner.close()
            outcome.append(found)
            return found.message

        self._act(check)
        if outcome and outcome[0].outcome == "failed":
            self.notice, self.error = "", f"Verify failed: {outcome[0].message}"
        elif outcome:
            prefix = "Verified: " if outcome[0].outcome == "ok" else "Not verified: "
            self.notice = prefix + outcome[0].message

    # -- Connect ------------------------------------------------------------------------------------------------
    def _connect(self, *, client_id: str, name: str = "", reconnect: str = "") -> Any:
        self.error, self.notice = "", ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return None
        if not client_id:
            self.error = "Choose an OAuth2 client (an admin registers them below)."
            return None
        ctx = get_context()
        self.oauth_binding = secrets.token_urlsafe(24)
        try:
            url = connect.start_connect(
                ctx.db, ctx.vault, ctx.redis, self._tenant(), self._user(), client_id=uuid.UUID(client_id),
                redirect_uri=ctx.settings.effective_public_base_url.rstrip("/") + CALLBACK_PATH, name=name,
                personal=self.personal, reconnect=uuid.UUID(reconnect) if reconnect else None,
                binding=self.oauth_binding,
            )  # fmt: skip
        except (HubError, provider.ProviderUnreachable) as exc:
            self.error = str(exc)
            return None
        return rx.redirect(url, is_external=False)

    @rx.event
    def submit(self, form: dict[str, Any]):
        if self.kind == "oauth2_code":
            return self._connect(client_id=self.client_choice, name=str(form.get("__name", "")))
        return self._save(form)

    @rx.event
    def reconnect(self, credential_id: str):
        view = self._view_of(credential_id)
        if view is None:
            return None
        return self._connect(client_id=view.oauth_client, reconnect=credential_id)

    # -- OAuth2 clients (admins) ---------------------------------------------------------------------------------
    @rx.event
    def new_client(self) -> None:
        self.client_mode, self.client_editing, self.client_error = "new", "", ""
        self.client_values, self.client_pkce = {k: "" for k in CLIENT_FIELDS}, True
        self.client_key = secrets.token_hex(4)

    @rx.event
    def edit_client(self, client_id: str) -> None:
        found = next((c for c in oauth_clients.list_clients(get_context().db, self._tenant(), self._user())
                      if str(c.id) == client_id), None)  # fmt: skip
        if found is None:
            self.error = oauth_clients.NOT_FOUND
            return
        self.client_mode, self.client_editing, self.client_error = "edit", client_id, ""
        self.client_values = {
            "name": found.name, "client_id": found.client_id, "client_secret": "",
            "authorize_url": found.authorize_url, "token_url": found.token_url, "userinfo_url": found.userinfo_url,
            "scopes": " ".join(found.scopes), "component_name": found.component_name or "",
        }  # fmt: skip
        self.client_pkce = found.pkce
        self.client_key = secrets.token_hex(4)

    @rx.event
    def close_client(self) -> None:
        self.client_mode = ""

    @rx.event
    def set_client_pkce(self, value: bool) -> None:
        self.client_pkce = value

    @rx.event
    def fill_from_component(self, name: str) -> None:
        try:
            found = oauth_clients.descriptor_defaults(get_context().components_for(self._tenant()), name)
        except HubError as exc:
            self.client_error = str(exc)
            return
        self.client_values = {**self.client_values, **{k: " ".join(v) if k == "scopes" else str(v)
                                                       for k, v in found.items() if k != "extra_params"}}  # fmt: skip
        self.client_key = secrets.token_hex(4)

    @rx.event
    def discover(self, form: dict[str, Any]) -> None:
        self.client_error = ""
        if self.require_login() is not None:
            self.client_error = "Your session has ended; log in again."
            return
        ctx = get_context()
        try:
            found = oauth_clients.discovered_settings(ctx.db, self._tenant(), self._user(),
                                                      str(form.get("issuer", "")), ctx.egress)  # fmt: skip
        except HubError as exc:
            self.client_error = str(exc)
            return
        scopes = self.client_values.get("scopes") or "openid email profile"
        self.client_values = {**self.client_values, **found, "scopes": scopes}
        self.client_key = secrets.token_hex(4)

    @rx.event
    def save_client(self, form: dict[str, Any]) -> None:
        settings = oauth_clients.ClientSettings(
            name=str(form.get("name", "")), client_id=str(form.get("client_id", "")),
            client_secret=str(form.get("client_secret", "")), authorize_url=str(form.get("authorize_url", "")),
            token_url=str(form.get("token_url", "")), userinfo_url=str(form.get("userinfo_url", "")),
            scopes=tuple(str(form.get("scopes", "")).replace(",", " ").split()), pkce=self.client_pkce,
            component_name=self.client_values.get("component_name") or None,
        )  # fmt: skip
        tenant, user, editing = self._tenant(), self._user(), self.client_editing

        def change(ctx: HubContext) -> str:
            if editing:
                view = oauth_clients.update_client(
                    ctx.db, ctx.vault, tenant, user, uuid.UUID(editing), settings
                )
            else:
                view = oauth_clients.register_client(ctx.db, ctx.vault, tenant, user, settings)
            return f"OAuth2 client {view.name!r} saved."

        self._act(change)
        self.client_error = self.error
        if not self.error:
            self.client_mode = ""

    @rx.event
    def delete_client(self, client_id: str) -> None:
        tenant, user = self._tenant(), self._user()
        self._act(
            lambda ctx: (
                f"Deleted {oauth_clients.delete_client(ctx.db, tenant, user, uuid.UUID(client_id))!r}."
            )
        )


# -- the page ---------------------------------------------------------------------------------------------------
S = CredentialsState


def _status(row: Any) -> rx.Component:
    return rx.cond(
        row["status"] == "ok",
        rx.badge("ok", color_scheme="green", variant="soft"),
        rx.tooltip(rx.badge(row["status"], color_scheme="red", data_testid="credential-status-error"),
                   content=row["reason"]),
    )  # fmt: skip


def _row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["name"], weight="medium"), data_testid="credential-name"),
        rx.table.cell(rx.vstack(rx.text(row["kind_label"], size="2"),
                                rx.cond(row["component"] != "", rx.code(row["component"], size="1")), spacing="1")),
        rx.table.cell(row["scope"]),
        rx.table.cell(rx.vstack(_status(row), rx.cond(row["reason"] != "", rx.text(row["reason"], size="1",
                      color_scheme="red", data_testid="credential-reason")), spacing="1")),
        rx.table.cell(rx.text(row["account"], size="2", data_testid="credential-account")),
        rx.table.cell(row["last_used"]),
        rx.table.cell(rx.text(row["used_by"], size="1")),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    row["kind"] == "oauth2_code",
                    rx.button("Reconnect", size="1", variant="soft", on_click=S.reconnect(row["id"]),
                              data_testid="credential-reconnect"),
                    rx.button("Edit", size="1", variant="soft", on_click=S.edit(row["id"]), data_testid="credential-edit"),
                ),
                rx.button("Verify", size="1", variant="soft", color_scheme="gray", on_click=S.verify(row["id"]),
                          data_testid="credential-verify"),
                rx.alert_dialog.root(
                    rx.alert_dialog.trigger(rx.button("Delete", size="1", variant="soft", color_scheme="red",
                                                      data_testid="credential-delete")),
                    rx.alert_dialog.content(
                        rx.alert_dialog.title("Delete " + row["name"].to(str) + "?"),
                        rx.alert_dialog.description("Flows that use it will fail until they get another one."),
                        rx.hstack(
                            rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                            rx.alert_dialog.action(rx.button("Delete", color_scheme="red", on_click=S.delete(row["id"]),
                                                             data_testid="confirm-delete")),
                            justify="end", spacing="3",
                        ),
                    ),
                ),
                spacing="2",
            )
        ),
        data_testid="credential-row",
    )  # fmt: skip


def _list() -> rx.Component:
    return rx.cond(
        S.rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                "Name", "Type", "Shared", "Status", "Account", "Last used", "Used by", "")])),
            rx.table.body(rx.foreach(S.rows, _row)),
            width="100%",
        ),
        rx.text("No credentials yet.", color_scheme="gray", data_testid="no-credentials"),
    )  # fmt: skip


def _labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control, spacing="1", width="100%")


def _kind_picker() -> rx.Component:
    return rx.cond(
        S.mode == "new",
        rx.vstack(
            _labelled("Type", rx.el.select(*[rx.el.option(label, value=kind) for kind, label in KIND_CHOICES],
                                           value=S.kind, on_change=S.choose_kind, style=SELECT_STYLE,
                                           data_testid="credential-kind")),
            rx.cond(S.kind == "fields", _labelled("Component", rx.el.select(
                rx.el.option("—", value=""),
                rx.foreach(S.components, lambda c: rx.el.option(c[1], value=c[0])),
                value=S.component, on_change=S.choose_component, style=SELECT_STYLE, data_testid="credential-component"))),
            rx.cond(S.kind == "oauth2_code", _labelled("OAuth2 client", rx.el.select(
                rx.foreach(S.clients, lambda c: rx.el.option(c["name"], value=c["id"])),
                value=S.client_choice, on_change=S.choose_client, style=SELECT_STYLE, data_testid="credential-client"))),
            rx.checkbox("Personal (only I can see and use it)", checked=S.personal, on_change=S.set_personal,
                        data_testid="credential-personal"),
            spacing="3", width="100%",
        ),
        rx.text(S.kind, size="1", color_scheme="gray"),
    )  # fmt: skip


def _editor() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(rx.cond(S.mode == "new", "New credential", "Edit " + S.name), size="4"),
            _kind_picker(),
            rx.form(
                rx.vstack(
                    _labelled("Name", rx.input(name="__name", default_value=S.name, width="100%",
                                               data_testid="credential-name-input")),
                    rx.cond(S.errors.contains("__name"), rx.text(S.errors["__name"], size="1", color_scheme="red",
                                                                 data_testid="field-error")),
                    credential_fields(S.fields, S.errors),
                    rx.hstack(
                        rx.cond(S.connecting,
                                rx.button("Connect", type="submit", data_testid="credential-connect"),
                                rx.button("Save", type="submit", data_testid="credential-save")),
                        rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=S.close),
                        spacing="3",
                    ),
                    spacing="3", width="100%",
                ),
                key=S.form_key,
                on_submit=S.submit,
                reset_on_submit=False,
                width="100%",
            ),
            rx.cond(S.mode == "edit", rx.text("Fields showing 'saved' keep their value unless you type a new one.",
                                              size="1", color_scheme="gray")),
            spacing="3", width="100%",
        ),
        width="100%", max_width="640px", data_testid="credential-editor",
    )  # fmt: skip


def _client_row(client: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(client["name"]), rx.table.cell(rx.code(client["client_id"], size="1")),
        rx.table.cell(rx.text(client["token_url"], size="1")), rx.table.cell(client["scopes"]),
        rx.table.cell(client["connections"]),
        rx.table.cell(rx.cond(S.is_admin, rx.hstack(
            rx.button("Edit", size="1", variant="soft", on_click=S.edit_client(client["id"])),
            rx.button("Delete", size="1", variant="soft", color_scheme="red", on_click=S.delete_client(client["id"])),
            spacing="2"))),
        data_testid="oauth-client-row",
    )  # fmt: skip


def _client_input(label: str, name: str, kind: str = "text") -> rx.Component:
    return _labelled(label, rx.input(name=name, type=kind, default_value=S.client_values[name], width="100%",
                                     placeholder=rx.cond((name == "client_secret") & (S.client_mode == "edit"),
                                                         "saved — type to replace", ""),
                                     auto_complete="new-password" if kind == "password" else "off",
                                     data_testid=f"client-{name}"))  # fmt: skip


def _client_editor() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(rx.cond(S.client_mode == "new", "Register an OAuth2 client", "Edit OAuth2 client"), size="4"),
            rx.form(rx.hstack(rx.input(name="issuer", placeholder="https://accounts.example.com (issuer)",
                                       width="100%", data_testid="client-issuer"),
                              rx.button("Fill from issuer", type="submit", variant="soft", data_testid="client-discover"),
                              width="100%"),
                    on_submit=S.discover, reset_on_submit=False, width="100%"),
            rx.cond(S.components.length() > 0, rx.el.select(
                rx.el.option("Fill from a component's descriptor…", value=""),
                rx.foreach(S.components, lambda c: rx.cond(c[2] == "oauth", rx.el.option(c[1], value=c[0]))),
                on_change=S.fill_from_component, style=SELECT_STYLE, data_testid="client-from-component")),
            rx.form(
                rx.vstack(
                    _client_input("Name", "name"), _client_input("Client ID", "client_id"),
                    _client_input("Client secret", "client_secret", "password"),
                    _client_input("Authorization URL", "authorize_url"), _client_input("Token URL", "token_url"),
                    _client_input("Userinfo URL (optional: names the connected account)", "userinfo_url"),
                    _client_input("Scopes (separated by spaces)", "scopes"),
                    rx.checkbox("Use PKCE (S256)", checked=S.client_pkce, on_change=S.set_client_pkce),
                    rx.text("Redirect URI to register with the provider: your hub's address + " + CALLBACK_PATH,
                            size="1", color_scheme="gray"),
                    rx.cond(S.client_error != "", rx.text(S.client_error, color_scheme="red", size="2",
                                                          data_testid="client-error")),
                    rx.hstack(rx.button("Save client", type="submit", data_testid="client-save"),
                              rx.button("Cancel", type="button", variant="soft", color_scheme="gray",
                                        on_click=S.close_client), spacing="3"),
                    spacing="3", width="100%",
                ),
                key=S.client_key, on_submit=S.save_client, reset_on_submit=False, width="100%",
            ),
            spacing="3", width="100%",
        ),
        width="100%", max_width="640px",
    )  # fmt: skip


def _clients() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.heading("OAuth2 clients", size="5"), rx.spacer(),
                  rx.cond(S.is_admin, rx.button("Register client", variant="soft", on_click=S.new_client,
                                                data_testid="client-new")), width="100%"),
        rx.text("The applications registered with providers that Connect signs in with.", size="2",
                color_scheme="gray"),
        rx.cond(S.clients.length() > 0, rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in (
                "Name", "Client ID", "Token URL", "Scopes", "Connections", "")])),
            rx.table.body(rx.foreach(S.clients, _client_row)), width="100%")),
        rx.cond(S.client_mode != "", _client_editor()),
        spacing="2", width="100%", padding_top="24px",
    )  # fmt: skip


def credentials_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Credentials",
        "Secrets for the systems your flows connect to, encrypted at rest and never shown again after saving.",
        rx.cond(S.notice != "", rx.callout(S.notice, icon="check", color_scheme="green", width="100%",
                                           data_testid="credentials-notice")),
        rx.cond(S.error != "", rx.callout(S.error, icon="triangle_alert", color_scheme="red", width="100%",
                                          data_testid="credentials-error")),
        rx.cond(
            S.can_edit,
            rx.vstack(
                rx.hstack(rx.spacer(), rx.button("New credential", on_click=S.new, data_testid="credential-new"),
                          width="100%"),
                rx.cond(S.mode != "", _editor()),
                _list(),
                _clients(),
                spacing="3", width="100%",
            ),
        ),
    )  # fmt: skip
