"""Daily energy budgets, for every front end that queues questions for other people: each user may
use `DAILY_ENERGY_BUDGET_WH` a day, and the web chat's anonymous visitors (platform `web`) together
`WEB_CHAT_DAILY_WH`. A question is refused, before anything is queued, once the energy of the
asker's answers since the day began reaches the budget; answers already queued or running are never
cut, so a day can end a little over the budget.

The day is the UTC day: it begins at 00:00 UTC for everyone, wherever they are. The figure counted is
the bill's main one, each answer's total energy (measured, or estimated and said so), from history
(`joulebot.history.budgets`): an answer counts once it is stored. The terminal's `joulebot ask` and
the benchmark have no budget: whoever types there runs joulebot and sets its budgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from joulebot.chat.asking import InputError
from joulebot.config import Settings
from joulebot.history import HistoryUnavailable
from joulebot.history.budgets import EnergyUsed
from joulebot.number_format import sig

WEB_CHAT_PLATFORM = "web"  # the web chat's anonymous visitors: WEB_CHAT_DAILY_WH is for all of them together
OPERATOR_PLATFORMS = frozenset({"cli", "bench"})  # the terminal and the benchmark: no budget
DAY = timedelta(days=1)


class Ledger(Protocol):
    """Where the energy of the day's answers is read: HistoryStore (bots) or the web's HistoryView.
    HistoryUnavailable when the database does not answer."""

    def energy_used(self, since: datetime, platform: str, platform_user_id: str | None = None) -> EnergyUsed: ...


def utc_day(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day `now` falls in: its start and the next day's."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + DAY


def resets(now: datetime) -> str:
    """'it resets at 00:00 UTC (in 3 h 12 min)': the next day's start, the wait rounded up to the minute."""
    resets_at = utc_day(now)[1]
    minutes = max(1, math.ceil((resets_at - now).total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    wait = " ".join(([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes or not hours else []))
    return f"it resets at {resets_at:%H:%M} UTC (in {wait})"


def amount(used: EnergyUsed, budget_wh: float | None = None) -> str:
    """'1.02 of 1.00 Wh' ('1.02 Wh' without a budget), saying how much of it is an estimate and how much
    component meters measured (not the whole machine), as each answer's footer does, and how many
    answers had no energy figure at all (every meter failed: not counted)."""
    text = f"{sig(used.wh)} of {sig(budget_wh)} Wh" if budget_wh is not None else f"{sig(used.wh)} Wh"
    notes = [
        label if part_j >= used.joules else f"{sig(part_j / 3600.0)} Wh of it {label}"
        for part_j, label in (
            (used.estimated_j, "estimated"),
            (used.partial_j, "from component meters, not the whole machine"),
        )
        if part_j > 0
    ]
    if unknown := used.without_figure:
        notes.append(f"{unknown} answer{'s' * (unknown > 1)} without an energy figure, not counted")
    return f"{text} ({'; '.join(notes)})" if notes else text


@dataclass(frozen=True)
class BudgetUse:
    """One budget on one day: how much of it the answers used, and when it begins again."""

    budget_wh: float
    used: EnergyUsed
    shared: bool  # the web chat's, for all its visitors together
    now: datetime
    resets_at: datetime

    @property
    def spent(self) -> bool:
        return self.used.wh >= self.budget_wh

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until the budget begins again (at least 1)."""
        return max(1, math.ceil((self.resets_at - self.now).total_seconds()))

    def amount(self) -> str:
        return amount(self.used, self.budget_wh)

    def resets(self) -> str:
        return resets(self.now)

    def refusal(self) -> str:
        """One line: what was used of which budget, and when asking works again. Nothing was queued."""
        if self.shared:
            return (
                f"Today's energy budget of the web chat (all visitors together) is used: {self.amount()}; "
                f"{self.resets()}."
            )
        return f"Today's energy budget is used: {self.amount()}; {self.resets()}."

    def line(self) -> str:
        """One short line for a footer or /stats."""
        whose = "the web chat's energy budget" if self.shared else "your energy budget"
        return f"🔋 Today: {self.amount()} of {whose}; {self.resets()}"


class BudgetSpent(InputError):
    """A question refused because a budget is used up; `use` says which and how much."""

    def __init__(self, use: BudgetUse) -> None:
        super().__init__(use.refusal())
        self.use = use


class BudgetUnknown(InputError):
    """A budget is set but the energy used cannot be read (history does not answer): nothing is queued."""


BUDGET_UNKNOWN = (
    "joulebot's history database is unavailable right now, so your energy budget cannot be checked; "
    "nothing was queued, please try again in a minute."
)


class EnergyBudgets:
    """The budgets that apply to a front end's users, read from a Ledger. With no budget set, nothing
    is read. `now` is the clock (an aware time; the current one when None)."""

    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.per_user_wh, self.web_chat_wh = settings.daily_energy_budget_wh, settings.web_chat_daily_wh
        self.ledger = ledger

    def uses(self, platform: str, user_id: str, now: datetime | None = None) -> list[BudgetUse]:
        """Each budget that applies to this user on the day of `now`: their own, then the web chat's (platform `web`).
        BudgetUnknown when history does not answer."""
        now = now or datetime.now(UTC)
        start, resets_at = utc_day(now)
        wanted: list[tuple[float, str | None]] = []
        if self.per_user_wh is not None and platform not in OPERATOR_PLATFORMS:
            wanted.append((self.per_user_wh, user_id))
        if self.web_chat_wh is not None and platform == WEB_CHAT_PLATFORM:
            wanted.append((self.web_chat_wh, None))
        try:
            return [
                BudgetUse(budget, self.ledger.energy_used(start, platform, who), who is None, now, resets_at)
                for budget, who in wanted
            ]
        except HistoryUnavailable:
            raise BudgetUnknown(BUDGET_UNKNOWN) from None

    def check(self, platform: str, user_id: str, now: datetime | None = None) -> None:
        """BudgetSpent if a budget of this user is used up for the day (BudgetUnknown if that cannot be read)."""
        for use in self.uses(platform, user_id, now):
            if use.spent:
                raise BudgetSpent(use)

    def day_lines(self, platform: str, user_id: str, now: datetime | None = None) -> list[str]:
        """Today's use of each budget that applies, a line each (none without a budget)."""
        try:
            return [use.line() for use in self.uses(platform, user_id, now)]
        except BudgetUnknown:
            return ["🔋 Your energy budget cannot be read now: history is unavailable"]
