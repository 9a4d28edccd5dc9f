"""Catalog: the components flows are built from (built-ins, global imports, this tenant's own), their
functions and configuration forms, and the import of component.json descriptors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import reflex as rx

from app.components.config_form import config_form, field_view
from app.context import get_context
from app.errors import HubError
from app.executors import container_engine
from app.services import catalog, component_images
from app.services.field_values import field_errors
from app.state.auth import AuthState
from app.storage.scoping import tenant_session
from app.templates.layout import page_layout

ROUTE = "/catalog"
UPLOAD_ID = "component-upload"
CREDENTIALS_FORM = "credentials"
IMPORT_ROLES = ("owner", "admin", "editor")


class CatalogState(AuthState):
    entries: list[dict[str, str]] = []
    search: str = ""
    kind: str = "all"
    scope: str = "all"
    selected: dict[str, str] = {}
    selected_warnings: list[str] = []
    credential_fields: list[dict[str, Any]] = []
    functions: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    valid_form: str = ""
    delete_error: str = ""
    import_name: str = ""
    import_message: str = ""
    import_warnings: list[str] = []
    import_error: str = ""
    image_reference: str = ""
    pulling: bool = False

    @rx.var
    def shown(self) -> list[dict[str, str]]:
        needle = self.search.strip().lower()
        return [
            e
            for e in self.entries
            if (not needle or needle in e["title"].lower() or needle in e["name"].lower())
            and (self.kind == "all" or e[self.kind] != "0")
            and (self.scope == "all" or e["scope"] == self.scope)
        ]

    def _tenant(self) -> uuid.UUID:
        return uuid.UUID(self.tenant_id)

    def _reload(self) -> None:
        self.entries = [
            {
                "id": str(e.id),
                "name": e.name,
                "version": e.version,
                "title": e.title,
                "description": e.description[:220],
                "scope": e.scope,
                "runtime": e.runtime,
                "triggers": str(e.triggers),
                "actions": str(e.actions),
                "warnings": str(e.warnings),
                "icon": e.icon,
            }
            for e in catalog.list_components(get_context().db, self._tenant())
        ]

    @rx.event
    def load(self):
        redirect = self.require_login()
        if redirect is not None or not self.tenant_id:
            self.entries = []
            return redirect
        self._reload()
        self.selected = {}
        return None

    @rx.event
    def set_search(self, value: str) -> None:
        self.search = value

    @rx.event
    def set_kind(self, value: str | list[str]) -> None:
        self.kind = _chosen(value)

    @rx.event
    def set_scope(self, value: str | list[str]) -> None:
        self.scope = _chosen(value)

    @rx.event
    def set_import_name(self, value: str) -> None:
        self.import_name = value

    @rx.event
    def open(self, component_id: str) -> None:
        with tenant_session(get_context().db.sessions, self._tenant()) as session:
            row, descriptor, warnings = catalog.get_descriptor(session, uuid.UUID(component_id))
            scope = "global" if row.tenant_id is None else "tenant"
        self.errors, self.valid_form = {}, ""
        self.selected = {
            "id": component_id,
            "title": descriptor.title,
            "name": descriptor.name,
            "version": row.version,
            "scope": scope,
            "runtime": descriptor.runtime,
            "description": descriptor.description,
            "docs_url": descriptor.docs_url,
        }
        self.selected_warnings = warnings
        self.credential_fields = [field_view(f) for f in descriptor.credential_fields]
        self.functions = [
            {
                "id": f.id,
                "kind": f.kind if f.trigger_type is None else f"{f.kind} ({f.trigger_type})",
                "title": f.title,
                "description": f.description,
                "deprecated": f.deprecated,
                "fields": [field_view(x) for x in f.fields],
            }
            for f in descriptor.functions
        ]

    @rx.event
    def close(self) -> None:
        self.selected = {}
        self.delete_error = ""

    @rx.event
    def delete_selected(self):
        redirect = self.require_login()  # the role as it is now, not as it was when the page loaded
        if redirect is not None:
            return redirect
        if self.role not in IMPORT_ROLES:
            self.delete_error = f"Your role here ({self.role or 'none'}) cannot delete components."
            return None
        try:
            label = catalog.delete_component(
                get_context().db,
                self._tenant(),
                uuid.UUID(self.selected["id"]),
                user_id=uuid.UUID(self.user_id) if self.user_id else None,
            )
        except HubError as exc:
            self.delete_error = str(exc)
            return None
        self.selected, self.delete_error = {}, ""
        self._reload()
        return rx.toast.success(f"Deleted {label}.")

    @rx.event
    def check_form(self, form_data: dict[str, Any]) -> None:
        """Validate a preview form the way the designer and the credentials page validate before saving."""
        form_id = str(form_data.pop("__form", ""))
        with tenant_session(get_context().db.sessions, self._tenant()) as session:
            _, descriptor, _ = catalog.get_descriptor(session, uuid.UUID(self.selected["id"]))
        if form_id == CREDENTIALS_FORM:
            fields = descriptor.credential_fields
        else:
            fields = next((f.fields for f in descriptor.functions if f.id == form_id), [])
        problems = field_errors(fields, form_data)
        self.errors = {f"{form_id}/{name}": message for name, message in problems.items()}
        self.valid_form = "" if problems else form_id

    def _refused(self, verb: str) -> str:
        """Why this person may not import or add components now ('' if they may): the role as it is now, not
        as it was when the page loaded (a member may have been demoted since)."""
        if self.require_login() is not None:
            return "Your session has ended; log in again."
        if self.role not in IMPORT_ROLES:
            return f"Your role here ({self.role or 'none'}) cannot {verb} components; ask an editor."
        return ""

    @rx.event
    async def import_files(self, files: list[rx.UploadFile]):
        self.import_message, self.import_warnings = "", []
        self.import_error = self._refused("import")
        if self.import_error:
            return
        contents = {file.name or "component.json": await file.read() for file in files}
        if not contents:
            self.import_error = "Choose a component.json first."
            return
        name = next((n for n in contents if n.endswith("component.json")), None) or next(iter(contents))
        descriptor = contents.pop(name)
        try:
            # Metadata files come by their file name; the parser finds them from the paths the descriptor gives.
            result = catalog.import_descriptor(
                get_context().db,
                descriptor,
                name=self.import_name.strip() or catalog.name_from_file(name),
                tenant_id=self._tenant(),
                files=contents,
            )
        except HubError as exc:
            self.import_error = str(exc)
            return
        state = "was already in the catalog" if result.unchanged else "imported"
        self.import_message = f"{result.name} {result.version} {state}."
        self.import_warnings = result.warnings
        self._reload()
        yield rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    def set_image_reference(self, value: str) -> None:
        self.image_reference = value

    @rx.event(background=True)
    async def add_image(self):
        """Pull a component's image with the tenant's registry login and catalogue it (a pull takes a while:
        in the background, the page stays usable)."""
        async with self:
            self.import_message, self.import_warnings = "", []
            self.import_error = self._refused("add")
            if self.import_error:
                return
            reference, tenant = self.image_reference.strip(), self._tenant()
            name = self.import_name.strip() or None
            if not reference:
                self.import_error = "Type the image's reference, e.g. registry.example.com:5000/team/crm:1.4."
                return
            self.pulling = True
        try:
            result = await asyncio.to_thread(_add_image, reference, tenant, name)
        except HubError as exc:
            async with self:
                self.import_error, self.pulling = str(exc), False
            return
        async with self:
            state = "was already in the catalog" if result.unchanged else "added from its image"
            self.import_message = f"{result.name} {result.version} {state}."
            self.import_warnings, self.pulling, self.image_reference = result.warnings, False, ""
            self._reload()


def _add_image(reference: str, tenant: uuid.UUID, name: str | None) -> catalog.ImportResult:
    ctx = get_context()
    return component_images.add_image(
        ctx.db, ctx.vault, container_engine(ctx.settings), reference, tenant_id=tenant, name=name
    )


def _chosen(value: str | list[str]) -> str:
    """A segmented control's value (it may send a list)."""
    return value if isinstance(value, str) else (value[0] if value else "all")


