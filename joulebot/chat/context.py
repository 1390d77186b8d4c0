"""Where a new question hangs in a conversation, built from the exchanges history stored.

An earlier question's images are shown to the model again where they were kept (KEEP_IMAGES): history
says what each was, the kept file is the image."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from joulebot.attachments.kept import KeptImages
from joulebot.attachments.parts import ImageInput, as_stored
from joulebot.exchange import Request, Turn

if TYPE_CHECKING:  # `joulebot ask` builds a Context without importing the history store
    from joulebot.history.tables import Exchange

# An earlier exchange's images as the model can see them again (those still kept; [] for none)
ShowAgain = Callable[["Exchange"], list[ImageInput]]


def kept_images(kept: KeptImages | None, platform: str, owner: Callable[[Exchange], str | None]) -> ShowAgain:
    """What `Context.after` shows again: each exchange's images kept for whoever asked it (`owner`)."""

    def show_again(exchange: Exchange) -> list[ImageInput]:
        asker = owner(exchange) if kept is not None and exchange.images else None
        return kept.load(platform, asker, as_stored(exchange.images)) if kept is not None and asker else []

    return show_again


class ImagesGone(ValueError):
    """An earlier question's images that cannot all be shown again; `str()` says why, in a few words."""


def images_again(kept: KeptImages | None, show_again: ShowAgain, exchange: Exchange) -> list[ImageInput]:
    """Every image of `exchange`'s question with its pixels (a retry asks with all of them), or ImagesGone."""
    images = show_again(exchange)
    if len(images) < len(as_stored(exchange.images)):
        raise ImagesGone("images are not kept here" if kept is None else "it is no longer kept")
    return images


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
    images_not_kept: int = 0  # earlier questions' images that cannot be shown again
    told_images_left_out: bool = False

    @classmethod
    def after(cls, thread: list[Exchange], show_again: ShowAgain | None = None) -> Context:
        """Continuing from the last exchange of `thread` (oldest first), each question with its images
        where `show_again` finds them."""
        last = thread[-1]
        turns, missing = [], 0
        for e in thread:
            images = show_again(e) if show_again is not None and e.images else []
            missing += len(e.images or []) - len(images)
            turns += [Turn(role="user", content=e.prompt, images=images), Turn(role="assistant", content=e.answer)]
        result, request = last.result, last.result.get("request", {})
        told = bool(result.get("dropped_turns")) or bool(request.get("told_forgotten"))
        context = cls(last.conversation_id or uuid.uuid4().hex, last.id, turns, last.turn + 1, told)
        context.images_not_kept = missing
        context.told_images_left_out = any(
            (result.get("dropped_images"), request.get("images_not_kept"), request.get("told_images_left_out"))
        )
        return context

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
                "images_not_kept": self.images_not_kept,
                "told_images_left_out": self.told_images_left_out,
            }
        )
