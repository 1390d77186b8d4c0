"""What the web chat shows of one answer: the question, the answer, and the bill under it — the same
lines as every chat footer (`chat.footer`), energy in joules and in watts (the page shows the one its
user chose), the box and why it answered, and the link to the answer's power trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup
from pydantic import ValidationError

from joulebot.chat.footer import (
    bill_label,
    carbon_line,
    conversation_lines,
    ending_note,
    energy_line,
    energy_ratio,
    images_line,
    model_line,
)
from joulebot.exchange import Result
from joulebot.history.tables import Exchange
from joulebot.web.chat_markup import answer_html

ONE_BOX = "the one measurement box"  # as the API's `joulebot.why` says when no routing chose


@dataclass
class Bill:
    energy_j: str  # total and above idle, each ±, in joules
    energy_w: str  # the same window as average power
    carbon: str  # CO2e with the intensity's provenance, SCI, embodied
    model: str
    box: str  # which box answered, and why it was chosen
    notes: list[str] = field(default_factory=list)  # an early end, images, the conversation, a hint, a caveat


@dataclass
class ShownTurn:
    id: int | None  # the history id (None: an answer history could not store yet)
    parent_id: int | None
    prompt: str
    answer: Markup
    model: str
    bill: Bill | None  # None: stored, but its bill cannot be read again (a row from an older joulebot)
    images: int = 0  # how many images the question carried (a Retry asks with them again: KEEP_IMAGES)


def bill_of(result: Result) -> Bill:
    reason = result.routing.reason if result.routing else ONE_BOX
    notes = [note] if (note := ending_note(result)) else []
    if (label := bill_label(result.energy)) is not None:  # how the whole bill was obtained: said once
        notes.append(label)
    if (seen := images_line(result)) is not None:  # what the model looked at and what reading it cost
        notes.append(seen)
    notes += conversation_lines(result)
    if result.hint:
        notes.append(f"💡 {result.hint}")
    if result.history_error:
        notes.append(f"⚠️ {result.history_error}")
    return Bill(
        energy_j=energy_line(result.energy, "joules"),
        energy_w=energy_line(result.energy, "watts"),
        carbon=carbon_line(result),
        model=model_line(result),
        box=f"📍 {result.box}: {reason}",
        notes=notes,
    )


def result_of(exchange: Exchange) -> Result | None:
    """The Result history keeps with an exchange (None if this joulebot cannot read it)."""
    try:
        result = Result.model_validate(exchange.result)
    except ValidationError:
        return None
    return result.model_copy(update={"exchange_id": exchange.id})


def shown_exchange(exchange: Exchange) -> ShownTurn:
    result = result_of(exchange)
    return ShownTurn(
        id=exchange.id,
        parent_id=exchange.parent_id,
        prompt=exchange.prompt,
        answer=answer_html(exchange.answer),
        model=exchange.model,
        bill=bill_of(result) if result is not None else None,
        images=len(exchange.images or []),
    )


def shown_result(result: Result) -> ShownTurn:
    """An answer straight from its Result (history could not store it yet, so it has no page of its own)."""
    return ShownTurn(
        id=result.exchange_id,
        parent_id=result.request.parent_id,
        prompt=result.request.prompt,
        answer=answer_html(result.answer),
        model=result.model,
        bill=bill_of(result),
    )


def ratio_of(a: Exchange, b: Exchange) -> str:
    """The sentence comparing two answers' energies (as /compare's)."""
    ra, rb = result_of(a), result_of(b)
    if ra is None or rb is None:
        return "⚖️ no ratio: one of the bills cannot be read"
    return energy_ratio(ra, rb)
