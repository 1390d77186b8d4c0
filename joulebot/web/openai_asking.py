"""An API request becomes a Request on the queue by the chat front ends' own path: the asker's pending
limit, the catalog (names, aliases, Ollama tags), `build_request` (the prompt's checks and the context
check), the daily energy budgets, routing (or the box pinned), the rate limit, and one transaction
queueing the job with the delivery that owes its answer. Each refusal is an ApiError with its status.

Blocking (Redis): the routes run these in the thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from joulebot.attachments.images import check_count, image_limits, read_images
from joulebot.attachments.kept import KeptImages
from joulebot.attachments.parts import Attached, AttachmentError, ImageInput, default_question
from joulebot.chat.asking import InputError, build_request
from joulebot.chat.background import spawn
from joulebot.chat.budgets import BudgetSpent, BudgetUnknown, EnergyBudgets, Ledger
from joulebot.chat.context import Context, ImagesGone, ShowAgain, images_again, kept_images
from joulebot.config import Settings
from joulebot.exchange import Request, Turn
from joulebot.history import HistoryUnavailable
from joulebot.history.api_keys import PLATFORM
from joulebot.history.tables import Exchange
from joulebot.models import ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, NoBox, QueueClient, QueueUnavailable, queue_errors
from joulebot.queueing.deliveries import Delivery, DeliveryBook
from joulebot.queueing.follower import Follower
from joulebot.queueing.rate_limits import RateLimiter
from joulebot.web.chat_sessions import WEB_PLATFORM
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_request import ChatBody, JoulebotOptions, answer_tokens, conversation, sampling
from joulebot.web.own_history import OwnHistory

PENDING_RETRY_S = 5  # what a client with too many answers pending is told to wait before asking again
BY_ADDRESS, EVERYONE = "web-address", "web-everyone"  # the anonymous web chat's rate counters
QUEUE_AWAY = "joulebot's queue is unavailable right now; please try again in a minute"


@dataclass(frozen=True)
class Asker:
    """Who asks through the API: a key's user (platform `api`), or an anonymous web chat session's
    (platform `web`, held to the per-address and global limits too)."""

    platform: str
    user: str
    address: str | None = None  # an anonymous asker's IP address

    @property
    def anonymous(self) -> bool:
        return self.platform == WEB_PLATFORM

    @property
    def who(self) -> str:
        return "this session" if self.anonymous else "this key"


@dataclass
class ApiQueue:
    """What the API keeps for the app's life: one queue client for every request, the deliveries and
    rate counters of its platforms (`api`, and `web` for the anonymous web chat; shared with every
    other web process through Redis), the daily energy budgets (read from the app's history), the
    process's one follower of answers (its thread starts with the first answer followed; the app's
    lifespan closes it), the images kept for retries and later turns (KEEP_IMAGES; None: not kept), and
    the tasks that follow answers to their end."""

    settings: Settings
    client: QueueClient
    books: dict[str, DeliveryBook]
    rates: dict[str, RateLimiter]
    budgets: EnergyBudgets
    follower: Follower
    kept: KeptImages | None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def for_settings(cls, settings: Settings, ledger: Ledger) -> ApiQueue:
        client = QueueClient(settings)
        connection, per_minute = client.connection, settings.max_prompts_per_minute
        books = {p: DeliveryBook(connection, p) for p in (PLATFORM, WEB_PLATFORM)}
        rates = {p: RateLimiter(connection, p, per_minute) for p in (PLATFORM, WEB_PLATFORM)}
        rates[BY_ADDRESS] = RateLimiter(connection, BY_ADDRESS, settings.web_chat_per_ip_per_minute)
        rates[EVERYONE] = RateLimiter(connection, EVERYONE, settings.web_chat_per_minute)
        budgets, kept = EnergyBudgets(settings, ledger), KeptImages.of(settings)
        return cls(settings, client, books, rates, budgets, Follower(settings), kept)

    def spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a task that outlives the request (held until it ends, its failure logged)."""
        spawn(self.tasks, coroutine, what)


