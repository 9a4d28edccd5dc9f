"""The envelope: everything a worker needs to run one step for one message, serialised compactly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class Envelope:
    tenant: str
    flow: str
    version: str
    run: str
    step: str
    mid: str  # stable message id: the same for every redelivery and retry of this message
    attempt: int = 1
    body: dict[str, Any] | None = None  # {"data", "metadata", "attachments"}; None when stored aside
    body_ref: str | None = None  # the body's own key when it was larger than the inline limit
    trace: list[str] = field(default_factory=list)  # step ids the message went through
    created_ms: int = 0  # when the run's input was accepted, for end-to-end latency
    test: bool = False

    def encode(self, body_json: bytes | None = None) -> bytes:
        """`body_json`: the body, already serialised (the router has it so; spares encoding it twice)."""
        doc: dict[str, Any] = {
            "t": self.tenant,
            "f": self.flow,
            "v": self.version,
            "r": self.run,
            "s": self.step,
            "m": self.mid,
            "a": self.attempt,
            "c": self.created_ms,
        }
        if self.body_ref is not None:
            doc["br"] = self.body_ref
        else:
            doc["b"] = orjson.Fragment(body_json) if body_json is not None else self.body
        if self.trace:
            doc["tr"] = self.trace
        if self.test:
            doc["x"] = 1
        return orjson.dumps(doc)

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        doc = orjson.loads(raw)
        return cls(
            tenant=doc["t"],
            flow=doc["f"],
            version=doc["v"],
            run=doc["r"],
            step=doc["s"],
            mid=doc["m"],
            attempt=doc.get("a", 1),
            body=doc.get("b"),
            body_ref=doc.get("br"),
            trace=doc.get("tr", []),
            created_ms=doc.get("c", 0),
            test=bool(doc.get("x")),
        )


def child_message_id(parent: str, step: str, route: int, index: int) -> str:
    """Deterministic: a step re-executed after a crash gives its outputs the same ids, so that the next step
    can recognise a duplicate."""
    digest = hashlib.blake2b(f"{parent}|{step}|{route}|{index}".encode(), digest_size=12).hexdigest()
    return digest
