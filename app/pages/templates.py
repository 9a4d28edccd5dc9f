"""Templates: the gallery (this tenant's and the hub's), making a flow from one with a credential picked for
each step that needs one, importing a flow or template file, exporting and deleting the tenant's own."""

from __future__ import annotations

import json
import uuid

import reflex as rx

from app.components.notice import notice
from app.context import get_context
from app.errors import HubError
from app.services import templates
from app.services.accounts import slugify
from app.services.credentials import list_credentials
from app.state.auth import EDIT_ROLES, AuthState
from app.templates.layout import page_layout

ROUTE = "/templates"
UPLOAD_ID = "template-upload"
NONE = "__none__"  # the select's "no credential for now"


class TemplatesState(AuthState):
    items: list[dict[str, str]] = []
    error: str = ""
    # The "make a flow" dialog: from a gallery template (template_id) or an uploaded file (document).
    dialog_open: bool = False
    dialog_title: str = ""
    template_id: str = ""
    document: str = ""
    flow_name: str = ""
    slots: list[dict[str, str]] = []  # node_id, label, kind
    options: dict[str, list[list[str]]] = {}  # node_id -> [[credential id, name], ...] of the fitting kind
    chosen: dict[str, str] = {}  # node_id -> credential id or NONE
    dialog_error: str = ""

    @rx.var
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    def _ids(self) -> tuple[uuid.UUID, uuid.UUID]:
        return uuid.UUID(self.tenant_id), uuid.UUID(self.user_id)

    def _reload(self) -> None:
        tenant_id, _ = self._ids()
        self.items = [
            {"id": str(t.id), "name": t.name, "description": t.description, "scope": t.scope,
             "trigger": t.trigger, "steps": str(t.steps), "by": t.created_by,
             "needs": ", ".join(s.label for s in t.slots) or "no credentials"}
            for t in templates.list_templates(get_context().db, tenant_id)
        ]  # fmt: skip

    @rx.event
    def load(self):
        redirect = self.require_login()
        self.error, self.dialog_open = "", False
        if redirect is not None or not self.tenant_id:
            self.items = []
            return redirect
        try:
            self._reload()
        except HubError as exc:
            self.error = str(exc)
        return None

    def _open(self, title: str, name: str, slots: tuple[templates.Slot, ...]) -> None:
        tenant_id, user_id = self._ids()
        self.dialog_title, self.flow_name, self.dialog_error = title, name, ""
        self.slots = [{"node_id": s.node_id, "label": s.label, "kind": s.kind} for s in slots]
        self.options, self.chosen = {}, {}
        if slots:
            fitting = list_credentials(get_context().db, tenant_id, user_id)
            for slot in slots:
                self.options[slot.node_id] = [
                    [str(c.id), c.name] for c in fitting if slot.fits(c.kind, c.component_name)
                ]  # fmt: skip
                first = self.options[slot.node_id]
                self.chosen[slot.node_id] = first[0][0] if len(first) == 1 else NONE
        self.dialog_open = True

    @rx.event
    def use(self, template_id: str):
        if self.require_login() is not None:
            return rx.redirect("/login")
        self.error = ""
        try:
            view, _ = templates.get_template(get_context().db, self._ids()[0], uuid.UUID(template_id))
            self.template_id, self.document = template_id, ""
            self._open(f"New flow from “{view.name}”", view.name, view.slots)
        except (HubError, ValueError) as exc:
            self.error = str(exc)
        return None

    @rx.event
    async def upload(self, files: list[rx.UploadFile]):
        self.error = ""
        if self.require_login() is not None:
            self.error = "Your session has ended; log in again."
            return
        if not files:
            self.error = "Choose an exported flow or template file first."
            return
        raw = await files[0].read()
        try:
            parsed = templates.parse_document(raw)
            self.template_id, self.document = "", raw.decode("utf-8")
            self._open(f"Import “{parsed.name}”", parsed.name, parsed.slots)
        except (HubError, UnicodeDecodeError) as exc:
            self.error = str(exc)

    @rx.event
    def choose(self, node_id: str, credential_id: str):
        self.chosen[node_id] = credential_id

    @rx.event
    def set_open(self, value: bool):
        self.dialog_open = value

    @rx.event
    def create_flow(self, form: dict[str, str]):
        if self.require_login() is not None:
            return rx.redirect("/login")
        tenant_id, user_id = self._ids()
        mapping = {node: cid for node, cid in self.chosen.items() if cid and cid != NONE}
        name = form.get("name", "") or self.flow_name
        db = get_context().db
        try:
            if self.template_id:
                made = templates.instantiate(db, tenant_id, user_id, uuid.UUID(self.template_id), name=name,
                                             credentials=mapping, leave_unmapped=True)  # fmt: skip
            else:
                made = templates.instantiate_document(db, tenant_id, user_id, templates.parse_document(self.document),
                                                      name=name, credentials=mapping, leave_unmapped=True)  # fmt: skip
        except (HubError, ValueError) as exc:
            self.dialog_error = str(exc)
            return None
        self.dialog_open = False
        return rx.redirect(f"/flows/{made.flow_id}")

    @rx.event
    def save_to_gallery(self):
        if self.require_login() is not None:
            return rx.redirect("/login")
        tenant_id, user_id = self._ids()
        try:
            templates.import_template(get_context().db, tenant_id, user_id, self.document)
            self._reload()
        except HubError as exc:
            self.dialog_error = str(exc)
            return None
        self.dialog_open = False
        return rx.toast.success("Added to this tenant's templates.")

    @rx.event
    def export(self, template_id: str):
        if self.require_login() is not None:
            return rx.redirect("/login")
        tenant_id, user_id = self._ids()
        try:
            document = templates.export_template(get_context().db, tenant_id, user_id, uuid.UUID(template_id))
        except (HubError, ValueError) as exc:
            self.error = str(exc)
            return None
        return rx.download(data=json.dumps(document, indent=2, ensure_ascii=False),
                           filename=f"{slugify(document['name'])}.template.json")  # fmt: skip

    @rx.event
    def delete(self, template_id: str):
        if self.require_login() is not None:
            return rx.redirect("/login")
        tenant_id, user_id = self._ids()
        try:
            name = templates.delete_template(get_context().db, tenant_id, user_id, uuid.UUID(template_id))
            self._reload()
        except (HubError, ValueError) as exc:
            self.error = str(exc)
            return None
        return rx.toast.success(f"Deleted the template {name!r}.")


