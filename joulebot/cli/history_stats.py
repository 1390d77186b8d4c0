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


def history(limit: int, page: int, as_json: bool, as_csv: bool, forget: str | None) -> None:
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
        say(f"   {footer(result).replace(chr(10), chr(10) + '   ')}")


def _forget(store: HistoryStore, platform: str, user_id: str) -> None:
    """The user's words out of history and the queue's Redis (or nothing, said: asking again works)."""
    from joulebot.chat.forgetting import forget_user
    from joulebot.queueing.client import QueueClient, QueueUnavailable

    try:
        n = forget_user(store, QueueClient(get_settings()), platform, user_id)
    except QueueUnavailable as exc:
        raise fail(f"nothing was forgotten: {exc}; try again when it answers") from None
    say(f"forgot {n} exchanges of {platform}:{user_id} (their measurements stay)")


def stats(as_csv: bool, box: str | None) -> None:
    """The model × task tables of each box (or one), as text or CSV, with the later turns of
    conversations counted apart."""
    from joulebot.categories import accuracy
    from joulebot.tables import csv_row, tables_per_box

    store = open_store(get_settings())
    if box is not None and box not in (known := store.boxes()):
        raise fail(f"no measurements from box {box!r}; boxes in history: {', '.join(known) or 'none'}", 2)
    rows = store.category_stats(box=box)
    continued = sum(r.answers for r in store.category_stats(box=box, continued=True))
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(csv_row(rows[0])) if rows else ["model"])
        writer.writeheader()
        writer.writerows(csv_row(r) for r in rows)
        return
    if not rows:
        say("no measurements yet")
        return
    overall, _ = accuracy()
    shown = ["sci", "energy"] + (["accuracy", "energy-per-correct"] if any(r.scored for r in rows) else [])
    say(tables_per_box(rows, shown))
    if continued:
        say(
            f"{continued} later turns of conversations are not in these tables: they carry the"
            " conversation as context and cost more per answer"
        )
    say(f"categories come from a keyword classifier ({overall:.0%} right on the shipped prompt sets)")
