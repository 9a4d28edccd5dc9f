"""An HTTP request to a webhook, turned into the trigger message: method, path suffix, query, headers and body
(JSON, form, multipart, text; anything else kept as a binary attachment)."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson


class BadRequest(Exception):
    """The body does not match its Content-Type (answered 400, nothing is started)."""


@dataclass(slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes
    filename: str | None = None


@dataclass(slots=True)
class Parsed:
    body: Any = None
    attachments: list[Attachment] = field(default_factory=list)


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _query(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    pairs = parse_qs(raw.decode("latin-1"), keep_blank_values=True)
    return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}


def parse_body(content_type: str, body: bytes) -> Parsed:
    if not body:
        return Parsed()
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return Parsed(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not valid JSON ({exc})") from None
    if media == "application/x-www-form-urlencoded":
        return Parsed(_query(body))
    if media == "multipart/form-data":
        return _multipart(content_type, body)
    if media.startswith("text/") or media in ("application/xml", "application/x-ndjson"):
        try:
            return Parsed(body.decode(_charset(content_type)))
        except (LookupError, UnicodeDecodeError):
            raise BadRequest(f"the body is not text in the charset {_charset(content_type)!r}") from None
    if not media:  # no Content-Type: JSON if it is JSON, else bytes
        try:
            return Parsed(orjson.loads(body))
        except orjson.JSONDecodeError:
            pass
    return Parsed(None, [Attachment("body", media or "application/octet-stream", body)])


def _multipart(content_type: str, body: bytes) -> Parsed:
    if "boundary=" not in content_type:
        raise BadRequest("multipart/form-data without a boundary")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart() or message.defects:
        raise BadRequest("the multipart body is malformed")
    fields: dict[str, Any] = {}
    attachments = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            attachments.append(Attachment(name, part.get_content_type(), payload, filename))
            continue
        try:
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        except LookupError:
            raise BadRequest(f"field {name!r}: unknown charset {part.get_content_charset()!r}") from None
        if name in fields:  # repeated field: a list, as in the urlencoded form
            previous = fields[name]
            fields[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            fields[name] = text
    return Parsed(fields, attachments)


def trigger_data(
    method: str, suffix: str, query_string: bytes, headers: dict[str, str], body: Any
) -> dict[str, Any]:
    return {
        "method": method,
        "path": suffix,
        "query": _query(query_string),
        "headers": headers,
        "body": body,
    }
