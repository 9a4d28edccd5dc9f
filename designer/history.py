"""Undo and redo for the designer: snapshots of the draft before each edit, as plain data a state can hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIMIT = 100  # edits one can undo; a 200-node draft is ~60 KB, so the worst case stays a few MB per editor


@dataclass
class History:
    past: list[dict[str, Any]] = field(default_factory=list)
    future: list[dict[str, Any]] = field(default_factory=list)

    def record(self, before: dict[str, Any]) -> None:
        """Call with the draft as it was, before an edit changes it. A new edit forgets what was undone."""
        self.past = [*self.past[-(LIMIT - 1) :], before]
        self.future = []

    def undo(self, current: dict[str, Any]) -> dict[str, Any] | None:
        if not self.past:
            return None
        *self.past, previous = self.past
        self.future = [*self.future, current]
        return previous

    def redo(self, current: dict[str, Any]) -> dict[str, Any] | None:
        if not self.future:
            return None
        *self.future, following = self.future
        self.past = [*self.past, current]
        return following