def _warnings(title: Any, warnings: Any, color: Any, testid: str) -> rx.Component:
    return rx.callout.root(
        rx.callout.text(
            rx.text(title, weight="medium"),
            rx.unordered_list(rx.foreach(warnings, lambda w: rx.list_item(w, size="1"))),
        ),
        color_scheme=color,
        data_testid=testid,
        width="100%",
    )


def _card(entry: Any) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.image(src=entry["icon"], width="24px", height="24px", alt=""),
                rx.heading(entry["title"], size="3"),
                rx.spacer(),
                rx.badge(entry["scope"], color_scheme=rx.cond(entry["scope"] == "global", "blue", "green")),
                width="100%",
            ),
            rx.text(
                entry["name"] + " " + entry["version"], size="1", color_scheme="gray", font_family="monospace"
            ),
            rx.text(entry["description"], size="2"),
            rx.hstack(
                rx.badge(entry["triggers"] + " triggers", variant="soft"),
                rx.badge(entry["actions"] + " actions", variant="soft"),
                rx.badge(entry["runtime"], variant="outline"),
                rx.cond(
                    entry["warnings"] != "0",
                    rx.badge(entry["warnings"] + " import warnings", color_scheme="amber", variant="soft"),
                ),
                wrap="wrap",
            ),
            spacing="2",
            align="start",
        ),
        on_click=CatalogState.open(entry["id"]),
        cursor="pointer",
        data_testid="component-card",
        width="100%",
    )


