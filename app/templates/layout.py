"""The shell of every logged-in page: navigation, tenant switcher, user menu."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.state.auth import AuthState


@dataclass(frozen=True)
class NavItem:
    label: str
    route: str
    icon: str


NAV_ITEMS = (
    NavItem("Dashboard", "/dashboard", "layout-dashboard"),
    NavItem("Flows", "/flows", "workflow"),
    NavItem("Templates", "/templates", "layout-template"),
    NavItem("Catalog", "/catalog", "blocks"),
    NavItem("Credentials", "/credentials", "key-round"),
    NavItem("Runs", "/runs", "activity"),
    NavItem("Members", "/members", "users"),
    NavItem("API tokens", "/tokens", "key-square"),
    NavItem("Settings", "/settings", "settings"),
)
TENANT_ADMIN_ITEMS = (NavItem("Audit log", "/audit", "scroll-text"),)  # the tenant's owners and admins
ADMIN_ITEMS = (NavItem("Activity", "/activity", "gauge"),)  # hub administrators only


def _nav_link(item: NavItem, active: bool) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(item.icon, size=18), rx.text(item.label, size="3"), spacing="3", align="center"),
        href=item.route,
        underline="none",
        color_scheme="gray" if not active else "indigo",
        high_contrast=active,
        padding_x="12px",
        padding_y="8px",
        border_radius="8px",
        background_color=rx.color("indigo", 3) if active else "transparent",
        width="100%",
        data_testid=f"nav-{item.route.strip('/')}",
    )


def _tenant_switcher() -> rx.Component:
    return rx.cond(
        AuthState.tenants.length() > 1,
        rx.select.root(
            rx.select.trigger(placeholder="Tenant", data_testid="tenant-switcher"),
            rx.select.content(
                rx.foreach(AuthState.tenants, lambda t: rx.select.item(t["name"], value=t["id"])),
            ),
            value=AuthState.tenant_id,
            on_change=AuthState.switch_tenant,
        ),
        rx.badge(
            rx.cond(AuthState.tenant_name != "", AuthState.tenant_name, "no tenant"),
            size="2",
            variant="soft",
            data_testid="tenant-name",
        ),
    )


def _sidebar(active_route: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("waypoints", size=24, color=rx.color("indigo", 9)),
            rx.heading("Integration Hub", size="4"),
            align="center",
            spacing="2",
            padding_bottom="16px",
        ),
        *[_nav_link(item, item.route == active_route) for item in NAV_ITEMS],
        *[
            rx.cond(AuthState.can_administer, _nav_link(item, item.route == active_route))
            for item in TENANT_ADMIN_ITEMS
        ],
        *[
            rx.cond(AuthState.is_superuser, _nav_link(item, item.route == active_route))
            for item in ADMIN_ITEMS
        ],
        rx.spacer(),
        rx.text("Tenant", size="1", color_scheme="gray"),
        _tenant_switcher(),
        rx.divider(),
        rx.text(AuthState.user_email, size="2", data_testid="user-email", trim="both"),
        rx.text(AuthState.role, size="1", color_scheme="gray"),
        rx.button(
            rx.icon("log-out", size=16),
            "Log out",
            variant="soft",
            color_scheme="gray",
            width="100%",
            on_click=AuthState.logout,
            data_testid="logout",
        ),
        width="240px",
        min_width="240px",
        height="100vh",
        padding="20px",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background_color=rx.color("gray", 2),
        spacing="1",
        position="sticky",
        top="0",
    )


def page_layout(active_route: str, title: str, subtitle: str, *children: rx.Component) -> rx.Component:
    """A logged-in page. Content shows only once the session is confirmed, so nothing flashes for guests."""
    return rx.hstack(
        _sidebar(active_route),
        rx.box(
            rx.cond(
                AuthState.authenticated,
                rx.vstack(
                    rx.heading(title, size="7", data_testid="page-title"),
                    rx.text(subtitle, color_scheme="gray", size="3"),
                    rx.divider(margin_y="12px"),
                    *children,
                    spacing="2",
                    width="100%",
                    max_width="1200px",
                ),
                rx.center(rx.spinner(size="3"), height="50vh"),
            ),
            padding="32px",
            width="100%",
        ),
        spacing="0",
        align="start",
        width="100%",
    )


def workspace_layout(active_route: str, *children: rx.Component) -> rx.Component:
    """A logged-in page that needs the whole window (the designer): no title block, no width limit."""
    return rx.hstack(
        _sidebar(active_route),
        rx.box(
            rx.cond(
                AuthState.authenticated,
                rx.vstack(*children, spacing="2", width="100%"),
                rx.center(rx.spinner(size="3"), height="50vh"),
            ),
            padding="12px 16px",
            width="100%",
            min_width="0",
        ),
        spacing="0",
        align="start",
        width="100%",
    )


def coming_next(what: str, items: list[str]) -> rx.Component:
    """An honest placeholder for a page a later release fills: says what it will hold."""
    return rx.callout.root(
        rx.callout.icon(rx.icon("construction")),
        rx.callout.text(
            rx.text(what, weight="medium"),
            rx.unordered_list(*[rx.list_item(item) for item in items]),
        ),
        color_scheme="gray",
        variant="surface",
        width="100%",
    )
