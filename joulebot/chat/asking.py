"""A message becomes Requests on the queue: what the user typed is checked and made a Request (or
a clear refusal) by `build_request`, which every front end uses (the CLI too); a chat message then
gets the asker's preferences and the limits (the daily energy budget among them), its box, and is
queued with its delivery.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from joulebot.attachments.kept import KeptImages
from joulebot.attachments.parts import Attached
from joulebot.attachments.text_files import with_files
from joulebot.chat import preference_cache
from joulebot.chat.context import Context
from joulebot.config import Settings
from joulebot.exchange import Request, Units
from joulebot.keys import catalog_key
from joulebot.models import Catalog, ModelUnavailable, UnknownModelError
from joulebot.models.tokens import ContextOverflow, check_fits
from joulebot.queueing.catalog import parsed_catalog
from joulebot.queueing.client import JobError, NoBox, QueueClient, QueueUnavailable, queue_errors
from joulebot.queueing.deliveries import Delivery, DeliveryBook
from joulebot.queueing.rate_limits import RateLimiter

if TYPE_CHECKING:  # preferences and budgets raise this module's InputError
    from joulebot.chat.budgets import EnergyBudgets
    from joulebot.chat.preferences import Choices, Preferences

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
    attached: Attached | None = None,
) -> Request:
    """`attached` was read by joulebot.attachments: its images are normalised; its files join the prompt, named."""
    attached = attached or Attached()
    text = with_files(clean_prompt(prompt, settings.max_prompt_chars), attached.files)
    if model is not None and not model.strip():
        raise InputError(f"the model name is empty; name one of: {', '.join(e.name for e in catalog.available())}")
    try:
        entry = catalog.resolve(model or settings.default_model)
        if attached.images and not entry.vision:
            raise InputError(catalog.blind(entry))
        check_fits(entry, text, settings.max_tokens, [(image.width, image.height) for image in attached.images])
    except (UnknownModelError, ModelUnavailable, ContextOverflow) as exc:
        raise InputError(str(exc)) from exc
    return Request(
        images=attached.images,
        platform=platform,
        user_id=user_id,
        chat_id=chat_id,
        model=entry.name,
        prompt=text,
        units=units or settings.default_units,
        max_tokens=settings.max_tokens,
    )


class Asking:
    """A chat user's question, from the text they sent to its jobs and delivery on the queue."""

    def __init__(
        self,
        settings: Settings,
        platform: str,
        client: QueueClient,
        deliveries: DeliveryBook,
        preferences: Preferences,
        budgets: EnergyBudgets,
    ) -> None:
        self.settings, self.platform = settings, platform
        self.client, self.deliveries, self.preferences = client, deliveries, preferences
        self.budgets = budgets
        self.rate = RateLimiter(client.connection, platform, settings.max_prompts_per_minute)
        self.kept = KeptImages.of(settings)  # None: images are not kept (KEEP_IMAGES)

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
        attached: Attached | None = None,
    ) -> list[Request]:
        """Validated Requests, or InputError with a friendly refusal. Nothing is queued here.

        With a `context`, the one Request continues that conversation; without, it starts one.
        `system_chat`: the chat whose system prompt applies, if not `chat_id` (a thread: its channel's).
        """
        try:
            requests, system = self._requests(
                user_id, chat_id, prompt, models, (system_chat or chat_id) if group else None, attached
            )
        except QueueUnavailable:
            raise InputError("joulebot's queue is unavailable right now; please try again in a minute.") from None
        if context is None or len(requests) > 1:  # a comparison is a question of its own
            return [Context().apply(r, system) for r in requests]
        return [context.apply(requests[0], system)]

    def _requests(
        self,
        user_id: str,
        chat_id: str,
        prompt: str,
        models: list[str | None],
        system_chat: str | None,
        attached: Attached | None = None,
    ) -> tuple[list[Request], str | None]:
        """The Requests (without context) and the system prompt that applies to them.

        What Redis knows (the user's pending answers, this minute's prompts, the versions of their choices,
        the published catalog) is read in one round trip; the prompts are counted at once and taken back if
        the question is refused for another reason."""
        self.ensure_queue()
        settings, cost = self.settings, len(models)
        with queue_errors(settings), self.client.connection.pipeline(transaction=False) as pipe:
            self.deliveries.count_pending(pipe, user_id)
            minute = self.rate.count(pipe, user_id, cost)
            replies = preference_cache.read(pipe, self.platform, user_id, system_chat)
            if settings.follows_one_queue:
                pipe.get(catalog_key(settings.queue_name))
            pending, used, _, *rest = pipe.execute()
        versions, published = tuple(rest[:replies]), rest[replies:]
        try:
            if int(pending) >= settings.max_pending_per_user:
                raise InputError(
                    f"You already have {settings.max_pending_per_user} questions waiting; "
                    "please wait for their answers first."
                )
            self.budgets.check(self.platform, user_id)  # BudgetSpent, with what was used and when it resets
            catalog = parsed_catalog(published[0]) if published and published[0] else self.preferences.catalog()
            choices = self.preferences.of(user_id, system_chat, versions)  # read only if they changed
            requests, system = self._build(user_id, chat_id, prompt, models, choices, catalog, attached)
        except InputError:
            self.rate.refund(minute, cost)
            raise
        if not self.rate.allows(int(used)):
            raise InputError(
                f"That is more than {settings.max_prompts_per_minute} prompts in a minute; try again shortly."
            )
        return requests, system

    def _build(
        self,
        user_id: str,
        chat_id: str,
        prompt: str,
        models: list[str | None],
        choices: Choices,
        catalog: Catalog,
        attached: Attached | None,
    ) -> tuple[list[Request], str | None]:
        """The Requests, with the user's preferences, routed; InputError when they cannot be."""
        default_model, units, box, system = choices
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
                attached=attached,
            )
            for model in models
        ]
        try:
            requests = self.client.route(requests, box)  # a comparison: both on one box
        except NoBox as exc:
            raise InputError(f"{exc}. /box auto lets joulebot choose." if box else str(exc)) from None
        except JobError as exc:
            raise InputError(str(exc)) from None
        return requests, system

    def submit(self, requests: list[Request], status_message_id: str | None, reply_to: str | None = None) -> Delivery:
        """Queue the Requests with the Delivery that owes their answers to the chat, all or nothing."""
        if len(requests) == 1 and status_message_id is not None:
            requests[0].message_ref = status_message_id  # a reply to this message continues the conversation
        first = requests[0]
        if self.kept is not None:  # for Retry and the conversation's later turns
            self.kept.keep(self.platform, first.user_id, first.images)
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
