"""The component catalog: import component.json descriptors (a file, an upload, a folder), list and find them."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import NotFoundError, PermissionDeniedError, ValidationError
from app.services import audit, component_code
from app.storage.db import Database
from app.storage.models import Component, Flow, FlowVersion
from app.storage.scoping import system_session, tenant_session
from runtime.components.builtin import builtin_descriptors, builtin_registry
from runtime.components.descriptor import (
    Descriptor,
    DescriptorError,
    ParsedDescriptor,
    load_descriptor_json,
    parse_descriptor,
)
from runtime.components.registry import spec_from_pin
from runtime.components.spec import ComponentSpec

# Icons of the built-in library, served by the web app from assets/.
ICONS = Path(__file__).resolve().parents[2] / "assets" / "components"
DEFAULT_ICON = "/components/component.svg"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MAX_DESCRIPTOR_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class ImportResult:
    component_id: uuid.UUID
    name: str
    version: str
    warnings: list[str] = field(default_factory=list)
    unchanged: bool = False  # the same descriptor was imported before: nothing was written


IMAGE_OWNER = "image_owner"  # x-hub key: which tenant's flows may run the image ("global": every tenant's)


def component_name(candidate: str) -> str:
    """A catalog name from a file, folder or title: lower case, digits, '.', '_' and '-'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", candidate.strip().lower()).strip("-.")
    if not _NAME.match(name):
        raise ValidationError(
            f"{candidate!r} cannot be made into a component name; give one with letters or digits."
        )
    return name


def name_from_file(file_name: str) -> str | None:
    """The name a descriptor file suggests ("elasticio__csv-component.json" -> "csv-component"); None for a
    plain component.json, whose folder is what names it."""
    stem = file_name.rsplit("/", 1)[-1].removesuffix(".json")
    return None if stem == "component" else stem.split("__")[-1]