def _importer() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Import a component.json (with its metadata files, if any)", weight="medium"),
            rx.hstack(
                rx.upload(
                    rx.text("Drop files here or click to choose", size="2"),
                    id=UPLOAD_ID,
                    multiple=True,
                    accept={"application/json": [".json"]},
                    border="1px dashed var(--gray-7)",
                    padding="12px",
                ),
                rx.vstack(
                    rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.text(f, size="1")),
                    spacing="0",
                ),
                rx.input(
                    placeholder="name (optional)",
                    value=CatalogState.import_name,
                    on_change=CatalogState.set_import_name,
                    width="180px",
                ),
                rx.button(
                    "Import",
                    on_click=CatalogState.import_files(rx.upload_files(upload_id=UPLOAD_ID)),
                    data_testid="import-button",
                ),
                align="center",
                wrap="wrap",
            ),
            rx.text(
                "Or add a component published as an image (pulled with the tenant's registry login)", size="2"
            ),
            rx.hstack(
                rx.input(
                    placeholder="registry.example.com:5000/team/crm:1.4",
                    value=CatalogState.image_reference,
                    on_change=CatalogState.set_image_reference,
                    width="360px",
                    data_testid="image-reference",
                ),
                rx.button(
                    rx.cond(CatalogState.pulling, rx.spinner(size="1"), rx.fragment()),
                    "Pull and add",
                    on_click=CatalogState.add_image,
                    disabled=CatalogState.pulling,
                    data_testid="add-image",
                ),
                align="center",
                wrap="wrap",
            ),
            rx.cond(
                CatalogState.import_error != "",
                rx.callout(
                    CatalogState.import_error, color_scheme="red", data_testid="import-error", width="100%"
                ),
            ),
            rx.cond(
                CatalogState.import_message != "",
                _warnings(
                    CatalogState.import_message,
                    CatalogState.import_warnings,
                    rx.cond(CatalogState.import_warnings.length() > 0, "amber", "green"),
                    "import-result",
                ),
            ),
            width="100%",
        ),
        width="100%",
    )


