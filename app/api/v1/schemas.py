"""The API's request and response bodies. Responses are built from the services' views (`from_attributes`), so a
field the service does not expose (a secret value) cannot reach a response by accident."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.flows.schema import FlowGraph


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(description="A stable, machine-readable reason, e.g. not_found, forbidden, invalid.")
    message: str = Field(description="What went wrong and what to do, for a person.")


# -- flows --------------------------------------------------------------------------------------------------
class FlowCreate(In):
    name: str = Field(min_length=1, max_length=200)
    graph: FlowGraph | None = None


class FlowPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class DraftSave(In):
    graph: FlowGraph
    lock_version: int = Field(description="The lock_version the change is based on; a stale one is a 409.")


class PublishRequest(In):
    note: str = Field(default="", max_length=2000)
    lock_version: int | None = Field(default=None, description="Publish only if the draft is still this one.")


class FlowSummaryOut(Out):
    id: uuid.UUID
    name: str
    status: str
    trigger: str
    version: int = Field(description="The published version's number; 0 when never published.")
    created_at: dt.datetime
    updated_at: dt.datetime
    last_run_status: str
    last_run_at: dt.datetime | None


class FlowOut(Out):
    id: uuid.UUID
    name: str
    description: str
    status: str
    status_reason: str | None
    trigger: dict[str, Any]
    lock_version: int
    version: int | None = Field(description="The published version's number; null when never published.")
    graph: dict[str, Any] = Field(description="The draft being edited (see the FlowGraph schema).")
    created_at: dt.datetime
    updated_at: dt.datetime


class ProblemOut(Out):
    code: str
    message: str
    node_id: str | None


class DraftOut(Out):
    lock_version: int
    problems: list[ProblemOut] = Field(description="Why the draft cannot be published yet (empty: it can).")


class VersionOut(Out):
    number: int
    author: str
    saved_at: dt.datetime
    note: str
    current: bool


class VersionDetail(Out):
    number: int
    graph: dict[str, Any]


# -- runs ---------------------------------------------------------------------------------------------------
class RunStart(In):
    data: Any = Field(default=None, description="The first message's body.")


class RunStarted(Out):
    run_id: uuid.UUID


class ReplayRequest(In):
    from_failed_step: bool = False


class RunOut(Out):
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    status: str
    trigger: str
    test: bool
    started_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None
    replay_of_id: uuid.UUID | None
    duration_ms: float | None


class RunPageOut(Out):
    runs: list[RunOut]
    older: str | None = Field(description="Pass as `older_than` for the next page back in time.")
    newer: str | None = Field(description="Pass as `newer_than` for the page before.")


class StepOut(Out):
    id: uuid.UUID
    step_id: str
    component: str
    function: str
    attempt: int
    status: str
    executor: str
    instance: str | None
    started_at: dt.datetime
    duration_ms: float | None
    input: Any
    output: Any
    truncated: bool
    error: str | None


class RunDetailOut(Out):
    run: RunOut
    version: int | None
    steps: list[StepOut]
    replays: list[RunOut]


class LogLineOut(Out):
    id: int
    step_id: str | None
    ts: dt.datetime
    level: str
    message: str


class DeadLetterOut(Out):
    id: str
    flow_id: uuid.UUID
    run_id: uuid.UUID
    step_id: str
    attempt: int
    error: str
    failed_at: dt.datetime
    data: Any


# -- components ---------------------------------------------------------------------------------------------
class ComponentOut(Out):
    id: uuid.UUID
    name: str
    version: str
    title: str
    description: str
    scope: str
    runtime: str
    triggers: int
    actions: int
    warnings: int
    icon: str


class ComponentDetail(Out):
    id: uuid.UUID
    name: str
    version: str
    scope: Literal["global", "tenant"]
    descriptor: dict[str, Any]
    warnings: list[str]


class ComponentImport(In):
    name: str | None = Field(default=None, max_length=200, description="Catalog name; else from the title.")
    descriptor: dict[str, Any] = Field(description="An elastic.io / OIH component.json document.")


class ImportOut(Out):
    component_id: uuid.UUID
    name: str
    version: str
    warnings: list[str]
    unchanged: bool


# -- credentials --------------------------------------------------------------------------------------------
class UsageOut(Out):
    flow_id: uuid.UUID
    flow_name: str
    active: bool


class CredentialOut(Out):
    id: uuid.UUID
    name: str
    kind: str
    component_name: str | None
    personal: bool
    status: str
    status_reason: str | None
    account: str
    last_used_at: dt.datetime | None
    updated_at: dt.datetime
    values: dict[str, str] = Field(description="Values that may be shown again; every secret is masked.")
    used_by: list[UsageOut]


class CredentialCreate(In):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=50, description="e.g. fields, api_key, basic, bearer")
    component_name: str | None = Field(default=None, max_length=200)
    values: dict[str, Any] = Field(default_factory=dict)
    personal: bool = False


class CredentialPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    values: dict[str, Any] | None = Field(
        default=None, description="Only the fields named change; secret fields not named keep their value."
    )


# -- webhooks -----------------------------------------------------------------------------------------------
class WebhookUrlOut(Out):
    kind: str
    url: str
    created_at: dt.datetime


class WebhooksOut(Out):
    production: WebhookUrlOut | None
    test: WebhookUrlOut | None
    settings: dict[str, Any]
    active: bool
    problem: str | None


class WebhookSettingsIn(In):
    settings: dict[str, Any] = Field(description="mode, timeout_s, max_body_kb, rate_per_s, burst, auth, ...")
    secret: dict[str, str] | None = Field(default=None, description="A new secret for the chosen protection.")


WebhookKindParam = Literal["production", "test"]


# -- templates ----------------------------------------------------------------------------------------------
class SlotOut(Out):
    node_id: str
    node_name: str
    component: str
    kind: str
    component_name: str | None
    label: str


class TemplateOut(Out):
    id: uuid.UUID
    name: str
    description: str
    scope: Literal["global", "tenant"]
    trigger: str
    steps: int
    slots: list[SlotOut] = Field(description="The credentials a flow made from it needs, by step.")
    created_by: str
    updated_at: dt.datetime


class TemplateDetail(TemplateOut):
    graph: dict[str, Any]


class TemplateFromFlow(In):
    flow_id: uuid.UUID
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=10_000)


class DocumentIn(In):
    document: dict[str, Any] = Field(description="A flow or template export (format integration-hub.*/1).")


class Instantiate(In):
    name: str = Field(default="", max_length=200)
    credentials: dict[str, str] = Field(
        default_factory=dict, description="Step id -> the id of this tenant's credential to use there."
    )
    leave_unmapped: bool = Field(
        default=False, description="Make the flow even if some steps get no credential."
    )


class FlowImport(DocumentIn, Instantiate):
    pass


class InstantiatedOut(Out):
    flow_id: uuid.UUID
    unmapped: list[SlotOut]
