"""The platform-neutral core: turn what a user typed into a Request, or a clear refusal."""

from __future__ import annotations

import unicodedata

from joulebot.config import Settings
from joulebot.exchange import Request, Units
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError
from joulebot.models.tokens import ContextOverflow, check_fits

# Letters that render as blank space (Hangul fillers, the braille blank) although they are not format characters.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})


class InputError(ValueError):
    """A refusal to show the user as it is; nothing was queued."""


def _visible(char: str) -> bool:
    return char not in BLANK_LETTERS and unicodedata.category(char) not in INVISIBLE_CATEGORIES


def clean_prompt(prompt: str, max_chars: int) -> str:
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that were not UTF-8 arrive from argv as lone surrogates
        raise InputError(
            f"the prompt is not valid UTF-8 text (at character {exc.start + 1}); nothing was queued"
        ) from None
    text = prompt.replace("\x00", "").strip()
    if not any(_visible(char) for char in text):  # only spaces, zero-width or format characters
        raise InputError('the prompt is empty: ask something, e.g. joulebot ask "What is RAPL?"')
    if len(text) > max_chars:
        raise InputError(f"the prompt has {len(text)} characters; the maximum is {max_chars}")
    return text


def build_request(
    settings: Settings,
    catalog: Catalog,
    *,
    platform: str,
    user_id: str,
    prompt: str,
    model: str | None = None,
    units: Units | None = None,
    chat_id: str | None = None,
) -> Request:
    text = clean_prompt(prompt, settings.max_prompt_chars)
    if model is not None and not model.strip():
        raise InputError(f"the model name is empty; name one of: {', '.join(e.name for e in catalog.available())}")
    try:
        entry = catalog.resolve(model or settings.default_model)
        check_fits(entry, text, settings.max_tokens)
    except (UnknownModelError, ModelUnavailable, ContextOverflow) as exc:
        raise InputError(str(exc)) from exc
    return Request(
        platform=platform,
        user_id=user_id,
        chat_id=chat_id,
        model=entry.name,
        prompt=text,
        units=units or settings.default_units,
        max_tokens=settings.max_tokens,
    )
