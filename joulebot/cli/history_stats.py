"""`joulebot history` and `joulebot stats`: your exchanges, and the model × task tables of everyone's."""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING

from joulebot.chat.footer import footer
from joulebot.cli.console import clean, fail, print_json, say
from joulebot.cli.store import cli_user, open_store
from joulebot.config import get_settings
from joulebot.exchange import Result

if TYPE_CHECKING:
    from joulebot.history import HistoryStore


def history(limit: int, page: int, as_json: bool, as_csv: bool, forget: str | None, verbose: bool = False) -> None:
    """A page of your exchanges, newest first; or all of them as CSV; or a user's forgotten."""
    store = open_store(get_settings())
    if forget:
        platform, _, user_id = forget.rpartition(":")
        _forget(store, platform or "cli", user_id)
        return
    if as_csv:
        exported = store.export("cli", cli_user())
        writer = csv.DictWriter(sys.stdout, fieldnames=list(exported[0]) if exported else ["id"])
        writer.writeheader()
        writer.writerows(exported)
        return
    rows = store.recent("cli", cli_user(), limit, offset=(page - 1) * limit)
    if as_json:
        print_json(json.dumps([row.result for row in rows]))
        return
    if not rows:
        say('no exchanges yet: try joulebot ask "What is a joule?"')
    for row in rows:
        result = Result.model_validate(row.result)
        when = row.started_at.strftime("%Y-%m-%d %H:%M")
        say(f"#{row.id} {when} · {row.model} · {row.category} · {clean(row.prompt)[:60]}")
        say(f"   {footer(result, verbose=verbose).replace(chr(10), chr(10) + '   ')}")


def _forget(store: HistoryStore, platform: str, user_id: str) -> None:
    """The user's words out of history and the queue's Redis (or nothing, said: asking again works)."""
    from joulebot.chat.forgetting import forget_user
    from joulebot.queueing.client import QueueClient, QueueUnavailable

    try:
        forgotten = forget_user(store, QueueClient(get_settings()), platform, user_id)
    except QueueUnavailable as exc:
        raise fail(f"nothing was forgotten: {exc}; try again when it answers") from None
    say(f"forgot {forgotten.said()} of {platform}:{user_id} (their measurements stay)")


def stats(as_csv: bool, box: str | None) -> None:
    """The model × task tables of each box (or one), as text or CSV; the answers that read images in
    tables of their own, the later turns of conversations counted apart."""
    from joulebot.categories import accuracy
    from joulebot.tables import csv_row, tables_per_box

    store = open_store(get_settings())
    if box is not None and box not in (known := store.boxes()):
        raise fail(f"no measurements from box {box!r}; boxes in history: {', '.join(known) or 'none'}", 2)
    rows, with_images = store.category_stats(box=box), store.category_stats(box=box, images=True)
    continued = sum(
        r.answers for images in (False, True) for r in store.category_stats(box=box, continued=True, images=images)
    )
    if as_csv:  # one row per cell; `with_images` tells the two kinds of answer apart
        both = rows + with_images
        writer = csv.DictWriter(sys.stdout, fieldnames=list(csv_row(both[0])) if both else ["model"])
        writer.writeheader()
        writer.writerows(csv_row(r) for r in both)
        return
    if not rows and not with_images:
        say("no measurements yet")
        return
    overall, _ = accuracy()
    for number, part in enumerate(filter(None, (rows, with_images))):
        if part is with_images:
            say(("\n" if number else "") + "answers that read images (never averaged with text-only ones):")
        shown = ["sci", "energy"] + (["accuracy", "energy-per-correct"] if any(r.scored for r in part) else [])
        say(tables_per_box(part, shown))
    if continued:
        say(
            f"{continued} later turns of conversations are not in these tables: they carry the"
            " conversation as context and cost more per answer"
        )
    say(f"categories come from a keyword classifier ({overall:.0%} right on the shipped prompt sets)")


def budgets(top: int) -> None:
    """Today's use of the daily energy budgets: the web chat's visitors together, then the users whose
    answers drew the most since the UTC day began (the terminal and the benchmark have no budget)."""
    from datetime import UTC, datetime

    from joulebot.chat.budgets import OPERATOR_PLATFORMS, WEB_CHAT_PLATFORM, amount, resets, utc_day
    from joulebot.cli.store import history_errors
    from joulebot.number_format import sig

    settings = get_settings()
    store = open_store(settings)
    now = datetime.now(UTC)
    today = utc_day(now)[0]
    with history_errors():
        web = store.energy_used(today, WEB_CHAT_PLATFORM)
        heaviest = store.heaviest_users(today, top)
    per_user, web_chat = settings.daily_energy_budget_wh, settings.web_chat_daily_wh
    if per_user is None and web_chat is None:
        say(f"No daily energy budget is set (DAILY_ENERGY_BUDGET_WH, WEB_CHAT_DAILY_WH); {resets(now)}.")
    else:
        each, group = ("no budget" if wh is None else f"{sig(wh)} Wh" for wh in (per_user, web_chat))
        say(f"Daily energy budgets: {each} per user, {group} for the web chat's visitors together; {resets(now)}.")
    say(f"web chat, all visitors: {amount(web, web_chat)} · {web.answers} answers")
    if not heaviest:
        say("no answers since 00:00 UTC")
    for platform, user_id, used in heaviest:
        budget = None if platform in OPERATOR_PLATFORMS else per_user
        state = " · no budget" if budget is None and per_user is not None else ""
        state += " · used up" if budget is not None and used.wh >= budget else ""
        say(f"{clean(platform)}:{clean(user_id)} {amount(used, budget)} · {used.answers} answers{state}")