def _digest(cleaned: dict[str, Any]) -> str:
    """What identifies a descriptor's content: an import of the same content is a no-op."""
    return hashlib.sha256(orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _stored(cleaned: dict[str, Any], digest: str, warnings: list[str]) -> dict[str, Any]:
    return {**cleaned, "x-hub-digest": digest, "x-hub-warnings": warnings}


def _session(db: Database, tenant_id: uuid.UUID | None):
    return system_session(db.sessions) if tenant_id is None else tenant_session(db.sessions, tenant_id)


def import_descriptor(
    db: Database,
    descriptor: str | bytes | Mapping[str, Any],
    *,
    name: str | None = None,
    tenant_id: uuid.UUID | None = None,
    files: Mapping[str, str | bytes] | None = None,
    user_id: uuid.UUID | None = None,
    image_owner: str | None = None,
) -> ImportResult:
    """Import one component.json (text or decoded). tenant_id None imports a global component. `image_owner`:
    only for images the hub pulled itself (the tenant whose login pulled it).

    A descriptor without a version gets one from its content, so that changing it makes a new version
    instead of changing flows that pinned the old one; the same version with other content is refused."""
    if isinstance(descriptor, str | bytes):
        if len(descriptor) > MAX_DESCRIPTOR_BYTES:
            raise ValidationError(
                f"component.json is larger than {MAX_DESCRIPTOR_BYTES // 1024 // 1024} MiB."
            )
        try:
            raw = load_descriptor_json(descriptor)
        except DescriptorError as exc:
            raise ValidationError(str(exc)) from None
    else:
        raw = descriptor
    if not isinstance(raw, Mapping):
        raise ValidationError(
            f"component.json: the descriptor must be a JSON object, got {type(raw).__name__}"
        )
    hub_block = raw.get("x-hub")
    if isinstance(hub_block, Mapping):
        # Who may run the image is the hub's to say, never the descriptor's: an image pulled with one tenant's
        # registry login is that tenant's (app/services/component_images.py); an operator's global import is
        # everyone's; a tenant's uploaded descriptor naming an image is nobody's until the tenant adds the image.
        owner = image_owner if image_owner is not None else ("global" if tenant_id is None else None)
        hub_block = {k: v for k, v in hub_block.items() if k != IMAGE_OWNER}
        if owner is not None:
            hub_block[IMAGE_OWNER] = owner
        raw = {**raw, "x-hub": hub_block}
    declared = (hub_block or {}).get("name") if isinstance(hub_block, Mapping) else None
    title = raw.get("title")
    candidate = name or declared or (title if isinstance(title, str) else "")
    if not candidate:
        raise ValidationError("The component needs a name: give one, or a title in the descriptor.")
    component = component_name(str(candidate))
    if isinstance(hub_block, Mapping) and str(hub_block.get("entry_point") or "").startswith("folder:"):
        raise ValidationError(
            "x-hub.entry_point: 'folder:' names code the hub installed itself; import the component's folder instead."
        )
    if component in builtin_descriptors():
        raise ValidationError(
            f"The name {component!r} belongs to a built-in component; import this one under another name."
        )
    try:
        parsed = parse_descriptor(raw, name=component, files=files)
        cleaned = parsed.cleaned
        digest = _digest(cleaned)
    except DescriptorError as exc:
        raise ValidationError(f"component.json: {exc}") from None
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:  # odd JSON: too deep, huge numbers
        raise ValidationError(f"component.json cannot be stored: {exc.__class__.__name__}: {exc}") from None
    version = parsed.descriptor.version
    if not parsed.version_declared:
        version = f"0.0.0+{digest[:8]}"
        parsed.warnings[:] = [w for w in parsed.warnings if not w.startswith("version:")]
        parsed.warnings.append(f"version: missing: this content is version {version}")
        cleaned["version"] = version
    try:
        return _store(db, tenant_id, component, version, parsed, cleaned, digest, user_id)
    except IntegrityError:
        raise ValidationError(
            f"{component} {version} was imported by someone else at the same moment; reload the catalog."
        ) from None


def _store(
    db: Database,
    tenant_id: uuid.UUID | None,
    component: str,
    version: str,
    parsed: ParsedDescriptor,
    cleaned: dict[str, Any],
    digest: str,
    user_id: uuid.UUID | None,
) -> ImportResult:
    with _session(db, tenant_id) as session:
        existing = session.scalar(
            sa.select(Component).where(
                Component.name == component,
                Component.version == version,
                Component.tenant_id.is_(None) if tenant_id is None else Component.tenant_id == tenant_id,
            )
        )
        if existing is not None:
            if existing.descriptor.get("x-hub-digest") == digest:
                return ImportResult(existing.id, component, version, parsed.warnings, unchanged=True)
            raise ValidationError(
                f"version: {component} {version} is already in the catalog with a different descriptor; flows "
                "pinned to it must not change under them. Give the new descriptor a new version."
            )
        row = Component(
            tenant_id=tenant_id,
            name=component,
            version=version,
            title=parsed.descriptor.title[:300],
            description=parsed.descriptor.description,
            descriptor=_stored(cleaned, digest, parsed.warnings),
            runtime=parsed.descriptor.runtime,
            entry=parsed.descriptor.entry[:500],
            deprecated=False,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            "component.imported",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="component",
            target_id=row.id,
            name=component,
            version=version,
            warnings=len(parsed.warnings),
        )
        return ImportResult(row.id, component, version, parsed.warnings)


def import_folder(
    db: Database,
    folder: Path,
    *,
    tenant_id: uuid.UUID | None = None,
    name: str | None = None,
    components_dir: Path | None = None,
) -> ImportResult:
    """Import a component's folder: its component.json and the JSON files its metadata paths point at. A Python
    component's code is installed into `components_dir` too, where the workers' runners load it."""
    descriptor = folder / "component.json"
    if not descriptor.is_file():
        raise ValidationError(f"{folder} has no component.json.")
    files = {
        str(path.relative_to(folder).as_posix()): path.read_bytes()
        for path in folder.rglob("*.json")
        if path != descriptor
        and "node_modules" not in path.parts
        and path.stat().st_size <= MAX_DESCRIPTOR_BYTES
    }
    raw: Any = descriptor.read_bytes()
    if components_dir is not None and (folder / "package.json").is_file():
        raw = _as_node_component(raw)
    result = import_descriptor(db, raw, name=name or folder.name, tenant_id=tenant_id, files=files)
    if components_dir is not None:
        with _session(db, tenant_id) as session:
            row = session.get(Component, result.component_id)
            if row is not None and row.runtime in ("python", "nodejs"):
                relative = component_code.code_path(tenant_id, row.name, row.version)
                row.entry = component_code.install_code(components_dir, relative, folder)
    return result


def _as_node_component(raw: bytes) -> Any:
    """An elastic.io / OIH folder (package.json, no image named) imported with its code: it runs on the Node.js
    runner of the process executor, so its catalog entry says so (and that it needs the network)."""
    try:
        document = load_descriptor_json(raw)
    except DescriptorError:
        return raw  # import_descriptor reports it
    if not isinstance(document, dict):
        return raw
    hub = document.get("x-hub") if isinstance(document.get("x-hub"), dict) else {}
    if hub.get("runtime") or hub.get("image") or hub.get("entry_point"):
        return document
    # elastic.io components are clients of other systems: they get the network (HUB_EGRESS_ALLOW does not
    # reach inside a runner; the sandbox's network namespace is all or nothing).
    return {**document, "x-hub": {**hub, "runtime": "nodejs", "network": True}}


@dataclass(frozen=True)
class CatalogEntry:
    id: uuid.UUID
    name: str
    version: str
    title: str
    description: str
    scope: str  # "global" or "tenant"
    runtime: str
    triggers: int
    actions: int
    warnings: int
    icon: str


def _entry(row: Component) -> CatalogEntry:
    descriptor = row.descriptor or {}
    return CatalogEntry(
        id=row.id,
        name=row.name,
        version=row.version,
        title=row.title,
        description=row.description,
        scope="global" if row.tenant_id is None else "tenant",
        runtime=row.runtime,
        triggers=len(descriptor.get("triggers") or {}),
        actions=len(descriptor.get("actions") or {}),
        warnings=len(descriptor.get("x-hub-warnings") or []),
        icon=row.icon or DEFAULT_ICON,
    )


def list_components(db: Database, tenant_id: uuid.UUID, search: str = "") -> list[CatalogEntry]:
    """Global components and the tenant's own, the newest import of each name and scope first."""
    with tenant_session(db.sessions, tenant_id) as session:
        query = sa.select(Component).order_by(Component.created_at.desc())
        if search.strip():
            needle = f"%{search.strip().lower()}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(Component.title).like(needle), sa.func.lower(Component.name).like(needle)
                )
            )
        rows = session.scalars(query).all()
    seen: set[tuple[str, bool]] = set()
    entries = []
    for row in rows:
        key = (row.name, row.tenant_id is None)
        if key not in seen:
            seen.add(key)
            entries.append(_entry(row))
    return sorted(entries, key=lambda e: (e.title.lower(), e.scope))


