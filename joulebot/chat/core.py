"""The platform-neutral chat core shared by the Telegram and Discord bots.

It turns what a chat user asked for into Requests on the queue (after the
limits), follows them to their Results, and writes every reply as plain text.
The platform modules only parse their updates and render these texts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy.exc import SQLAlchemyError

from joulebot.chat.boxes import box_lines
from joulebot.chat.build import InputError, build_request
from joulebot.chat.conversation import Context
from joulebot.chat.deliveries import Delivery, DeliveryBook
from joulebot.chat.footer import energy_ratio, footer, sig
from joulebot.chat.limits import RateLimiter
from joulebot.chat.status import status_text
from joulebot.config import Settings
from joulebot.exchange import GENERATING, Request, Result, Units
from joulebot.history import open_history
from joulebot.history.aggregates import by_basis
from joulebot.history.tables import Exchange
from joulebot.keys import commands_key, conversation_key, shared_conversation_key
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, JobGone, NoBox, QueueClient, QueueUnavailable, queue_errors
from joulebot.queueing.fleet import BoxView
from joulebot.tables import mean_with_band

log = logging.getLogger(__name__)


class ProgressHandler(Protocol):
    """Shows a status text; `urgent` ones are shown even if the last edit was a moment ago."""

    def __call__(self, text: str, /, partial: str | None = None, *, urgent: bool = False) -> Awaitable[None]: ...


QUEUE_WENT_AWAY = (
    "⚠️ joulebot's queue went away while your answer was being made. "
    "I will send it here as soon as the queue is back (or tell you if it was lost)."
)
CANCELLED = "🚫 Cancelled before it ran: nothing was measured or stored."
QUEUE_RETRY_S = 2.0  # how often a waiting delivery asks whether Redis is back
SHARED_CONVERSATION_TTL_S = (
    30 * 24 * 3600
)  # a thread the bot started stays one conversation this long after its last answer

HELP = """joulebot answers with open LLMs and tells you what each answer cost: the energy the measurement \
machine drew, the CO2e at the grid's current carbon intensity, and the SCI score.