def _refuse_if_busy(api: ApiQueue, asker: Asker) -> None:
    most = api.settings.max_pending_per_user
    if api.books[asker.platform].pending_for(asker.user) >= most:
        raise ApiError(
            429,
            f"{asker.who} already has {most} answers pending (MAX_PENDING_PER_USER); wait for one of them first",
            code="too_many_pending",
            retry_after_s=PENDING_RETRY_S,
        )


def _refuse_if_over_budget(api: ApiQueue, request: Request) -> None:
    """429 `energy_budget_exceeded` once the asker's (or the web chat's) energy budget for the day is
    used, until it resets; 503 when history cannot say how much was used."""
    try:
        api.budgets.check(request.platform, request.user_id)
    except BudgetSpent as spent:
        raise ApiError(429, str(spent), code="energy_budget_exceeded", retry_after_s=spent.use.retry_after_s) from None
    except BudgetUnknown as exc:
        raise ApiError(503, str(exc), code="history_unavailable") from None


def _refuse_if_too_often(api: ApiQueue, asker: Asker) -> None:
    """The asker's own rate limit; an anonymous asker's address's and everyone anonymous together's too."""
    limits = [(api.rates[asker.platform], asker.user, f"from {asker.who} (MAX_PROMPTS_PER_MINUTE)")]
    if asker.anonymous:
        address = asker.address or "unknown"
        limits.append((api.rates[BY_ADDRESS], address, "from your address (WEB_CHAT_PER_IP_PER_MINUTE)"))
        limits.append((api.rates[EVERYONE], "all", "from every visitor together (WEB_CHAT_PER_MINUTE)"))
    for limiter, counted, whose in limits:
        if not limiter.allow(counted):
            raise ApiError(
                429,
                f"more than {limiter.per_minute} questions in a minute {whose}",
                code="rate_limit_exceeded",
                retry_after_s=60 - int(time.time()) % 60,  # the limits count calendar minutes
            )


def _question(api: ApiQueue, asker: Asker, body: ChatBody, own: OwnHistory) -> Request:
    """The Request of the body's last message, checked as a chat message is, with its conversation."""
    asked = conversation(body)
    most = api.settings.max_prompt_chars
    if asked.system is not None and len(asked.system) > most:  # as a chat's /system: sent with every turn
        message = f"the system prompt has {len(asked.system)} characters; the maximum is {most}"
        raise ApiError(400, message, param="messages")
    options = body.joulebot or JoulebotOptions()
    again = [] if options.images_of is None else _images_of(api, own, asker, options.images_of)
    attached = _attached(api, asked.images, again)
    chosen = sampling(body)
    catalog = catalog_for_front_end(api.settings, api.client.connection)
    try:
        entry = catalog.resolve(body.model)
    except UnknownModelError as exc:
        raise ApiError(404, str(exc), param="model", code="model_not_found") from None
    except ModelUnavailable as exc:
        raise ApiError(503, str(exc), param="model", code="model_unavailable") from None
    try:
        question = asked.question if asked.question.strip() or not attached.images else default_question(attached)
        request = build_request(
            api.settings,
            catalog,
            platform=asker.platform,
            user_id=asker.user,
            prompt=question,
            model=entry.name,
            attached=attached,
        )
    except InputError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_prompt") from None
    if options.parent_id is not None:
        context = _continuing(api, own, asker, options.parent_id, asked.turns)
    else:  # the messages' earlier turns, each question with its images, read as the question's are
        turns = [
            turn.model_copy(update={"images": _attached(api, images).images}) if images else turn
            for turn, images in zip(asked.turns, asked.earlier_images, strict=True)
        ]
        context = Context(turns=turns, turn=1 + sum(t.role == "user" for t in asked.turns))
    return context.apply(request, asked.system).model_copy(
        update={
            "max_tokens": answer_tokens(body, api.settings.max_tokens),
            "sampling": chosen,
            "stream": body.stream,  # an answer asked for whole is not published while it grows
            "stream_interval_s": api.settings.api_stream_interval_s if body.stream else None,
        }
    )


def _shown_again(api: ApiQueue, asker: Asker) -> ShowAgain:
    """An answer's images as kept for the asker (every exchange OwnHistory finds is the asker's own)."""
    return kept_images(api.kept, asker.platform, lambda _: asker.user)


