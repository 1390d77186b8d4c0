"""The platform-neutral core: turn what a user typed into a Request, or a clear refusal."""

from __future__ import annotations

from joulebot.config import Settings
from joulebot.exchange import Request, Units
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError


class InputError(ValueError):
    """A refusal to show the user as it is; nothing was queued."""


def clean_prompt(prompt: str, max_chars: int) -> str:
    text = prompt.replace("\x00", "").strip()
    if not text:
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
    try:
        entry = catalog.resolve(model or settings.default_model)
    except (UnknownModelError, ModelUnavailable) as exc:
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