def _card(t: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(t["name"], weight="bold", size="3"),
                rx.spacer(),
                rx.badge(rx.cond(t["scope"] == "global", "shipped", "this tenant"),
                         color_scheme=rx.cond(t["scope"] == "global", "indigo", "green")),
                width="100%",
            ),
            rx.text(t["description"], size="2", color_scheme="gray"),
            rx.text(t["trigger"], " · ", t["steps"], " steps · needs: ", t["needs"], size="1", color_scheme="gray"),
            rx.hstack(
                rx.button("Use", size="1", on_click=TemplatesState.use(t["id"]), disabled=~TemplatesState.can_edit,
                          data_testid="template-use"),
                rx.button("Export", size="1", variant="soft", color_scheme="gray",
                          on_click=TemplatesState.export(t["id"])),
                rx.cond(t["scope"] == "tenant",
                        rx.button("Delete", size="1", variant="soft", color_scheme="red",
                                  on_click=TemplatesState.delete(t["id"]), disabled=~TemplatesState.can_edit)),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="template-card",
    )  # fmt: skip


def _slot(slot: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(slot["label"], size="2", weight="medium"),
        rx.select.root(
            rx.select.trigger(placeholder="choose a credential", width="100%", data_testid="slot-credential"),
            rx.select.content(
                rx.select.item("none for now (the step runs without one)", value=NONE),
                rx.foreach(
                    TemplatesState.options[slot["node_id"]], lambda o: rx.select.item(o[1], value=o[0])
                ),
            ),
            value=TemplatesState.chosen[slot["node_id"]],
            on_change=lambda value: TemplatesState.choose(slot["node_id"], value),
        ),
        spacing="1",
        width="100%",
    )


def _dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(TemplatesState.dialog_title),
            rx.form(
                rx.vstack(
                    rx.text("Flow name", size="2", weight="medium"),
                    rx.input(name="name", default_value=TemplatesState.flow_name, key=TemplatesState.flow_name,
                             width="100%", data_testid="new-flow-name"),
                    rx.cond(
                        TemplatesState.slots.length() > 0,
                        rx.vstack(
                            rx.text("Credentials: pick one of yours for each step that needs one. A new one is "
                                    "made on the Credentials page.", size="2", color_scheme="gray"),
                            rx.foreach(TemplatesState.slots, _slot),
                            width="100%",
                        ),
                        rx.text("This flow needs no credentials.", size="2", color_scheme="gray"),
                    ),
                    notice(TemplatesState.dialog_error, icon="triangle_alert", color="red", test_id="dialog-error"),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        rx.cond(TemplatesState.document != "",
                                rx.button("Save to templates", variant="soft", type="button",
                                          on_click=TemplatesState.save_to_gallery, data_testid="save-to-gallery")),
                        rx.button("Create flow", type="submit", data_testid="create-from-template"),
                        justify="end",
                        width="100%",
                    ),
                    width="100%",
                ),
                on_submit=TemplatesState.create_flow,
                reset_on_submit=False,
            ),
        ),
        open=TemplatesState.dialog_open,
        on_open_change=TemplatesState.set_open,
    )  # fmt: skip


def _importer() -> rx.Component:
    return rx.hstack(
        rx.upload(
            rx.text("Drop an exported flow or template here, or click to choose", size="2"),
            id=UPLOAD_ID,
            multiple=False,
            accept={"application/json": [".json"]},
            border="1px dashed var(--gray-7)",
            padding="10px",
        ),
        rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.text(f, size="1")),
        rx.button("Import", on_click=TemplatesState.upload(rx.upload_files(upload_id=UPLOAD_ID)),
                  disabled=~TemplatesState.can_edit, data_testid="template-import"),
        align="center",
        wrap="wrap",
    )  # fmt: skip


def templates_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Templates",
        "Ready-made flows: the hub's and your team's. A template never holds credentials; you pick yours.",
        _importer(),
        notice(TemplatesState.error, icon="triangle_alert", color="red", test_id="templates-error"),
        rx.grid(rx.foreach(TemplatesState.items, _card), columns="2", spacing="3", width="100%"),
        _dialog(),
    )