def _own_exchange(own: OwnHistory, asker: Asker, param: str, exchange_id: int) -> Exchange:
    """The asker's answer `exchange_id`: 404 if there is none of theirs, 503 while history is away."""
    try:
        exchange = own.exchange(asker.platform, asker.user, exchange_id)
    except HistoryUnavailable as exc:
        raise ApiError(503, f"{param}: {exc}", param=param, code="history_unavailable") from None
    if exchange is None:
        raise ApiError(404, f"{param}: there is no answer #{exchange_id} of yours", param=param)
    return exchange


def _continuing(api: ApiQueue, own: OwnHistory, asker: Asker, parent_id: int, turns: list[Turn]) -> Context:
    """Where a question continuing the asker's answer `parent_id` hangs: that answer's thread from history,
    each earlier question with its images where they were kept (KEEP_IMAGES)."""
    param = "joulebot.parent_id"
    if turns:
        raise ApiError(400, f"{param}: send the earlier turns either as messages or as {param}, not both", param=param)
    try:
        thread = own.thread(asker.platform, asker.user, parent_id)
    except HistoryUnavailable as exc:
        raise ApiError(503, f"{param}: {exc}", param=param, code="history_unavailable") from None
    if not thread:
        raise ApiError(404, f"{param}: there is no answer #{parent_id} of yours to continue", param=param)
    return Context.after(thread, _shown_again(api, asker))


def _images_of(api: ApiQueue, own: OwnHistory, asker: Asker, exchange_id: int) -> list[ImageInput]:
    """The images of the asker's answer `exchange_id`, as kept (a retry asks with them); 400 in one line
    when they were not kept, as a chat's Retry says."""
    param = "joulebot.images_of"
    exchange = _own_exchange(own, asker, param, exchange_id)
    try:
        return images_again(api.kept, _shown_again(api, asker), exchange)
    except ImagesGone as why:
        message = f"{param}: answer #{exchange_id}'s image cannot be shown again ({why}): send it again"
        raise ApiError(400, message, param=param, code="image_not_kept") from None


def _attached(api: ApiQueue, images: list[tuple[str, bytes]], again: list[ImageInput] | None = None) -> Attached:
    """The question's images read and normalised as a chat's are (MAX_IMAGES, MAX_IMAGE_BYTES, …), after
    those it asks with `again` (an earlier answer's, kept): together at most MAX_IMAGES."""
    again = again or []
    if not images and not again:
        return Attached()
    limits = image_limits(api.settings)
    try:
        check_count(len(again) + len(images), limits)
        return Attached(images=again + read_images(images, limits))
    except AttachmentError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_image") from None


def prepare(api: ApiQueue, asker: Asker, body: ChatBody, box: str | None, own: OwnHistory) -> Request:
    """The validated, routed Request; nothing is queued here. ApiError for each refusal."""
    try:
        api.client.ensure_ready()  # embedded: (re)start the embedded Redis and worker, as a chat does
        _refuse_if_busy(api, asker)
        request = _question(api, asker, body, own)
        _refuse_if_over_budget(api, request)
        try:
            (request,) = api.client.route([request], box)
        except NoBox as exc:
            raise ApiError(503, str(exc), param="joulebot.box" if box else "model", code="no_box") from None
        except JobError as exc:
            raise ApiError(503, str(exc), code="queue_unavailable") from None
        _refuse_if_too_often(api, asker)
        return request
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None


def submit(api: ApiQueue, request: Request) -> Delivery:
    """Queue the job with the delivery owing its answer, in one transaction: both or neither. With
    KEEP_IMAGES the question's images are kept first for its asker, as a chat keeps them."""
    if api.kept is not None:  # for a retry (`joulebot.images_of`) and the conversation's later turns
        api.kept.keep(request.platform, request.user_id, request.images)
    delivery = Delivery(
        request_ids=[request.id], platform=request.platform, user_id=request.user_id, chat_id="", units=request.units
    )
    try:
        with queue_errors(api.settings), api.client.connection.pipeline() as pipe:
            pipe.multi()
            api.books[delivery.platform].add(delivery, pipe)
            api.client.submit(request, pipe)
            pipe.execute()
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None
    return delivery
