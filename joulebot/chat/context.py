"""Where a new question hangs in a conversation, built from the exchanges history stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from joulebot.exchange import Request, Turn

if TYPE_CHECKING:  # `joulebot ask` builds a Context without importing the history store
    from joulebot.history.tables import Exchange


@dataclass
class Context:
    """Where a new question hangs in a conversation: what the model will receive before it."""

    conversation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_id: int | None = None
    turns: list[Turn] = field(default_factory=list)
    turn: int = 1
    told_forgotten: bool = False
    fixed_system: bool = False  # a retry asks with the system prompt of the answer it retries
    system: str | None = None

    @classmethod
    def after(cls, thread: list[Exchange]) -> Context:
        """Continuing from the last exchange of `thread` (oldest first)."""
        last = thread[-1]
        turns = [
            turn
            for e in thread
            for turn in (Turn(role="user", content=e.prompt), Turn(role="assistant", content=e.answer))
        ]
        told = bool(last.result.get("dropped_turns")) or bool(last.result.get("request", {}).get("told_forgotten"))
        return cls(last.conversation_id or uuid.uuid4().hex, last.id, turns, last.turn + 1, told)

    def apply(self, request: Request, system: str | None) -> Request:
        """The request continuing this conversation (with this system prompt, unless a retry fixed it)."""
        return request.model_copy(
            update={
                "system": self.system if self.fixed_system else system,
                "turns": self.turns,
                "conversation_id": self.conversation_id,
                "parent_id": self.parent_id,
                "turn": self.turn,
                "told_forgotten": self.told_forgotten,
            }
        )
