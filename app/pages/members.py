"""Members: who is in the tenant with which role; owners and admins invite by link, change roles, remove."""

from __future__ import annotations

import uuid

import reflex as rx

from app.components.formatting import when
from app.components.notice import notice
from app.components.shown_once import shown_once
from app.components.tables import data_table
from app.context import get_context
from app.errors import HubError
from app.services import invitations, members
from app.state.auth import AuthState
from app.templates.layout import page_layout

ROUTE = "/members"
ROLES = ["owner", "admin", "editor", "viewer"]
EXPIRY = {"1 day": 24, "3 days": 72, "7 days": 168, "30 days": 720}


class MembersState(AuthState):
    members: list[dict[str, str]] = []
    invitations: list[dict[str, str]] = []
    invite_link: str = ""  # shown once, right after the invitation is made
    error: str = ""

    def _ids(self) -> tuple[uuid.UUID, uuid.UUID]:
        return uuid.UUID(self.tenant_id), uuid.UUID(self.user_id)

    def _reload(self) -> None:
        db = get_context().db
        tenant_id, user_id = self._ids()
        self.members = [
            {"user_id": str(m.user_id), "email": m.email, "name": m.display_name, "role": m.role.value,
             "joined": when(m.joined_at), "last_login": when(m.last_login_at) or "never",
             "me": "yes" if m.user_id == user_id else ""}
            for m in members.members_of(db, tenant_id, user_id)
        ]  # fmt: skip
        self.invitations = []
        if self.can_administer:
            self.invitations = [
                {"id": str(i.id), "role": i.role.value, "email": i.email or "anyone with the link",
                 "by": i.created_by, "expires": when(i.expires_at), "state": i.state}
                for i in invitations.list_invitations(db, tenant_id, user_id)
            ]  # fmt: skip

    def _act(self, action) -> None:
        self.error = ""
        try:
            action()
        except (HubError, ValueError) as exc:  # ValueError: an id that is not one, sent by hand
            self.error = str(exc)
        try:
            self._reload()
        except HubError as exc:
            self.error = self.error or str(exc)

    @rx.event
    def dismiss(self):
        """Shown once: forgotten as soon as it is copied (not kept in the page's state until the next visit)."""
        self.invite_link = ""

    @rx.event
    def load(self):
        redirect = self.require_login()
        self.invite_link, self.error = "", ""
        if redirect is not None or not self.tenant_id:
            self.members, self.invitations = [], []
            return redirect
        self._act(lambda: None)
        return None

    @rx.event
    def create_invitation(self, form: dict[str, str]):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        self.invite_link = ""

        def make() -> None:
            tenant_id, user_id = self._ids()
            token, _ = invitations.invite(get_context().db, tenant_id, user_id, form.get("role", "viewer"),
                                          email=form.get("email", ""),
                                          expires_in_hours=EXPIRY.get(form.get("expires", ""), 72))  # fmt: skip
            base = get_context().settings.effective_public_base_url.rstrip("/")
            self.invite_link = f"{base}{invitations.INVITE_PATH}{token}"

        self._act(make)
        return None

    @rx.event
    def revoke_invitation(self, invitation_id: str):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        tenant_id, user_id = self._ids()
        self._act(lambda: invitations.revoke_invitation(get_context().db, tenant_id, user_id,
                                                        uuid.UUID(invitation_id)))  # fmt: skip
        return None

    @rx.event
    def change_role(self, member_id: str, role: str):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        tenant_id, user_id = self._ids()
        self._act(
            lambda: members.change_role(get_context().db, tenant_id, user_id, uuid.UUID(member_id), role)
        )
        return self.require_login()  # one's own role may have changed

    @rx.event
    def remove(self, member_id: str):
        redirect = self.require_login()
        if redirect is not None:
            return redirect
        tenant_id, user_id = self._ids()
        self._act(lambda: members.remove_member(get_context().db, tenant_id, user_id, uuid.UUID(member_id)))
        return self.require_login()  # leaving the tenant ends the work in it


