"""The palette: every trigger and action of the catalog a tenant sees, as the canvas lists them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runtime.components.descriptor import Descriptor, FunctionDef


@dataclass(frozen=True)
class PaletteComponent:
    """A catalog component as the designer needs it: its descriptor, where its icon is, whose it is."""

    descriptor: Descriptor
    icon: str
    scope: str = "global"  # or "tenant"


def _item(component: PaletteComponent, function: FunctionDef, several: bool) -> dict[str, Any]:
    descriptor = component.descriptor
    return {
        "component": descriptor.name,
        "function": function.id,
        "title": descriptor.title if not several else function.title,
        "subtitle": descriptor.title if several else "",
        "description": function.description or descriptor.description,
        "icon": component.icon,
        "kind": function.kind,
        "group": "Triggers" if function.kind == "trigger" else ("Actions" if component.scope == "global"
                                                               else "This tenant's actions"),
    }  # fmt: skip


def palette_items(components: Iterable[PaletteComponent]) -> list[dict[str, Any]]:
    """Triggers first, then actions, each by title; deprecated functions are left out (flows that use them
    keep working, new ones should not start using them)."""
    items = []
    for component in components:
        live = [f for f in component.descriptor.functions if not f.deprecated]
        several = len(live) > 1
        items.extend(_item(component, f, several) for f in live)
    order = {"Triggers": 0, "Actions": 1, "This tenant's actions": 2}
    return sorted(items, key=lambda i: (order[i["group"]], i["title"].lower(), i["subtitle"].lower()))
