"""The message a step receives and emits (the elastic.io / OIH shape, Pythonic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    data: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # name -> {"ref": storage key, "size": bytes, "content_type": ...}: attachments travel by reference.
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"data": self.data}
        if self.metadata:
            body["metadata"] = self.metadata
        if self.attachments:
            body["attachments"] = self.attachments
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Message:
        return cls(
            data=body.get("data"),
            metadata=body.get("metadata") or {},
            attachments=body.get("attachments") or {},
        )
