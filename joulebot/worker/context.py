"""Fitting a conversation into the model's context window: the oldest turns go first.

A conversation is never refused for being long: the system prompt and the new
question always go; earlier turns are dropped oldest first, a question with its
answer at a time, until prompt and answer fit the window.
"""

from __future__ import annotations

from collections.abc import Callable

from joulebot.exchange import Request
from joulebot.models.runner import Messages


def fit(
    request: Request,
    window: int,
    count: Callable[[Messages], int],
    bound: Callable[[Messages], int] | None = None,
) -> tuple[Messages, int]:
    """(messages to send, earlier turns dropped) for a window of `window` tokens (prompt + answer).

    `bound`, if given, is a cheap upper bound of `count`: messages that fit by it are not counted."""
    budget = window - request.max_tokens
    turns = list(request.turns)
    dropped = 0
    while turns:
        messages = request.model_copy(update={"turns": turns}).messages()
        if (bound is not None and bound(messages) <= budget) or count(messages) <= budget:
            return messages, dropped
        step = 2 if len(turns) > 1 and turns[0].role == "user" and turns[1].role == "assistant" else 1
        turns, dropped = turns[step:], dropped + step
    return request.model_copy(update={"turns": []}).messages(), dropped