def _list() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.input(
                placeholder="Search components",
                value=CatalogState.search,
                on_change=CatalogState.set_search,
                width="280px",
                data_testid="catalog-search",
            ),
            rx.segmented_control.root(
                rx.segmented_control.item("All", value="all"),
                rx.segmented_control.item("Triggers", value="triggers"),
                rx.segmented_control.item("Actions", value="actions"),
                value=CatalogState.kind,
                on_change=CatalogState.set_kind,
            ),
            rx.segmented_control.root(
                rx.segmented_control.item("Everywhere", value="all"),
                rx.segmented_control.item("Global", value="global"),
                rx.segmented_control.item("This tenant", value="tenant"),
                value=CatalogState.scope,
                on_change=CatalogState.set_scope,
            ),
            wrap="wrap",
            align="center",
        ),
        rx.grid(rx.foreach(CatalogState.shown, _card), columns="3", spacing="3", width="100%"),
        rx.cond(CatalogState.shown.length() == 0, rx.text("No component matches.", color_scheme="gray")),
        _importer(),
        spacing="3",
        width="100%",
    )


def _function(function: Any) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(function["title"], size="3"),
                rx.badge(function["kind"], variant="soft"),
                rx.cond(function["deprecated"], rx.badge("deprecated", color_scheme="amber")),
                align="center",
            ),
            rx.text(function["description"], size="2", color_scheme="gray"),
            rx.cond(
                function["fields"].to(list[dict[str, Any]]).length() > 0,
                config_form(
                    function["id"].to(str),
                    function["fields"].to(list[dict[str, Any]]),
                    CatalogState.errors,
                    CatalogState.check_form,
                ),
                rx.text("No configuration.", size="2", color_scheme="gray"),
            ),
            rx.cond(
                CatalogState.valid_form == function["id"],
                rx.text("Valid: this configuration can be saved.", color_scheme="green", size="2"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="function-card",
    )


def _delete_button() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                "Delete",
                color_scheme="red",
                variant="soft",
                width="fit-content",
                data_testid="delete-component",
            )
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this component?"),
            rx.alert_dialog.description(
                "Flows cannot use it afterwards. A component that a flow uses is not deleted."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=CatalogState.delete_selected,
                        data_testid="confirm-delete",
                    )
                ),
                justify="end",
                spacing="3",
            ),
        ),
    )


def _detail() -> rx.Component:
    item = CatalogState.selected
    return rx.vstack(
        rx.button(
            "← All components", variant="ghost", on_click=CatalogState.close, data_testid="catalog-back"
        ),
        rx.heading(item["title"], size="6", data_testid="component-title"),
        rx.text(
            item["name"] + " " + item["version"] + " · " + item["scope"] + " · runs as " + item["runtime"],
            size="2",
            color_scheme="gray",
        ),
        rx.text(item["description"]),
        rx.cond(item["docs_url"] != "", rx.link("Documentation", href=item["docs_url"], is_external=True)),
        rx.cond(item["scope"] == "tenant", _delete_button()),
        rx.cond(
            CatalogState.delete_error != "",
            rx.callout(
                CatalogState.delete_error, color_scheme="red", data_testid="delete-error", width="100%"
            ),
        ),
        rx.cond(
            CatalogState.selected_warnings.length() > 0,
            _warnings("Import warnings", CatalogState.selected_warnings, "amber", "import-warnings"),
        ),
        rx.cond(
            CatalogState.credential_fields.length() > 0,
            rx.card(
                rx.vstack(
                    rx.heading("Credentials", size="3"),
                    config_form(
                        CREDENTIALS_FORM,
                        CatalogState.credential_fields,
                        CatalogState.errors,
                        CatalogState.check_form,
                    ),
                    width="100%",
                ),
                width="100%",
            ),
        ),
        rx.foreach(CatalogState.functions, _function),
        spacing="3",
        width="100%",
    )


def catalog_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Catalog",
        "Components flows are built from: the hub's built-ins, global ones, and your tenant's own.",
        rx.cond(CatalogState.selected.contains("id"), _detail(), _list()),
    )
