"""Newer versions of the imported components a flow pins, and what changed in the fields its steps use: what
the designer offers to upgrade (a newer import never changes a flow by itself)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.services.catalog import component_version, latest_versions
from app.storage.db import Database
from runtime.components.descriptor import Descriptor, FieldDef, FunctionDef, parse_descriptor


@dataclass(frozen=True)
class Upgrade:
    component: str
    title: str
    pinned: str
    latest: str
    changes: tuple[str, ...]  # in words, per function and field the flow's steps use


def newest_imported(db: Database, tenant_id: uuid.UUID, names: Iterable[str]) -> dict[str, str]:
    """name -> newest version, for the imported components among `names` (built-ins follow the code)."""
    return {name: row.version for name, row in latest_versions(db, tenant_id, names).items()}


def upgrades(db: Database, tenant_id: uuid.UUID, graph: dict[str, Any]) -> list[Upgrade]:
    pins = dict(graph.get("pins") or {})
    used: dict[str, set[str]] = {}
    for node in graph.get("nodes") or []:
        if node.get("component") in pins:
            used.setdefault(str(node["component"]), set()).add(str(node.get("function")))
    found = []
    for name, row in sorted(latest_versions(db, tenant_id, used).items()):
        if row.version == pins[name]:
            continue
        new = parse_descriptor(row.descriptor, name=name).descriptor
        old_row = component_version(db, tenant_id, name, pins[name])
        old = parse_descriptor(old_row.descriptor, name=name).descriptor if old_row is not None else None
        found.append(
            Upgrade(name, new.title, pins[name], row.version, tuple(field_changes(old, new, used[name])))
        )
    return found


def field_changes(old: Descriptor | None, new: Descriptor, functions: Iterable[str]) -> list[str]:
    """What someone upgrading must know: functions gone, fields added (required ones first), removed or changed,
    and a changed credential."""
    if old is None:
        return [
            "The pinned version is no longer in the catalog: upgrading is the way to keep this flow running."
        ]
    changes = []
    for function_id in sorted(functions):
        before, after = _function(old, function_id), _function(new, function_id)
        if after is None:
            changes.append(f"{function_id}: gone in the new version; its steps will have to be replaced.")
            continue
        if before is None:
            continue
        changes.extend(f"{after.title}: {change}" for change in _fields(before.fields, after.fields))
    credential = _fields(old.credential_fields, new.credential_fields)
    changes.extend(f"credential: {change}" for change in credential)
    return changes


def _function(descriptor: Descriptor, function_id: str) -> FunctionDef | None:
    return next((f for f in descriptor.functions if f.id == function_id), None)


def _fields(before: list[FieldDef], after: list[FieldDef]) -> list[str]:
    old = {f.name: f for f in before}
    new = {f.name: f for f in after}
    added = [f for name, f in new.items() if name not in old]
    changes = [f"new required field {f.label!r}" for f in added if f.required]
    changes += [f"new field {f.label!r}" for f in added if not f.required]
    changes += [f"field {f.label!r} removed" for name, f in old.items() if name not in new]
    for name in sorted(set(old) & set(new)):
        was, now = old[name], new[name]
        if now.required and not was.required:
            changes.append(f"field {now.label!r} is now required")
        elif was.required and not now.required:
            changes.append(f"field {now.label!r} is now optional")
        if was.kind != now.kind:
            changes.append(f"field {now.label!r} is now {now.view_class} (was {was.view_class})")
        if was.options is not None and now.options is not None and set(was.options) != set(now.options):
            gone = sorted(set(was.options) - set(now.options))
            more = sorted(set(now.options) - set(was.options))
            parts = ([f"added {', '.join(more)}"] if more else []) + (
                [f"removed {', '.join(gone)}"] if gone else []
            )
            changes.append(f"choices of {now.label!r}: {'; '.join(parts)}")
        if was.label != now.label:
            changes.append(f"field {was.label!r} is now labelled {now.label!r}")
    return changes
