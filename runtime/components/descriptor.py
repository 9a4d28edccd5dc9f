"""Reading elastic.io / Open Integration Hub `component.json` descriptors, as they are found in the wild.

Real descriptors are messy: capitalised keys ("Note"), a field's attributes written where its name should be,
JSON schemas in draft-3 style (`"required": true` on a property), metadata given inline or as a path with or
without "./", Java class names as `main`. `parse_descriptor` keeps what it can understand, says what it had
to change or skip in a warning that names the key, and raises DescriptorError only for what makes the
component unusable (not an object, no triggers or actions, sections of the wrong type).

The result is twofold: `Descriptor`, a typed model for the catalog and the forms, and `cleaned`, the same
document in component.json shape with every repair applied (what the runtime reads, and what is stored).
"""

from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# The views the forms know; the composite elastic.io widgets get a JSON editor (see `form_kind`).
SIMPLE_VIEWS = {
    "TextFieldView": "text",
    "TextFieldWithNoteView": "text",
    "TextAreaView": "textarea",
    "TextAreaWithNoteView": "textarea",
    "SelectView": "select",
    "SelectPropertyView": "select",
    "MultiSelectView": "multiselect",
    "CheckBoxView": "checkbox",
    "PasswordFieldView": "password",
    "CodeFieldView": "code",
    "JSONataView": "jsonata",
    "OAuthFieldView": "oauth",
}
COMPOSITE_VIEWS = {
    "HTTPAuthView",
    "RESTAPIView",
    "CSVReadView",
    "CSVWriteView",
    "InMetadataExtensionView",
    "WebhookAuthView",
}
FIELD_KEYS = {
    "viewClass",
    "label",
    "required",
    "model",
    "prompt",
    "placeholder",
    "note",
    "help",
    "order",
    "require",
}
FUNCTION_KEYS = {
    "title",
    "main",
    "fields",
    "metadata",
    "description",
    "help",
    "dynamicMetadata",
    "type",
    "deprecated",
}
TOP_KEYS = {
    "title",
    "description",
    "version",
    "docsUrl",
    "credentials",
    "triggers",
    "actions",
    "authClientTypes",
    "buildType",
    "envVars",
    "service",
    "url",
    "useOAuthClient",
    "fields",
    "x-hub",
    "icon",
    "tags",
    "x-hub-digest",  # written by the catalog when it stores a descriptor
    "x-hub-warnings",
}


class DescriptorError(ValueError):
    """The descriptor cannot be used at all; the message names the key."""


class FieldDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    view_class: str  # as declared
    kind: str  # how the form renders it: text, textarea, select, multiselect, checkbox, password, code, ...
    required: bool = False
    placeholder: str = ""
    note: str = ""
    help: str = ""
    prompt: str = ""
    options: dict[str, str] | None = None  # a static model
    options_function: str | None = None  # a dynamic model: the component function that returns the options
    require: list[str] = []  # fields whose values the dynamic model needs first
    order: int | None = None
    unknown_view: bool = False


class FunctionDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["trigger", "action"]
    title: str
    description: str = ""
    help_link: str = ""
    main: str = ""
    trigger_type: Literal["polling", "webhook", "manual"] | None = None  # manual: the hub's own
    fields: list[FieldDef] = []
    metadata_in: dict[str, Any] | None = None
    metadata_out: dict[str, Any] | None = None
    dynamic_metadata: bool = False
    deprecated: bool = False