def _role_cell(m: rx.Var) -> rx.Component:
    return rx.cond(
        MembersState.can_administer,
        rx.select.root(
            rx.select.trigger(data_testid="member-role"),
            rx.select.content(*[rx.select.item(role, value=role) for role in ROLES]),
            value=m["role"],
            on_change=lambda role: MembersState.change_role(m["user_id"], role),
            size="1",
        ),
        rx.badge(m["role"]),
    )


def _member_row(m: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(m["email"]), rx.cond(m["me"] == "yes", rx.badge("you", variant="soft"))),
        rx.table.cell(m["name"]),
        rx.table.cell(_role_cell(m)),
        rx.table.cell(m["joined"]),
        rx.table.cell(m["last_login"]),
        rx.table.cell(
            rx.cond(
                MembersState.can_administer | (m["me"] == "yes"),
                rx.button(
                    rx.cond(m["me"] == "yes", "Leave", "Remove"),
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=MembersState.remove(m["user_id"]),
                    data_testid="member-remove",
                ),
            )
        ),
        data_testid="member-row",
    )


def _members_table() -> rx.Component:
    headers = ["E-mail", "Name", "Role", "Member since", "Last login", ""]
    return data_table(headers, MembersState.members, _member_row, "members-table")


def _invite_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                name="email",
                placeholder="e-mail (optional: only this person may use the link)",
                width="24em",
                data_testid="invite-email",
            ),
            rx.select(ROLES, name="role", default_value="editor", data_testid="invite-role"),
            rx.select(list(EXPIRY), name="expires", default_value="3 days", data_testid="invite-expires"),
            rx.button(
                rx.icon("link", size=16), "Make invitation link", type="submit", data_testid="invite-submit"
            ),
            align="center",
            wrap="wrap",
        ),
        on_submit=MembersState.create_invitation,
        reset_on_submit=True,
    )


def _invite_link() -> rx.Component:
    return shown_once(MembersState.invite_link, icon="link", on_done=MembersState.dismiss, test_id="invite-link",
                      advice="Send this link to the person you invite. It is shown only now and works once.")  # fmt: skip


def _invitation_row(i: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(i["email"]),
        rx.table.cell(rx.badge(i["role"])),
        rx.table.cell(i["by"]),
        rx.table.cell(i["expires"]),
        rx.table.cell(rx.badge(i["state"], color_scheme=rx.cond(i["state"] == "pending", "green", "gray"))),
        rx.table.cell(
            rx.cond(
                i["state"] == "pending",
                rx.button(
                    "Revoke",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=MembersState.revoke_invitation(i["id"]),
                    data_testid="invitation-revoke",
                ),
            )
        ),
        data_testid="invitation-row",
    )


def _invitations() -> rx.Component:
    headers = ["For", "Role", "Made by", "Expires", "State", ""]
    return rx.vstack(
        rx.text("Invite someone", weight="medium", padding_top="12px"),
        rx.text(
            "A link that makes whoever opens it a member with the role chosen here. Owners invite owners.",
            size="2",
            color_scheme="gray",
        ),
        _invite_form(),
        _invite_link(),
        rx.cond(
            MembersState.invitations.length() > 0,
            data_table(headers, MembersState.invitations, _invitation_row, "invitations-table"),
        ),
        width="100%",
    )


def members_page() -> rx.Component:
    return page_layout(
        ROUTE,
        "Members",
        "The people in this tenant and what their role lets them do.",
        notice(MembersState.error, icon="triangle_alert", color="red", test_id="members-error"),
        rx.text(
            "Owners and admins manage members; editors change flows and credentials and start runs; viewers "
            "read. A role change applies at the person's next click or API call.",
            size="2",
            color_scheme="gray",
        ),
        _members_table(),
        rx.cond(MembersState.can_administer, _invitations()),
    )
