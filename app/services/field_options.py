"""Choices of a dynamic select (a field whose `model` names a function of the component): the function runs in
the component's runner with the step's fields and the chosen credential, as elastic.io's sailor calls it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.errors import NotFoundError, ValidationError
from app.services.credentials import visible_credential
from app.services.field_values import EMPTY
from app.services.members import EDITORS, require_role
from app.services.plans import TenantCredentials, runnable_here
from app.storage.db import Database
from app.storage.scoping import tenant_session
from app.vault.store import Vault
from runtime.components.descriptor import parse_descriptor
from runtime.components.options import OptionsError
from runtime.components.spec import ComponentResolver
from runtime.executors.process import ProcessExecutor
from runtime.flows.compiler import credential_problems
from runtime.flows.schema import Node
from runtime.steps.credentials import redact, secret_strings


def field_options(
    db: Database,
    vault: Vault,
    components: ComponentResolver,
    runners: Mapping[str, ProcessExecutor],
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    component: str,
    function: str,
    field_name: str,
    fields: dict[str, Any],
    credential_id: str | None,
) -> dict[str, str]:
    """value -> label. ValidationError says what to do first (choose a credential, fill a field it needs) or
    what the component answered, with the credential's secrets masked."""
    spec = components.get(component)
    if spec is None:
        raise NotFoundError(f"The component {component!r} is not in this tenant's catalog.")
    descriptor = parse_descriptor(spec.descriptor, name=component).descriptor
    found = next((f for f in descriptor.functions if f.id == function), None)
    field = next((f for f in (found.fields if found else []) if f.name == field_name), None)
    if field is None or not field.options_function:
        raise ValidationError(f"{field_name!r} of {spec.title} does not get its choices from the component.")
    missing = [name for name in field.require if fields.get(name) in EMPTY]
    if missing:
        raise ValidationError(
            f"Fill in {', '.join(missing)} and apply, then load the choices of {field.label}."
        )
    step = spec.function(function)
    kinds = step.credential_kinds if step is not None else ()
    if problem := runnable_here(spec, tenant_id):
        raise ValidationError(f"The choices of {field.label} cannot be listed: {problem}.")
    executor = runners.get("docker" if spec.runtime == "docker" else "process")
    if executor is None:
        raise ValidationError(f"The choices of {field.label} come from {spec.title}'s container, and this hub has "
                              "no docker executor (HUB_EXECUTOR=docker).")  # fmt: skip
    credential: dict[str, Any] = {}
    with tenant_session(db.sessions, tenant_id) as session:
        require_role(session, user_id, EDITORS, "load a component's choices")  # it runs the component's code
        if credential_id and step is not None:
            try:
                row = visible_credential(session, user_id, uuid.UUID(credential_id))
            except ValueError:
                raise NotFoundError("The chosen credential does not exist.") from None
            # The compiler's rules for a step's credential (its kind, its component): the secrets go to this
            # component's code only, exactly as when the step runs.
            node = Node(id="choices", component=component, function=function, credential_id=credential_id)
            if problems := credential_problems(node, step, TenantCredentials(session, user_id)):
                raise ValidationError(problems[0].message)
            credential = {k: v for k, v in vault.reveal(session, row).items() if k != "kind"}
    if kinds and not credential_id:
        raise ValidationError(
            f"Choose a credential first: {spec.title} lists the choices of {field.label} with it."
        )
    try:
        return executor.options(
            tenant_id.hex, spec.code, function, field.options_function, fields, credential
        )
    except OptionsError as exc:
        reason = redact(str(exc), secret_strings(credential))
        raise ValidationError(f"{spec.title} could not list the choices of {field.label}: {reason}") from None