class Descriptor(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    description: str = ""
    version: str = "0.0.0"
    docs_url: str = ""
    auth_client_types: list[str] = []
    credential_fields: list[FieldDef] = []
    oauth2: dict[str, Any] | None = None
    functions: list[FunctionDef] = []
    runtime: Literal["builtin", "python", "nodejs", "docker"] = "docker"
    entry: str = ""  # python entry point or docker image reference
    resources: dict[str, Any] = {}

    @property
    def triggers(self) -> list[FunctionDef]:
        return [f for f in self.functions if f.kind == "trigger"]

    @property
    def actions(self) -> list[FunctionDef]:
        return [f for f in self.functions if f.kind == "action"]


@dataclass
class ParsedDescriptor:
    descriptor: Descriptor
    cleaned: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    version_declared: bool = True


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):  # {"description": ..., "link": ...} or {"en": ...}
        for key in ("description", "en", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        return ""
    return str(value)


# What metadata files may add to a descriptor in all: each reference is a copy in the stored document, so a
# file named by many functions must not multiply into gigabytes.
METADATA_BUDGET_BYTES = 4 * 1024 * 1024


class _Parser:
    def __init__(self, files: Mapping[str, str | bytes]) -> None:
        self.files = {_normal_path(str(k)): v for k, v in files.items()}
        # Uploaded files arrive by name only: a path in the descriptor finds them by its last part.
        names: dict[str, list[str]] = {}
        for path in self.files:
            names.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        self.by_name = {name: self.files[paths[0]] for name, paths in names.items() if len(paths) == 1}
        self.metadata_bytes = 0
        self.function_ids: set[str] = set()
        self.warnings: list[str] = []

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")

    # -- fields -------------------------------------------------------------------------------------------
    def fields(self, where: str, raw: Any) -> tuple[list[FieldDef], dict[str, Any]]:
        if raw in (None, {}):
            return [], {}
        if not isinstance(raw, Mapping):
            self.warn(where, f"must be an object of fields, got {type(raw).__name__}; ignored")
            return [], {}
        parsed, cleaned = [], {}
        for name, spec in raw.items():
            key = f"{where}.{name}"
            if not isinstance(spec, Mapping):
                hint = " (a field attribute where a field name belongs?)" if name in FIELD_KEYS else ""
                self.warn(key, f"is not a field definition (an object){hint}; skipped")
                continue
            definition, clean = self.field(key, str(name), spec)
            parsed.append(definition)
            cleaned[name] = clean
        parsed.sort(key=lambda f: (f.order is None, f.order if f.order is not None else 0))
        return parsed, cleaned

    def field(self, where: str, name: str, raw: Mapping[str, Any]) -> tuple[FieldDef, dict[str, Any]]:
        spec: dict[str, Any] = {}
        for key, value in raw.items():
            canonical = next((k for k in FIELD_KEYS if k.lower() == str(key).lower()), None)
            if canonical is None:
                self.warn(where, f"unknown key {key!r} ignored")
                continue
            if canonical != key:
                self.warn(where, f"key {key!r} read as {canonical!r}")
            spec[canonical] = value
        view = str(spec.get("viewClass") or "TextFieldView")
        unknown = view not in SIMPLE_VIEWS and view not in COMPOSITE_VIEWS
        if unknown:
            self.warn(where, f"unknown viewClass {view!r}: shown as a text field")
        kind = SIMPLE_VIEWS.get(view, "json" if view in COMPOSITE_VIEWS else "text")
        required = spec.get("required", False)
        if not isinstance(required, bool):
            coerced = str(required).strip().lower() in ("true", "1", "yes")
            self.warn(where, f"required should be true or false, read {required!r} as {str(coerced).lower()}")
            required = coerced
        options, function = None, None
        model = spec.get("model")
        if isinstance(model, Mapping):
            options = {str(k): _text(v) for k, v in model.items()}
        elif isinstance(model, list):
            options = {str(v): str(v) for v in model}
        elif isinstance(model, str) and model:
            function = model
        elif model is not None:
            self.warn(
                where, f"model must be an object of options or a function name, got {type(model).__name__}"
            )
        if kind in ("select", "multiselect") and options is None and function is None:
            self.warn(where, "a select without a model: shown as a text field")
            kind = "text"
        order = spec.get("order")
        if order is not None and not isinstance(order, int):
            try:
                order = int(order)
            except (TypeError, ValueError, OverflowError):
                self.warn(where, f"order {order!r} is not a number; ignored")
                order = None
        require = spec.get("require") or []
        if not isinstance(require, list):
            require = [require]
        definition = FieldDef(
            name=name,
            label=_text(spec.get("label")) or name,
            view_class=view,
            kind=kind,
            required=required,
            placeholder=_text(spec.get("placeholder")),
            note=_text(spec.get("note")),
            help=_text(spec.get("help")),
            prompt=_text(spec.get("prompt")),
            options=options,
            options_function=function,
            require=[str(r) for r in require],
            order=order,
            unknown_view=unknown,
        )
        clean = {**spec, "viewClass": view, "required": required}
        if order is None:
            clean.pop("order", None)
        return definition, clean

    # -- metadata -----------------------------------------------------------------------------------------
    def schema(self, where: str, raw: Any) -> dict[str, Any] | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            path = _normal_path(raw)
            content = self.files.get(path)
            if content is None:
                content = self.by_name.get(path.rsplit("/", 1)[-1])
            if content is None:
                self.warn(where, f"metadata file {raw!r} was not provided; upload it with the descriptor")
                return None
            self.metadata_bytes += len(content)
            if self.metadata_bytes > METADATA_BUDGET_BYTES:
                raise DescriptorError(
                    f"{where}: the metadata files add up to more than {METADATA_BUDGET_BYTES // 1024 // 1024} MiB "
                    "in the descriptor (each reference is a copy)"
                )
            try:
                raw = json.loads(content)
            except (ValueError, RecursionError) as exc:
                self.warn(where, f"metadata file {raw!r} is not valid JSON ({exc}); ignored")
                return None
        if not isinstance(raw, Mapping):
            self.warn(where, f"metadata must be a JSON schema object, got {type(raw).__name__}; ignored")
            return None
        schema = copy.deepcopy(dict(raw))
        if _draft3_required(schema):
            self.warn(where, "draft-3 'required: true' on properties converted to a 'required' list")
        return schema

    # -- functions ----------------------------------------------------------------------------------------
    def functions(self, section: str, raw: Any) -> tuple[list[FunctionDef], dict[str, Any]]:
        if raw is None:
            return [], {}
        if not isinstance(raw, Mapping):
            raise DescriptorError(
                f"{section}: must be an object keyed by function id, got {type(raw).__name__}"
            )
        kind: Literal["trigger", "action"] = "trigger" if section == "triggers" else "action"
        parsed, cleaned = [], {}
        for function_id, spec in raw.items():
            where = f"{section}.{function_id}"
            if not isinstance(spec, Mapping):
                self.warn(where, "is not a function definition (an object); skipped")
                continue
            if str(function_id) in self.function_ids:
                # elastic.io keeps triggers and actions apart; a flow node names only the id, and gets the action.
                self.warn(where, "the same id is also a trigger: a flow node with this id runs the action")
            for key in spec:
                if key not in FUNCTION_KEYS and key != "x-hub":
                    self.warn(where, f"unknown key {key!r} ignored")
            fields, clean_fields = self.fields(f"{where}.fields", spec.get("fields"))
            metadata = spec.get("metadata") if isinstance(spec.get("metadata"), Mapping) else {}
            if spec.get("metadata") is not None and not isinstance(spec.get("metadata"), Mapping):
                self.warn(f"{where}.metadata", "must be an object with 'in' and/or 'out'; ignored")
            schema_in = self.schema(f"{where}.metadata.in", metadata.get("in"))
            schema_out = self.schema(f"{where}.metadata.out", metadata.get("out"))
            main = _text(spec.get("main"))
            if main and not main.endswith((".js", ".py")) and ":" not in main and "/" not in main:
                self.warn(
                    where,
                    f"main {main!r} looks like a class name (a Java component?): it runs only in its image",
                )
            trigger_type = None
            if kind == "trigger":
                declared = str(spec.get("type") or "polling").lower()
                if declared not in ("polling", "webhook", "manual"):
                    self.warn(
                        where,
                        f"trigger type {spec.get('type')!r} is not polling or webhook: taken as polling",
                    )
                    declared = "polling"
                trigger_type = declared
            definition = FunctionDef(
                id=str(function_id),
                kind=kind,
                title=_text(spec.get("title")) or str(function_id),
                description=_text(spec.get("description")) or _text(spec.get("help")),
                help_link=str(spec["help"].get("link", "")) if isinstance(spec.get("help"), Mapping) else "",
                main=main,
                trigger_type=trigger_type,  # type: ignore[arg-type]
                fields=fields,
                metadata_in=schema_in,
                metadata_out=schema_out,
                dynamic_metadata=bool(spec.get("dynamicMetadata")),
                deprecated=bool(spec.get("deprecated")),
            )
            parsed.append(definition)
            self.function_ids.add(str(function_id))
            clean = {k: v for k, v in spec.items() if k in FUNCTION_KEYS or k == "x-hub"}
            if "x-hub" in clean and not isinstance(clean["x-hub"], Mapping):
                self.warn(f"{where}.x-hub", "must be an object; ignored")
                del clean["x-hub"]
            clean["fields"] = clean_fields
            clean["title"] = definition.title
            if schema_in is not None or schema_out is not None:
                clean["metadata"] = {
                    k: v for k, v in (("in", schema_in), ("out", schema_out)) if v is not None
                }
            else:
                clean.pop("metadata", None)
            if trigger_type:
                clean["type"] = trigger_type
            cleaned[function_id] = clean
        return parsed, cleaned


def _normal_path(path: str) -> str:
    return posixpath.normpath(path.strip().lstrip("/")).removeprefix("./")


def _draft3_required(schema: Any) -> bool:
    """Turn draft-3 `required: true` flags on properties into draft-4 `required` lists, in place."""
    changed = False
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            required = [
                name
                for name, prop in properties.items()
                if isinstance(prop, dict) and prop.get("required") is True
            ]
            for prop in properties.values():
                if isinstance(prop, dict) and isinstance(prop.get("required"), bool):
                    prop.pop("required")
                    changed = True
            if required:
                existing = schema.get("required") if isinstance(schema.get("required"), list) else []
                schema["required"] = [*existing, *[n for n in required if n not in existing]]
        for value in schema.values():
            changed = _draft3_required(value) or changed
    elif isinstance(schema, list):
        for value in schema:
            changed = _draft3_required(value) or changed
    return changed


def parse_descriptor(
    raw: Any, *, name: str, files: Mapping[str, str | bytes] | None = None
) -> ParsedDescriptor:
    """Read a descriptor (already decoded JSON) for the component `name`; `files` maps relative paths to the
    contents of the metadata files that came with it."""
    if not isinstance(raw, Mapping):
        raise DescriptorError(f"the descriptor must be a JSON object, got {type(raw).__name__}")
    parser = _Parser(files or {})
    document: dict[str, Any] = {}
    for key, value in raw.items():
        canonical = next((k for k in TOP_KEYS if k.lower() == str(key).lower()), None)
        if canonical is None:
            parser.warn(str(key), "unknown top-level key ignored")
            continue
        if canonical != key:
            parser.warn(str(key), f"read as {canonical!r}")
        document[canonical] = value

    triggers, clean_triggers = parser.functions("triggers", document.get("triggers"))
    actions, clean_actions = parser.functions("actions", document.get("actions"))
    if not triggers and not actions:
        raise DescriptorError(
            "triggers/actions: the component has no usable trigger or action, so nothing can run"
        )

    credentials = document.get("credentials")
    credentials = {} if credentials is None else credentials
    if not isinstance(credentials, Mapping):
        raise DescriptorError(f"credentials: must be an object, got {type(credentials).__name__}")
    credential_fields, clean_credential_fields = parser.fields(
        "credentials.fields", credentials.get("fields")
    )
    oauth2 = credentials.get("oauth2")
    if oauth2 is not None and not isinstance(oauth2, Mapping):
        parser.warn("credentials.oauth2", "must be an object; ignored")
        oauth2 = None
    if isinstance(oauth2, Mapping):
        missing = [k for k in ("auth_uri", "token_uri") if not oauth2.get(k)]
        if missing:
            parser.warn("credentials.oauth2", f"missing {', '.join(missing)}: OAuth2 sign-in will not work")

    title = _text(document.get("title")).strip()
    if not title:
        parser.warn("title", f"missing: the component is called {name!r}")
        title = name
    declared = document.get("version")
    version = (
        str(declared).strip() if isinstance(declared, str | int | float) and declared is not False else ""
    )
    version = version[:100]
    version_declared = bool(version)
    if not version:
        parser.warn("version", "missing: taken as 0.0.0 (re-importing replaces this version)")
        version = "0.0.0"
    client_types = document.get("authClientTypes") or []
    if not isinstance(client_types, list):
        parser.warn("authClientTypes", "must be a list; ignored")
        client_types = []

    hub = document.get("x-hub") or {}
    if not isinstance(hub, Mapping):
        raise DescriptorError("x-hub: must be an object")
    kinds = hub.get("credential_kinds")
    if kinds is not None and not (isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)):
        parser.warn("x-hub.credential_kinds", "must be a list of credential kinds; read as none")
        hub = {k: v for k, v in hub.items() if k != "credential_kinds"}
        document["x-hub"] = hub
    runtime = str(hub.get("runtime") or ("python" if hub.get("entry_point") else "docker"))
    if runtime not in ("builtin", "python", "nodejs", "docker"):
        raise DescriptorError(f"x-hub.runtime: must be builtin, python, nodejs or docker, got {runtime!r}")
    entry = str(hub.get("entry_point") or hub.get("image") or "")
    if runtime == "docker" and hub.get("image") and hub.get("tag") and ":" not in entry.rsplit("/", 1)[-1]:
        entry = f"{entry}:{hub['tag']}"
    if runtime not in ("builtin", "nodejs") and not entry:  # a Node.js component's code comes with its folder
        parser.warn(
            "x-hub",
            "no image or entry point says how to run this component: flows using it cannot be activated until "
            "x-hub.image (or x-hub.entry_point) is set",
        )
    resources = hub.get("resources") if isinstance(hub.get("resources"), Mapping) else {}

    descriptor = Descriptor(
        name=name,
        title=title,
        description=_text(document.get("description")),
        version=version,
        docs_url=_text(document.get("docsUrl")),
        auth_client_types=[str(t) for t in client_types],
        credential_fields=credential_fields,
        oauth2=dict(oauth2) if isinstance(oauth2, Mapping) else None,
        functions=[*triggers, *actions],
        runtime=runtime,  # type: ignore[arg-type]
        entry=entry,
        resources=dict(resources),
    )
    stored_only = ("triggers", "actions", "credentials", "x-hub-digest", "x-hub-warnings")
    cleaned = {k: v for k, v in document.items() if k not in stored_only}
    cleaned.update(title=title, version=version)
    if clean_triggers:
        cleaned["triggers"] = clean_triggers
    if clean_actions:
        cleaned["actions"] = clean_actions
    if credentials:
        cleaned["credentials"] = {**credentials, "fields": clean_credential_fields}
    return ParsedDescriptor(descriptor, cleaned, parser.warnings, version_declared=version_declared)


def load_descriptor_json(text: str | bytes) -> Any:
    """Decode a component.json; a syntax error names the line and column."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DescriptorError(
            f"component.json is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise DescriptorError(f"component.json is not UTF-8 text ({exc.reason})") from None
    except RecursionError:
        raise DescriptorError("component.json is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise DescriptorError(f"component.json holds a value that cannot be read: {exc}") from None