def get_descriptor(session: Session, component_id: uuid.UUID) -> tuple[Component, Descriptor, list[str]]:
    row = session.get(Component, component_id)
    if row is None:
        raise NotFoundError("This component does not exist (or belongs to another tenant).")
    parsed = parse_descriptor(row.descriptor, name=row.name)
    return row, parsed.descriptor, list(row.descriptor.get("x-hub-warnings") or [])


def component_detail(
    db: Database, tenant_id: uuid.UUID, component_id: uuid.UUID
) -> tuple[Component, list[str]]:
    """A component the tenant sees (its own or a global one) with its descriptor's repair warnings."""
    with tenant_session(db.sessions, tenant_id) as session:
        row, _, warnings = get_descriptor(session, component_id)
        session.expunge(row)
        return row, warnings


def builtin_icon(name: str) -> str | None:
    return f"/components/{name}.svg" if (ICONS / f"{name}.svg").is_file() else None


def sync_builtins(db: Database) -> int:
    """Make the built-in library visible in the catalog as global components; returns rows written.

    Built-ins ship with the hub's code, so their rows follow the code (a flow cannot pin older code)."""
    written = 0
    with system_session(db.sessions) as session:
        rows = {
            row.name: row
            for row in session.scalars(
                sa.select(Component).where(Component.tenant_id.is_(None), Component.runtime == "builtin")
            )
        }
        for name, raw in builtin_descriptors().items():
            spec = builtin_registry().get(name)
            version = raw.get("version") or (spec.version if spec else "1.0.0")
            document = {**raw, "version": version, "x-hub": {**raw.get("x-hub", {}), "runtime": "builtin"}}
            parsed = parse_descriptor(document, name=name)
            digest = _digest(parsed.cleaned)
            descriptor = _stored(parsed.cleaned, digest, parsed.warnings)
            icon = builtin_icon(name)
            row = rows.get(name)
            if row is None:
                row = Component(tenant_id=None, name=name, runtime="builtin", entry=f"builtin:{name}")
                session.add(row)
            elif row.descriptor.get("x-hub-digest") == digest and row.icon == icon:
                continue
            row.version = parsed.descriptor.version
            row.icon = icon
            row.title = parsed.descriptor.title
            row.description = parsed.descriptor.description
            row.descriptor = descriptor
            written += 1
    return written


def _imports(*where: Any) -> sa.Select:
    """Imported components in the order a tenant resolves them: its own before global ones, the newest first."""
    return (
        sa.select(Component)
        .where(Component.runtime != "builtin", *where)
        .order_by(Component.tenant_id.is_(None), Component.created_at.desc())
    )


