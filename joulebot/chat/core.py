"""The platform-neutral chat core shared by the Telegram and Discord bots.

It turns what a chat user asked for into Requests on the queue (after the
limits), follows them to their Results, and writes every reply as plain text.
The platform modules only parse their updates and render these texts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis

from joulebot.chat.build import InputError, build_request
from joulebot.chat.deliveries import Delivery, DeliveryBook
from joulebot.chat.footer import energy_ratio, footer, sig
from joulebot.chat.limits import RateLimiter
from joulebot.chat.status import status_text
from joulebot.config import Settings
from joulebot.exchange import Request, Result, Units
from joulebot.history import HistoryStore
from joulebot.history.store import by_basis
from joulebot.keys import commands_key
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, QueueClient

ProgressHandler = Callable[[str], Awaitable[None]]

HELP = """joulebot answers with open LLMs and tells you what each answer cost: the energy the measurement \
machine drew, the CO2e at the grid's current carbon intensity, and the SCI score.

Send any text to ask your default model, or:
/ask [model] prompt — ask a model
/compare model_a model_b prompt — same prompt, two models, which was greener
/model — show or choose your default model
/models — the models, their size and measured energy per answer
/units joules|watts — energy, or average power and duration
/history — your last exchanges
/stats — average energy per model
/forget — delete your prompts and answers"""


@dataclass
class Answer:
    title: str  # "A: model" in a comparison, else empty
    text: str  # the model's output: untrusted, Markdown-ish
    footer: str


@dataclass
class Reply:
    answers: list[Answer]
    closing: str = ""  # the energy ratio of a comparison, or an error

    def parts(self) -> list[tuple[str, bool]]:
        """(text, is_model_output) in reading order, for platforms that render one text."""
        parts: list[tuple[str, bool]] = []
        for answer in self.answers:
            if answer.title:
                parts.append((answer.title, False))
            parts += [(answer.text, True), (answer.footer, False)]
        if self.closing:
            parts.append((self.closing, False))
        return parts


def make_reply(results: list[Result], units: Units, public_url: str = "") -> Reply:
    compare = len(results) > 1
    answers = [
        Answer(f"{tag}: {r.model}" if compare else "", r.answer or "(empty answer)", footer(r, units, public_url))
        for tag, r in zip("AB", results, strict=False)
    ]
    return Reply(answers, energy_ratio(results[0], results[1]) if compare else "")


class ChatCore:
    def __init__(self, settings: Settings, platform: str) -> None:
        self.settings = settings
        self.platform = platform
        self.client = QueueClient(settings)
        self.history = HistoryStore.open(settings.sqlalchemy_url)
        self.deliveries = DeliveryBook(self.client.connection, platform)
        self.rate = RateLimiter(self.client.connection, platform, settings.max_prompts_per_minute)

    # -- preferences -------------------------------------------------------
    def catalog(self) -> Catalog:
        return catalog_for_front_end(self.settings, self.client.connection)

    def _preferences(self, user_id: str) -> tuple[str, Units]:
        """The user's default model and units, with the configured defaults where they chose none."""
        model, units = self.history.preferences(self.platform, user_id)
        chosen_units = units if units in ("joules", "watts") else self.settings.default_units
        return model or self.settings.default_model, chosen_units  # type: ignore[return-value]

    def units(self, user_id: str) -> Units:
        return self._preferences(user_id)[1]

    def set_units(self, user_id: str, value: str) -> str:
        value = value.strip().lower()
        if value not in ("joules", "watts"):
            raise InputError("units are joules (energy) or watts (average power and duration): /units watts")
        self.history.set_preferences(self.platform, user_id, units=value)
        return f"Units set to {value}."

    def default_model(self, user_id: str) -> str:
        return self._preferences(user_id)[0]

    def set_model(self, user_id: str, name: str) -> str:
        try:
            entry = self.catalog().resolve(name)
        except (UnknownModelError, ModelUnavailable) as exc:
            raise InputError(str(exc)) from None
        self.history.set_preferences(self.platform, user_id, model=entry.name)
        return f"Your default model is now {entry.name} ({entry.size_label()})."

    # -- asking -------------------------------------------------------------
    def ensure_queue(self) -> None:
        """In embedded mode, (re)start the embedded Redis and worker; they stop when idle."""
        self.client.ensure_ready()

    def prepare(self, user_id: str, chat_id: str, prompt: str, models: list[str | None]) -> list[Request]:
        """Validated Requests, or InputError with a friendly refusal. Nothing is queued here."""
        try:
            return self._prepare(user_id, chat_id, prompt, models)
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            raise InputError("joulebot's queue is unavailable right now; please try again in a minute.") from None

    def _prepare(self, user_id: str, chat_id: str, prompt: str, models: list[str | None]) -> list[Request]:
        self.ensure_queue()
        if self.deliveries.pending_for(user_id) >= self.settings.max_pending_per_user:
            raise InputError(
                f"You already have {self.settings.max_pending_per_user} questions waiting; "
                "please wait for their answers first."
            )
        default_model, units = self._preferences(user_id)  # one read for every request of this message
        catalog = self.catalog()
        requests = [
            build_request(
                self.settings,
                catalog,
                platform=self.platform,
                user_id=user_id,
                chat_id=chat_id,
                prompt=prompt,
                model=model or default_model,
                units=units,
            )
            for model in models
        ]
        if not self.rate.allow(user_id, cost=len(requests)):
            raise InputError(
                f"That is more than {self.settings.max_prompts_per_minute} prompts in a minute; try again shortly."
            )
        return requests

    def submit(self, requests: list[Request], status_message_id: str | None, reply_to: str | None = None) -> Delivery:
        first = requests[0]
        delivery = Delivery(
            request_ids=[r.id for r in requests], platform=self.platform, user_id=first.user_id,
            chat_id=first.chat_id or "", units=first.units,
            status_message_id=status_message_id, reply_to=reply_to,
        )  # fmt: skip
        self.deliveries.add(delivery)  # before queueing: a crash in between leaves a delivery, not a lost answer
        for request in requests:
            self.client.submit(request)
        return delivery

    async def follow(self, delivery: Delivery, on_status: ProgressHandler) -> list[Result]:
        """Wait for every Result of a delivery, reporting status text as it changes."""
        results = []
        for request_id in delivery.request_ids:
            job = await asyncio.to_thread(self.client.job, request_id)  # JobGone if it expired
            while True:
                result = await asyncio.to_thread(self.client.poll, job, 1)
                if result is not None:
                    results.append(result)
                    break
                await on_status(status_text(await asyncio.to_thread(self.client.progress, job)))
        return results

    # -- what is owed ---------------------------------------------------------
    def pending_deliveries(self) -> list[Delivery]:
        """Answers this platform still owes (from before a restart, too)."""
        return self.deliveries.pending()

    def delivered(self, delivery: Delivery) -> None:
        self.deliveries.done(delivery)

    def commands_registered(self, digest: str) -> bool:
        """The platform's command list with this digest was registered already (Discord limits it)."""
        stored = self.client.connection.get(commands_key(self.platform, self.settings.queue_name))
        return stored is not None and stored.decode() == digest

    def note_commands_registered(self, digest: str) -> None:
        self.client.connection.set(commands_key(self.platform, self.settings.queue_name), digest)

    @staticmethod
    async def text_of(produce: Callable[[], str]) -> str:
        """Run a blocking reply builder (history, catalog) off the event loop; a refusal is its text."""
        try:
            return await asyncio.to_thread(produce)
        except InputError as exc:
            return str(exc)

    # -- reading ------------------------------------------------------------
    def models_text(self) -> str:
        stats: dict[str, list] = {}
        for row in self.history.model_stats():
            stats.setdefault(row.model, []).append(row)
        lines = ["Models on this box (average energy per answer ± 95 % interval, per box and energy source):"]
        for entry in self.catalog().available():
            rows = stats.get(entry.name, [])
            figures = [
                f"{sig(r.mean_total_j)} ± {sig(r.ci95_total_j, 2)} J/answer ({r.answers}, {r.basis.label()})"
                for r in sorted(rows, key=lambda r: (not r.measured, r.box, r.energy_source))
            ]
            energy = "; ".join(figures) or "not measured yet"
            lines.append(f"• {entry.name} ({entry.size_label()}, {entry.family}) — {energy}")
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

    def stats_text(self) -> str:
        """Per basis (box, energy source, measured or estimated) and task, the models from greenest to
        hungriest (mean energy per answer ± 95 % interval): never ranked across bases."""
        rows = self.history.category_stats()
        if not rows:
            return "No measurements yet."
        lines = ["Average energy per answer ± 95 % interval (answers), by task, greenest first:"]
        for basis, group in by_basis(rows).items():
            lines.append(f"{basis.label()}:")
            for category in sorted({r.category for r in group}):
                ranked = sorted((r for r in group if r.category == category), key=lambda r: r.mean_total_j)
                cells = [
                    f"{r.model} {sig(r.mean_total_j)} ± {sig(r.ci95_total_j, 2)} J ({r.answers}"
                    + (f", {r.accuracy:.0%} right of {r.scored} checked)" if r.accuracy is not None else ")")
                    for r in ranked
                ]
                lines.append(f"• {category}: " + " · ".join(cells))
        return "\n".join(lines)

    def forget(self, user_id: str) -> str:
        n = self.history.forget(self.platform, user_id)
        return (
            f"Deleted the prompts and answers of {n} exchanges. Their anonymous energy figures stay in the statistics."
        )


__all__ = ["HELP", "Answer", "ChatCore", "InputError", "JobError", "Reply", "make_reply", "status_text"]
