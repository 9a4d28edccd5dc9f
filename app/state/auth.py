"""The logged-in user, shared by every page: who they are, which tenant they work in, their role."""

from __future__ import annotations

import uuid

import reflex as rx

from app.auth import sessions
from app.context import get_context
from app.errors import HubError

SESSION_COOKIE = "hub_session"
LOGIN_ROUTE = "/login"
HOME_ROUTE = "/dashboard"


EDIT_ROLES = ("owner", "admin", "editor")  # the roles that may change a tenant's flows and credentials


class AuthState(rx.State):
    # The opaque session token; the database holds its hash (sessions survive restarts of the web app).
    session_token: str = rx.Cookie(
        "", name=SESSION_COOKIE, path="/", max_age=14 * 24 * 3600, same_site="strict"
    )

    authenticated: bool = False
    user_id: str = ""
    user_email: str = ""
    display_name: str = ""
    is_superuser: bool = False
    tenant_id: str = ""
    tenant_name: str = ""
    role: str = ""
    tenants: list[dict[str, str]] = []

    @rx.var
    def can_administer(self) -> bool:
        """Owners and admins: members, invitations, the audit log."""
        return self.role in ("owner", "admin")

    def _apply(self, info: sessions.SessionInfo | None) -> None:
        self.authenticated = info is not None
        self.user_id = str(info.user_id) if info else ""
        self.user_email = info.email if info else ""
        self.display_name = info.display_name if info else ""
        self.is_superuser = info.is_superuser if info else False
        self.tenant_id = str(info.tenant.tenant_id) if info and info.tenant else ""
        self.tenant_name = info.tenant.name if info and info.tenant else ""
        self.role = info.tenant.role.value if info and info.tenant else ""
        self.tenants = (
            [{"id": str(t.tenant_id), "name": t.name, "role": t.role.value} for t in info.tenants]
            if info
            else []
        )

    def _open_session(self, email: str, password: str) -> None:
        """Log in and keep the token in the cookie. Raises AuthenticationError or RateLimitedError."""
        ctx = get_context()
        self.session_token = sessions.login(
            ctx.db,
            ctx.login_throttle,
            email,
            password,
            session_days=ctx.settings.session_days,
            ip=self.router.session.client_ip or None,
            user_agent=self.router.headers.user_agent or None,
        )

    def _refusal(self, doing: str) -> str:
        """Why this person may not change things here ("" when they may), from the session and the role as they
        are now, not as they were when the page loaded."""
        if self.require_login() is not None:
            return "Your session has ended; log in again."
        if self.role not in EDIT_ROLES:
            return f"Your role here ({self.role or 'none'}) cannot {doing}; ask an editor."
        return ""

    @rx.event
    def require_login(self):
        """on_load of every protected page: restore the session from the cookie or go to the login page."""
        info = sessions.resolve(get_context().db, self.session_token)
        self._apply(info)
        if info is None:
            self.session_token = ""
            return rx.redirect(LOGIN_ROUTE)
        return None

    @rx.event
    def switch_tenant(self, tenant_id: str):
        try:
            info = sessions.switch_tenant(get_context().db, self.session_token, uuid.UUID(tenant_id))
        except (HubError, ValueError):
            return rx.toast.error("That tenant is not available to you.")
        self._apply(info)
        return rx.toast.success(f"Now working in {info.tenant.name if info.tenant else 'no tenant'}.")

    @rx.event
    def logout(self):
        sessions.logout(get_context().db, self.session_token)
        self.session_token = ""
        self._apply(None)
        return rx.redirect(LOGIN_ROUTE)

    @rx.event
    def require_login_home(self):
        """The root URL: to the dashboard when logged in, else to the login page."""
        return self.require_login() or rx.redirect(HOME_ROUTE)