def latest_versions(db: Database, tenant_id: uuid.UUID, names: Iterable[str]) -> dict[str, Component]:
    """The newest import of each named (imported) component the tenant sees, as an unpinned flow resolves it."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    with tenant_session(db.sessions, tenant_id) as session:
        rows = session.scalars(_imports(Component.name.in_(wanted))).all()
        found: dict[str, Component] = {}
        for row in rows:
            found.setdefault(row.name, row)
        for row in found.values():
            session.expunge(row)
    return found


def component_version(db: Database, tenant_id: uuid.UUID, name: str, version: str) -> Component | None:
    with tenant_session(db.sessions, tenant_id) as session:
        row = session.scalar(_imports(Component.name == name, Component.version == version).limit(1))
        if row is not None:
            session.expunge(row)
    return row


class TenantCatalog:
    """Resolves component names for a tenant: the built-ins, then its own components, then global ones (the
    newest import of each). `imported` gives what a published flow version pins of each imported one."""

    def __init__(self, db: Database, tenant_id: uuid.UUID, pins: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.tenant_id = tenant_id
        # name -> version a flow's draft was designed with: that version, not the newest import, is resolved
        self.pins = dict(pins or {})
        self._found: dict[str, tuple[ComponentSpec, dict[str, Any]] | None] = {}

    def with_pins(self, pins: Mapping[str, str] | None) -> TenantCatalog:
        return TenantCatalog(self.db, self.tenant_id, pins) if pins else self

    def get(self, name: str) -> ComponentSpec | None:
        builtin = builtin_registry().get(name)
        if builtin is not None:
            return builtin
        found = self._lookup(name)
        return found[0] if found else None

    def imported(self, name: str) -> dict[str, Any] | None:
        """What a worker needs to resolve an imported component without SQL: version, runtime, descriptor."""
        found = self._lookup(name) if builtin_registry().get(name) is None else None
        return found[1] if found else None

    def _lookup(self, name: str) -> tuple[ComponentSpec, dict[str, Any]] | None:
        if name not in self._found:
            with tenant_session(self.db.sessions, self.tenant_id) as session:
                pinned = [Component.version == self.pins[name]] if name in self.pins else []
                row = session.scalar(_imports(Component.name == name, *pinned).limit(1))
                if row is None:
                    self._found[name] = None
                else:
                    pin = {
                        "version": row.version,
                        "runtime": row.runtime,
                        "entry": row.entry,
                        "descriptor": row.descriptor,
                    }
                    self._found[name] = (spec_from_pin(name, pin), pin)
        return self._found[name]


def delete_component(
    db: Database, tenant_id: uuid.UUID, component_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> str:
    """Delete one of the tenant's own components; refused while a flow's draft or published version uses it.

    Returns the deleted component's "name version"."""
    with tenant_session(db.sessions, tenant_id) as session:
        row = session.get(Component, component_id)
        if row is None:
            raise NotFoundError("This component does not exist (or belongs to another tenant).")
        if row.tenant_id is None:
            raise PermissionDeniedError("Global components are managed by the hub's administrators.")
        users = sorted(
            {
                flow.name
                for flow in session.scalars(sa.select(Flow))
                if any(n.get("component") == row.name for n in (flow.graph or {}).get("nodes", []))
            }
            | {
                name
                for name, pins in session.execute(
                    sa.select(Flow.name, FlowVersion.component_pins).join(
                        FlowVersion, FlowVersion.flow_id == Flow.id
                    )
                )
                if (pins or {}).get(row.name) == row.version
            }
        )
        if users:
            raise ValidationError(
                f"{row.name} {row.version} is used by these flows: {', '.join(users)}. Remove it from them first."
            )
        label = f"{row.name} {row.version}"
        session.delete(row)
        audit.record(
            session,
            "component.deleted",
            tenant_id=tenant_id,
            actor_user_id=user_id,
            target_type="component",
            target_id=component_id,
            name=label,
        )
    return label


def credential_components(db: Database, tenant_id: uuid.UUID) -> list[tuple[str, str, bool]]:
    """(name, title, has OAuth2 settings) of the components a credential can be made for: those that declare
    credential fields or an OAuth2 block."""
    found: dict[str, tuple[str, str, bool]] = {}
    with tenant_session(db.sessions, tenant_id) as session:
        rows = session.scalars(sa.select(Component).order_by(Component.created_at.desc()))
        for row in rows:
            credentials = (row.descriptor or {}).get("credentials") or {}
            if row.name in found or not isinstance(credentials, dict):
                continue
            if credentials.get("fields") or credentials.get("oauth2"):
                found[row.name] = (row.name, row.title, bool(credentials.get("oauth2")))
    return sorted(found.values(), key=lambda c: c[1].lower())
