"""Fitting a conversation into the model's context window: earlier images go first, then the oldest turns.

A conversation is never refused for being long: the system prompt and the new question (with its
images) always go. An image shown again costs as many tokens as a long message, so the earlier
turns' images are left out first, oldest first; then earlier turns, a question with its answer at
a time, until prompt and answer fit the window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from joulebot.exchange import Request, Turn
from joulebot.models.runner import Messages


class Fitted(NamedTuple):
    messages: Messages  # what the model receives
    dropped_turns: int  # earlier turns left out
    dropped_images: int  # images of the earlier turns left out (of the turns that stayed or went)
    context_images: int  # images of the earlier turns the model receives again


def fit(
    request: Request,
    window: int,
    count: Callable[[Messages], int],
    bound: Callable[[Messages], int] | None = None,
) -> Fitted:
    """What fits a window of `window` tokens (prompt + answer).

    `bound`, if given, is a cheap upper bound of `count`: messages that fit by it are not counted."""
    budget = window - request.max_tokens
    turns = list(request.turns)
    shown = sum(len(turn.images) for turn in turns)

    def fitted(kept: list[Turn], dropped: int) -> Fitted:
        messages = request.model_copy(update={"turns": kept}).messages()
        again = sum(len(turn.images) for turn in kept)
        return Fitted(messages, dropped, shown - again, again)

    def fits(kept: list[Turn]) -> bool:
        messages = request.model_copy(update={"turns": kept}).messages()
        return (bound is not None and bound(messages) <= budget) or count(messages) <= budget

    while any(turn.images for turn in turns):
        if fits(turns):
            return fitted(turns, 0)
        oldest = next(i for i, turn in enumerate(turns) if turn.images)
        turns[oldest] = turns[oldest].model_copy(update={"images": []})
    dropped = 0
    while turns:
        if fits(turns):
            return fitted(turns, dropped)
        step = 2 if len(turns) > 1 and turns[0].role == "user" and turns[1].role == "assistant" else 1
        turns, dropped = turns[step:], dropped + step
    return fitted([], dropped)