Send any text to ask your default model, or:
/ask [model] prompt — ask a model (a new conversation)
/new — start a new conversation (private chats continue the current one; reply to an answer to branch from it)
/system [text|clear] — show, set or clear your system prompt (a group's, in a group)
/cancel — cancel your questions still waiting in the queue
/compare model_a model_b prompt — same prompt, two models, which was greener
/model — show or choose your default model
/models — the models, their size and measured energy per answer
/units joules|watts — energy, or average power and duration
/history — your last exchanges
/stats — average energy per model, per box
/boxes — the measurement boxes and their grids
/box [name|auto] — pin the box that answers you, or let joulebot choose
/forget — delete your prompts and answers"""


def spawn(tasks: set[asyncio.Task[None]], coroutine: Coroutine[Any, Any, None], what: str) -> None:
    """Run `coroutine` in the background: referenced in `tasks` until it ends, and its failure logged, not lost."""
    task = asyncio.get_running_loop().create_task(coroutine)
    tasks.add(task)  # a task nobody references can be garbage-collected mid-answer

    def finished(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", what, exc_info=task.exception())

    task.add_done_callback(finished)


class Preferences(NamedTuple):
    """What applies to a user's next question, their choices or the configured defaults."""

    model: str
    units: Units
    box: str | None  # pinned, else routing decides
    system: str | None  # the system prompt


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
        self.history = open_history(settings.sqlalchemy_url, settings.redact)  # HistoryUnavailable: one line
        self.deliveries = DeliveryBook(self.client.connection, platform)
        self.rate = RateLimiter(self.client.connection, platform, settings.max_prompts_per_minute)

    # -- preferences -------------------------------------------------------
    def catalog(self) -> Catalog:
        return catalog_for_front_end(self.settings, self.client.connection)

    def _preferences(self, user_id: str, system_chat: str | None = None) -> Preferences:
        """The user's default model, units, pinned box and system prompt (the chat's, given `system_chat`),
        with the configured defaults where none was chosen: one read."""
        model, units, box, system = self.history.asking(self.platform, user_id, system_chat)
        chosen_units = units if units in ("joules", "watts") else self.settings.default_units
        return Preferences(
            model or self.settings.default_model,
            chosen_units,  # type: ignore[arg-type]
            box,
            system or self.settings.system_prompt or None,
        )

    def units(self, user_id: str) -> Units:
        return self._preferences(user_id).units

    def set_units(self, user_id: str, value: str) -> str:
        value = value.strip().lower()
        if value not in ("joules", "watts"):
            raise InputError("units are joules (energy) or watts (average power and duration): /units watts")
        self.history.set_preferences(self.platform, user_id, units=value)
        return f"Units set to {value}."

    def default_model(self, user_id: str) -> str:
        return self._preferences(user_id).model

    def set_model(self, user_id: str, name: str) -> str:
        try:
            entry = self.catalog().resolve(name)
        except (UnknownModelError, ModelUnavailable) as exc:
            raise InputError(str(exc)) from None
        self.history.set_preferences(self.platform, user_id, model=entry.name)
        return f"Your default model is now {entry.name} ({entry.size_label()})."

    def box_text(self, user_id: str, wanted: str = "") -> str:
        """/box: show the box that answers you; /box NAME pins one (if it is live); /box auto unpins."""
        wanted = wanted.strip()
        if self.client.fleet is None:
            return f"This joulebot has one measurement box ({self.settings.box_name}): nothing to choose."
        live = [v.name for v in self.client.boxes() if v.live]
        if not wanted:
            pinned = self._preferences(user_id).box
            now = f"pinned to {pinned}" if pinned else f"chosen for each question ({self.settings.routing})"
            return f"Your box: {now}. Live boxes: {', '.join(live) or 'none'}. /box NAME pins one, /box auto unpins."
        if wanted.lower() == "auto":
            self.history.set_preferences(self.platform, user_id, box="")
            return f"Your questions go to the box chosen for each ({self.settings.routing})."
        match = next((name for name in live if name.lower() == wanted.lower()), None)
        if match is None:
            raise InputError(f"no live box named {wanted!r}; live boxes: {', '.join(live) or 'none'}")
        self.history.set_preferences(self.platform, user_id, box=match)
        return f"Your questions now go to {match} (until /box auto)."

    def boxes_text(self) -> str:
        """/boxes: one line per box, alive or lately seen."""
        if self.client.fleet is None:
            return f"One measurement box: {self.settings.box_name} (grid zone {self.settings.grid_zone})."
        views = self.client.boxes()
        if not views:
            return "No measurement box has announced itself yet."
        return "Measurement boxes:\n" + "\n".join(box_lines(views, brief=True))

    # -- asking -------------------------------------------------------------
    def ensure_queue(self) -> None:
        """In embedded mode, (re)start the embedded Redis and worker; they stop when idle."""
        self.client.ensure_ready()

    def prepare(
        self,
        user_id: str,
        chat_id: str,
        prompt: str,
        models: list[str | None],
        context: Context | None = None,
        group: bool = False,
        system_chat: str | None = None,
    ) -> list[Request]:
        """Validated Requests, or InputError with a friendly refusal. Nothing is queued here.

        With a `context`, the one Request continues that conversation; without, it starts one.
        `system_chat`: the chat whose system prompt applies, if not `chat_id` (a thread: its channel's).
        """
        try:
            requests, system = self._prepare(
                user_id, chat_id, prompt, models, (system_chat or chat_id) if group else None
            )
        except QueueUnavailable:
            raise InputError("joulebot's queue is unavailable right now; please try again in a minute.") from None
        if context is None or len(requests) > 1:  # a comparison is a question of its own
            return [Context().apply(r, system) for r in requests]
        return [context.apply(requests[0], system)]

    # -- conversations ------------------------------------------------------
    def _pointer(self, chat_id: str, user_id: str) -> str:
        return conversation_key(self.platform, chat_id, user_id)

    def context_for(self, user_id: str, chat_id: str, reply_to: str | None = None, group: bool = False) -> Context:
        """The conversation a message continues.

        A reply to one of the bot's answers continues from that answer (a branch), if that answer
        belongs to this chat and, in a private chat, to this user. Otherwise a private chat
        continues its current conversation (until /new or CONVERSATION_IDLE_S of silence); in a
        group only replies continue. Anything else starts a new conversation: an unknown,
        deleted or foreign message never leaks one.
        """
        exchange = None
        if reply_to is not None:
            exchange = self.history.answer_at(self.platform, chat_id, reply_to)
        elif not group and self.settings.conversation_idle_s > 0:
            raw = self.client.connection.get(self._pointer(chat_id, user_id))
            if raw:
                exchange = self.history.get(int(json.loads(raw)["exchange_id"]))
        return self._after(exchange, user_id, chat_id, group)

    def _after(self, exchange: Exchange | None, user_id: str, chat_id: str, group: bool) -> Context:
        """Continuing from `exchange` if it belongs to this chat (and, outside groups, to this user); else afresh."""
        if exchange is None or exchange.chat_id != chat_id:
            return Context()
        if not group and self.history.owner(exchange) != user_id:
            return Context()
        thread = self.history.thread(exchange.id)  # type: ignore[arg-type]
        return Context.after(thread) if thread else Context()

    # -- shared conversations: a chat that is one conversation for everyone in it (a thread the bot started) --
    def _shared(self, chat_id: str) -> str:
        return shared_conversation_key(self.platform, chat_id)

    def start_shared(self, chat_id: str) -> None:
        """Make `chat_id` one conversation (before its first answer): every message there continues
        from its latest answer."""
        self.client.connection.set(self._shared(chat_id), "{}", ex=SHARED_CONVERSATION_TTL_S)

    def shared_context(self, user_id: str, chat_id: str, reply_to: str | None = None) -> Context:
        """Where a message in a shared chat continues: from the answer it replies to (a branch), else
        from the chat's latest answer (none known: afresh, and its answer becomes the latest)."""
        key = self._shared(chat_id)
        self.client.connection.set(key, "{}", ex=SHARED_CONVERSATION_TTL_S, nx=True)  # remember() updates it
        exchange = self.history.answer_at(self.platform, chat_id, reply_to) if reply_to is not None else None
        raw = self.client.connection.get(key)
        if exchange is None and raw and (latest := json.loads(raw).get("exchange_id")) is not None:
            exchange = self.history.get(int(latest))
        return self._after(exchange, user_id, chat_id, group=True)

    def remember(self, delivery: Delivery, results: list[Result]) -> None:
        """After an answer: in a shared chat everyone's next message continues from it; in a private
        chat the asker's does (until idle)."""
        if len(results) != 1 or results[0].exchange_id is None:
            return
        request = results[0].request
        pointer = json.dumps({"conversation_id": request.conversation_id, "exchange_id": results[0].exchange_id})
        connection = self.client.connection
        if connection.set(self._shared(delivery.chat_id), pointer, ex=SHARED_CONVERSATION_TTL_S, xx=True):
            return  # only where the chat is shared already (xx): an answer never makes a chat shared
        if self.settings.conversation_idle_s > 0:
            ttl = max(1, int(self.settings.conversation_idle_s))
            connection.set(self._pointer(delivery.chat_id, delivery.user_id), pointer, ex=ttl)

    def note_messages(self, delivery: Delivery, results: list[Result], message_refs: list[str]) -> None:
        """The platform messages that show a delivered answer (the pieces of a long one): a reply to any of
        them continues its conversation. Only a single stored answer has one to continue; if history is
        away, replies to the later pieces start afresh (the first is stored with the exchange)."""
        stored = [r.exchange_id for r in results if r.exchange_id is not None]
        if len(results) != 1 or not stored or not message_refs:
            return
        try:
            self.history.add_messages(self.platform, delivery.chat_id, stored[0], message_refs)
        except SQLAlchemyError as exc:
            log.warning("the messages of exchange %s were not stored: %s", stored[0], type(exc).__name__)

    def new_conversation(self, user_id: str, chat_id: str) -> str:
        self.client.connection.delete(self._pointer(chat_id, user_id))
        return "🆕 New conversation: your next message starts afresh (earlier answers stay in /history)."

    def answer_id_at(self, chat_id: str, message_ref: str) -> int | None:
        """The exchange whose answer this chat's message shows (None if it shows none)."""
        exchange = self.history.answer_at(self.platform, chat_id, message_ref)
        return exchange.id if exchange is not None else None

    def retry_context(
        self, user_id: str, chat_id: str, exchange_id: int, group: bool = False
    ) -> tuple[str, str, Context]:
        """(prompt, model, context) to ask an answer's question again, with the same context.

        Only the asker (or, in a group, anyone in that group) may retry an answer.
        """
        exchange = self.history.get(exchange_id)
        if exchange is None or not exchange.prompt or exchange.chat_id != chat_id:
            raise InputError("That answer can no longer be retried.")
        if not group and self.history.owner(exchange) != user_id:
            raise InputError("That answer can no longer be retried.")
        thread = self.history.thread(exchange.parent_id) if exchange.parent_id is not None else []
        context = Context.after(thread) if thread else Context()
        context.conversation_id = exchange.conversation_id or context.conversation_id
        context.turn = exchange.turn
        context.fixed_system, context.system = True, exchange.system_prompt
        return exchange.prompt, exchange.model, context

    # -- cancelling ---------------------------------------------------------
    def cancel(self, user_id: str, chat_id: str, request_id: str | None = None, message_ref: str | None = None) -> str:
        """Cancel this user's questions still queued in this chat (or the one given, by its request id
        or by the status message that shows it).

        A running answer is not cut short: its energy is being measured over the whole
        generation, and half a window would be neither a whole answer's cost nor comparable.
        """
        owed = [d for d in self.deliveries.pending() if d.user_id == user_id and d.chat_id == chat_id]
        if request_id is not None:
            owed = [d for d in owed if request_id in d.request_ids]
        if message_ref is not None:
            owed = [d for d in owed if d.status_message_id == message_ref]
        if not owed:
            return "Nothing of yours is waiting to be cancelled."
        cancelled = running = 0
        for delivery in owed:
            for rid in delivery.request_ids:
                try:
                    job = self.client.job(rid)
                except JobError:
                    continue
                if self.client.cancel(job):
                    cancelled += 1
                else:
                    running += 1
        parts = []
        if cancelled:
            parts.append(
                f"Cancelled {cancelled} waiting question{'s' * (cancelled > 1)}: nothing was measured or stored."
            )
        if running:
            parts.append(
                f"{running} already being generated: {'it' if running == 1 else 'they'} will finish and be stored "
                "(a generation is measured whole; stopping it halfway would leave a figure that is no answer's cost)."
            )
        return " ".join(parts) or "Nothing of yours is waiting to be cancelled."

    # -- system prompts -----------------------------------------------------
    def system_command(
        self,
        user_id: str,
        chat_id: str,
        argument: str,
        group: bool = False,
        place: str = "group",
        may_change: bool = True,
    ) -> str:
        """/system: show (no argument), `clear`, or set; in a group (a Discord channel: `place`) the group's.
        `may_change=False` (a member who may not configure the group): anyone may see a group's prompt,
        only its administrators set or clear it."""
        whose = f"this {place}'s" if group else "your"
        where = chat_id if group else None
        text = argument.strip()
        if text and not may_change:
            raise InputError(
                f"Only this {place}'s administrators can set or clear its system prompt; /system shows it."
            )
        if not text:
            own = self.history.system_prompt(self.platform, user_id, where)
            if own:
                return f"System prompt ({f'this {place}' if group else 'yours'}):\n{own}"
            if self.settings.system_prompt:
                return f"System prompt (the default, SYSTEM_PROMPT):\n{self.settings.system_prompt}"
            return f"No system prompt is set. Set {whose} with: /system You answer briefly."
        if text.lower() == "clear":
            self.history.set_system_prompt(self.platform, user_id, None, where)
            return f"Cleared {whose} system prompt."
        if len(text) > self.settings.max_prompt_chars:
            raise InputError(
                f"the system prompt has {len(text)} characters; the maximum is {self.settings.max_prompt_chars}"
            )
        self.history.set_system_prompt(self.platform, user_id, text.replace("\x00", ""), where)
        return f"Set {whose} system prompt. It applies from the next question."

    def _prepare(
        self, user_id: str, chat_id: str, prompt: str, models: list[str | None], system_chat: str | None
    ) -> tuple[list[Request], str | None]:
        """The Requests (without context) and the system prompt that applies to them."""
        self.ensure_queue()
        if self.deliveries.pending_for(user_id) >= self.settings.max_pending_per_user:
            raise InputError(
                f"You already have {self.settings.max_pending_per_user} questions waiting; "
                "please wait for their answers first."
            )
        default_model, units, box, system = self._preferences(user_id, system_chat)  # one read per message
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
        try:
            requests = self.client.route(requests, box)  # a comparison: both on one box
        except NoBox as exc:
            raise InputError(f"{exc}. /box auto lets joulebot choose." if box else str(exc)) from None
        except JobError as exc:
            raise InputError(str(exc)) from None
        if not self.rate.allow(user_id, cost=len(requests)):
            raise InputError(
                f"That is more than {self.settings.max_prompts_per_minute} prompts in a minute; try again shortly."
            )
        return requests, system

    def submit(self, requests: list[Request], status_message_id: str | None, reply_to: str | None = None) -> Delivery:
        if len(requests) == 1 and status_message_id is not None:
            requests[0].message_ref = status_message_id  # a reply to this message continues the conversation
        first = requests[0]
        delivery = Delivery(
            request_ids=[r.id for r in requests],
            platform=self.platform,
            user_id=first.user_id,
            chat_id=first.chat_id or "",
            units=first.units,
            status_message_id=status_message_id,
            reply_to=reply_to,
        )
        # One MULTI/EXEC: the delivery and its jobs are queued together or not at all (one round trip)
        with queue_errors(self.settings), self.client.connection.pipeline() as pipe:
            pipe.multi()  # explicitly, before anything is queued in it (RQ's enqueue expects one or none)
            self.deliveries.add(delivery, pipe)
            for request in requests:
                self.client.submit(request, pipe)
            pipe.execute()
        return delivery

    async def follow(self, delivery: Delivery, on_status: ProgressHandler) -> list[Result]:
        """Wait for every Result of a delivery, reporting status text as it changes.

        If Redis goes away meanwhile, the user is told at once and the wait goes on
        until it answers again: then the answer is delivered (it was in Redis), or
        JobGone says it was lost (Redis came back without it). JobError otherwise.
        """
        return [await self._follow_one(request_id, on_status) for request_id in delivery.request_ids]

    async def _follow_one(self, request_id: str, on_status: ProgressHandler) -> Result:
        outage = False
        while True:
            try:
                job = await asyncio.to_thread(self.client.job, request_id)
                while True:
                    result = await asyncio.to_thread(self.client.poll, job, 1)
                    if result is not None:
                        return result
                    progress = await asyncio.to_thread(self.client.progress, job)
                    partial = None
                    if progress.state == GENERATING:
                        partial = await asyncio.to_thread(self.client.partial, request_id)
                    await on_status(status_text(progress), partial)
            except QueueUnavailable as exc:
                if not outage:
                    log.warning("%s while following %s; waiting for it to come back", exc, request_id)
                    await on_status(QUEUE_WENT_AWAY, urgent=True)
                outage = True
                await self._until_queue_returns()
            except JobGone:
                if outage:
                    raise JobGone(
                        "joulebot's queue restarted without your question, so its answer was lost; please ask again."
                    ) from None
                raise

    async def _until_queue_returns(self) -> None:
        """Sleep until Redis answers; JobGone if that takes longer than a Result would be kept anyway."""
        deadline = time.monotonic() + self.settings.result_ttl_s
        while not await asyncio.to_thread(self.client.reachable):
            if time.monotonic() > deadline:
                away = self.settings.result_ttl_s
                raise JobGone(f"joulebot's queue was away for over {away} s; your answer was lost")
            await asyncio.sleep(QUEUE_RETRY_S)

    # -- what is owed ---------------------------------------------------------
    def pending_deliveries(self) -> list[Delivery]:
        """Answers this platform still owes (from before a restart, too); none while Redis does not answer
        (the next start resumes them)."""
        try:
            return self.deliveries.pending()
        except QueueUnavailable as exc:
            log.warning("cannot resume pending answers: %s", exc)
            return []

    def save_delivery(self, delivery: Delivery) -> None:
        """Keep a still-owed delivery's new messages (if Redis is away, a restart may not edit them)."""
        try:
            self.deliveries.save(delivery)
        except QueueUnavailable as exc:
            log.warning("could not keep the messages of %s: %s", delivery.key, exc)

    def delivered(self, delivery: Delivery) -> None:
        """The reply went out: forget the delivery (if Redis is away, it is sent once more at the next start)."""
        try:
            self.deliveries.done(delivery)
        except QueueUnavailable as exc:
            log.warning("could not mark %s delivered: %s", delivery.key, exc)

    def commands_registered(self, digest: str) -> bool:
        """The platform's command list with this digest was registered already (Discord limits it)."""
        with queue_errors(self.settings):
            stored = self.client.connection.get(commands_key(self.platform, self.settings.queue_name))
        return stored is not None and (stored.decode() if isinstance(stored, bytes) else stored) == digest

    def note_commands_registered(self, digest: str) -> None:
        with queue_errors(self.settings):
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
        if not self.settings.follows_one_queue and (views := [v for v in self.client.boxes() if v.live]):
            return self._fleet_models_text(views)
        stats: dict[str, list] = {}
        for row in self.history.model_stats():
            stats.setdefault(row.model, []).append(row)
        lines = ["Models on this box (average energy per answer ± 95 % interval, per box and energy source):"]
        for entry in self.catalog().available():
            rows = stats.get(entry.name, [])
            figures = [
                mean_with_band(r.mean_total_j, r.ci95_total_j, r.answers, " J/answer", r.basis.label())
                + r.settings_note
                for r in sorted(rows, key=lambda r: (not r.measured, r.box, r.energy_source))
            ]
            energy = "; ".join(figures) or "not measured yet"
            lines.append(f"• {entry.name} ({entry.size_label()}, {entry.family}) — {energy}")
        return "\n".join(lines)

    def _fleet_models_text(self, views: list[BoxView]) -> str:
        """Each model with the boxes offering it and what it measured on each (never averaged across boxes)."""
        lines = ["Models on the live boxes (measured average energy per answer, each box on its own):"]
        for entry in self.catalog().available():
            cells = []
            for view in views:
                if not view.profile.offers(entry.name):
                    continue
                rows = [m for m in view.profile.means if m.model == entry.name]
                answers = sum(m.answers for m in rows)
                mean = sum(m.mean_total_j * m.answers for m in rows) / answers if answers else None
                cells.append(f"{view.name} {sig(mean)} J ({answers})" if mean is not None else f"{view.name} —")
            lines.append(f"• {entry.name} ({entry.size_label()}, {entry.family}) — " + " · ".join(cells))
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
        hungriest (mean energy per answer ± 95 % interval): never ranked across bases. Later turns of
        conversations (they carry context) are shown apart from first questions."""
        rows = self.history.category_stats()
        if not rows:
            return "No measurements yet."
        lines = ["Average energy per answer ± 95 % interval (answers), by task, greenest first:"]
        lines += _ranked(rows)
        continued = self.history.category_stats(continued=True)
        if continued:
            lines.append("Later turns of conversations (they carry the conversation as context, so cost more):")
            lines += _ranked(continued)
        return "\n".join(lines)

    def forget(self, user_id: str) -> str:
        n = self.history.forget(self.platform, user_id)
        return (
            f"Deleted the prompts and answers of {n} exchanges. Their anonymous energy figures stay in the statistics."
        )


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


__all__ = [
    "CANCELLED",
    "HELP",
    "QUEUE_WENT_AWAY",
    "Answer",
    "ChatCore",
    "Context",
    "InputError",
    "JobError",
    "QueueUnavailable",
    "Reply",
    "make_reply",
    "spawn",
    "status_text",
]
