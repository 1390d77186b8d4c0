"""The read-only texts a chat user asks for: /models, /history, /stats and /boxes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joulebot.chat.boxes import box_lines
from joulebot.chat.footer import footer
from joulebot.chat.preferences import Preferences
from joulebot.config import Settings
from joulebot.exchange import Result
from joulebot.history.aggregates import by_basis
from joulebot.models import ModelEntry
from joulebot.number_format import sig
from joulebot.queueing.client import QueueClient
from joulebot.queueing.fleet import BoxView
from joulebot.tables import mean_with_band

if TYPE_CHECKING:
    from joulebot.chat.budgets import EnergyBudgets
    from joulebot.history.store import HistoryStore


class Reports:
    def __init__(
        self,
        settings: Settings,
        platform: str,
        client: QueueClient,
        history: HistoryStore,
        preferences: Preferences,
        budgets: EnergyBudgets,
    ) -> None:
        self.settings, self.platform, self.client, self.history = settings, platform, client, history
        self.preferences, self.budgets = preferences, budgets

    def models_text(self) -> str:
        if not self.settings.follows_one_queue and (views := [v for v in self.client.boxes() if v.live]):
            return self._fleet_models_text(views)
        stats: dict[str, list] = {}
        for row in self.history.model_stats():
            stats.setdefault(row.model, []).append(row)
        lines = ["Models on this box (average energy per answer ± 95 % interval, per box and energy source):"]
        for entry in self.preferences.catalog().available():
            rows = stats.get(entry.name, [])
            figures = [
                mean_with_band(r.mean_total_j, r.ci95_total_j, r.answers, " J/answer", r.basis.label())
                + r.settings_note
                for r in sorted(rows, key=lambda r: (not r.measured, r.box, r.energy_source))
            ]
            energy = "; ".join(figures) or "not measured yet"
            lines.append(f"• {_described(entry)} — {energy}")
        return "\n".join(lines)

    def _fleet_models_text(self, views: list[BoxView]) -> str:
        """Each model with the boxes offering it and what it measured on each (never averaged across boxes)."""
        lines = ["Models on the live boxes (measured average energy per answer, each box on its own):"]
        for entry in self.preferences.catalog().available():
            cells = []
            for view in views:
                if not view.profile.offers(entry.name):
                    continue
                rows = [m for m in view.profile.means if m.model == entry.name]
                answers = sum(m.answers for m in rows)
                mean = sum(m.mean_total_j * m.answers for m in rows) / answers if answers else None
                cells.append(f"{view.name} {sig(mean)} J ({answers})" if mean is not None else f"{view.name} —")
            lines.append(f"• {_described(entry)} — " + " · ".join(cells))
        return "\n".join(lines)

    def history_text(self, user_id: str, limit: int = 5) -> str:
        rows = self.history.recent(self.platform, user_id, limit)
        if not rows:
            return "No exchanges yet. Ask me something!"
        lines = []
        for row in rows:
            result = Result.model_validate(row.result)
            prompt = row.prompt if len(row.prompt) <= 80 else row.prompt[:79] + "…"
            lines.append(f"#{row.id} {row.started_at:%Y-%m-%d %H:%M} · {row.model}\n“{prompt}”\n{footer(result)}")
        return "\n\n".join(lines)

    def stats_text(self, user_id: str | None = None) -> str:
        """Per basis (box, energy source, measured or estimated) and task, the models from greenest to
        hungriest (mean energy per answer ± 95 % interval): never ranked across bases. Later turns of
        conversations (they carry context) and answers that read images are each shown apart. With a
        `user_id` and a daily energy budget set, the user's use of it on the day comes first."""
        budget = self.budgets.day_lines(self.platform, user_id) if user_id is not None else []
        lines = []
        for (continued, images), title in STATS_SECTIONS.items():
            rows = self.history.category_stats(continued=continued, images=images)
            if rows:
                lines += [title, *_ranked(rows)]
        if not lines:
            return "\n".join([*budget, "No measurements yet."])
        lines = [*budget, *lines]
        return "\n".join(lines)

    def boxes_text(self) -> str:
        """/boxes: one line per box, alive or lately seen."""
        if self.client.fleet is None:
            return f"One measurement box: {self.settings.box_name} (grid zone {self.settings.grid_zone})."
        views = self.client.boxes()
        if not views:
            return "No measurement box has announced itself yet."
        return "Measurement boxes:\n" + "\n".join(box_lines(views, brief=True))


# (later turns, with images) → the title of its part of /stats, in this order
STATS_SECTIONS = {
    (False, False): "Average energy per answer ± 95 % interval (answers), by task, greenest first:",
    (True, False): "Later turns of conversations (they carry the conversation as context, so cost more):",
    (False, True): "Questions with images (reading an image is work a text question does not cost):",
    (True, True): "Later turns that read images (the question's own or the conversation's earlier ones):",
}


def _ranked(rows: list) -> list[str]:
    """Each basis on its own, then per task the models from greenest to hungriest."""
    lines = []
    for basis, group in by_basis(rows).items():
        lines.append(f"{basis.label()}:")
        for category in sorted({r.category for r in group}):
            ranked = sorted((r for r in group if r.category == category), key=lambda r: r.mean_total_j)
            cells = [
                f"{r.label} "
                + mean_with_band(
                    r.mean_total_j,
                    r.ci95_total_j,
                    r.answers,
                    " J",
                    f"{r.accuracy:.0%} right of {r.scored} checked" if r.accuracy is not None else "",
                )
                for r in ranked
            ]
            lines.append(f"• {category}: " + " · ".join(cells))
    return lines


def _described(entry: ModelEntry) -> str:
    """A model in a list: name, size, family, and whether it sees images."""
    return f"{entry.name} ({', '.join(filter(None, [entry.size_label(), entry.family, entry.sight()]))})"
