"""A flow's document and its compiled plan, as the services see them (shared by flows, runs and webhooks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.errors import FlowInvalidError, NotFoundError
from app.services.catalog import IMAGE_OWNER
from app.storage.db import Database
from app.storage.models import Credential, Flow, FlowVersion
from app.storage.scoping import tenant_session
from runtime.components.spec import ComponentResolver, ComponentSpec
from runtime.flows.compiler import ExecutionPlan, FlowValidationError, compile_flow


@dataclass(frozen=True)
class TenantCredentials:
    """The compiler's view of the vault: which kind a credential is, for `user` (None: not usable by them).

    Shared credentials of the tenant are usable by every member; a personal one only by its owner. `user` is
    who saves the version (or who saved it, when a saved version is compiled again to run it)."""

    session: Session
    user: uuid.UUID | None = None

    def _usable(self, credential_id: str) -> Any:
        try:
            key = uuid.UUID(credential_id)
        except ValueError:
            return None
        found = self.session.execute(
            sa.select(Credential.kind, Credential.owner_user_id, Credential.component_name).where(
                Credential.id == key
            )
        ).first()
        if found is None or (found.owner_user_id is not None and found.owner_user_id != self.user):
            return None
        return found

    def kind_of(self, credential_id: str) -> str | None:
        found = self._usable(credential_id)
        return found.kind if found else None

    def component_of(self, credential_id: str) -> str | None:
        found = self._usable(credential_id)
        return found.component_name if found else None


def flow_document(flow: Flow | FlowVersion) -> dict[str, Any]:
    return {**(flow.graph or {}), "trigger": flow.trigger or {}}


def get_flow(session: Session, flow_id: uuid.UUID, *, lock: bool = False) -> Flow:
    """`lock`: hold the row until the transaction ends (PostgreSQL), so that changes to the same flow's routes
    happen one after the other."""
    flow = session.get(Flow, flow_id, with_for_update=lock or None)
    if flow is None:
        raise NotFoundError("This flow does not exist (or belongs to another tenant).")
    return flow


def pinned(components: ComponentResolver, document: dict[str, Any]) -> ComponentResolver:
    """The resolver for this document: imported components at the versions it pins (see TenantCatalog)."""
    pin = getattr(components, "with_pins", None)
    return pin(document.get("pins")) if pin is not None and document.get("pins") else components


def imported_components(components: ComponentResolver, plan: ExecutionPlan) -> dict[str, Any]:
    """The imported components the plan uses, as a published version carries them to the workers (a resolver
    that knows them says so via `imported`): workers run exactly these, without SQL."""
    describe = getattr(components, "imported", None)
    if describe is None:
        return {}
    pins = {step.component.name: describe(step.component.name) for step in plan.steps.values()}
    return {name: pin for name, pin in pins.items() if pin is not None}


def compile_document(
    document: dict[str, Any], components: ComponentResolver, credentials: TenantCredentials
) -> ExecutionPlan:
    components = pinned(components, document)
    try:
        return compile_flow(document, components, credentials)
    except FlowValidationError as exc:
        raise FlowInvalidError(f"The flow cannot run: {exc}", exc.problems) from None


def current_plan(
    db: Database, components: ComponentResolver, tenant_id: uuid.UUID, flow_id: uuid.UUID
) -> tuple[FlowVersion, ExecutionPlan]:
    """The flow's published version and its plan; NotFoundError when it was never published."""
    with tenant_session(db.sessions, tenant_id) as session:
        flow = get_flow(session, flow_id)
        if flow.current_version_id is None:
            raise NotFoundError(f"{flow.name!r} has no published version yet; publish it before running it.")
        version = session.get(FlowVersion, flow.current_version_id)
        assert version is not None
        plan = compile_document(
            flow_document(version), components, TenantCredentials(session, version.created_by)
        )
    return version, plan


def runnable_here(component: ComponentSpec, tenant_id: uuid.UUID) -> str | None:
    """Why this tenant may not run the component's code at all (None: it may): an imported component whose code
    was never installed, or an image another tenant added (its registry login, not this tenant's, pulled it).
    Activation, test runs and a dynamic select's choices all ask before they start a runner."""
    owner = (component.descriptor.get("x-hub") or {}).get(IMAGE_OWNER)
    if component.runtime in ("python", "nodejs") and not component.code.startswith("folder:"):
        return (f"the code of {component.title!r} was not imported with it; import the component's folder "
                "(`hub component import FOLDER`)")  # fmt: skip
    if component.runtime == "docker" and owner not in ("global", tenant_id.hex):
        return (f"{component.title!r} names the image {component.code!r}, which this tenant has not added: add it "
                "by reference (Catalog, or `hub component add-image`), so that your registry login decides whether "
                "you may pull it")  # fmt: skip
    return None
