"""An API request becomes a Request on the queue by the chat front ends' own path: the asker's pending
limit, the catalog (names, aliases, Ollama tags), `build_request` (the prompt's checks and the context
check), routing (or the box pinned), the rate limit, and one transaction queueing the job with the
delivery that owes its answer. Each refusal is an ApiError with its status.

Blocking (Redis): the routes run these in the thread pool.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from joulebot.attachments.images import image_limits, read_images
from joulebot.attachments.parts import Attached, AttachmentError, default_question
from joulebot.chat.asking import InputError, build_request
from joulebot.chat.background import spawn
from joulebot.chat.deliveries import Delivery, DeliveryBook
from joulebot.chat.limits import RateLimiter
from joulebot.config import Settings
from joulebot.exchange import Request
from joulebot.history.api_keys import PLATFORM
from joulebot.models import ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, NoBox, QueueClient, QueueUnavailable, queue_errors
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_request import ChatBody, answer_tokens, conversation, sampling

PENDING_RETRY_S = 5  # what a client with too many answers pending is told to wait before asking again
QUEUE_AWAY = "joulebot's queue is unavailable right now; please try again in a minute"


@dataclass
class ApiQueue:
    """What the API keeps for the app's life: one queue client for every request, the deliveries and
    rate counters of platform `api` (shared with every other web process through Redis), and the
    tasks that follow answers to their end."""

    settings: Settings
    client: QueueClient
    deliveries: DeliveryBook
    rate: RateLimiter
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def for_settings(cls, settings: Settings) -> ApiQueue:
        client = QueueClient(settings)
        deliveries = DeliveryBook(client.connection, PLATFORM)
        return cls(
            settings, client, deliveries, RateLimiter(client.connection, PLATFORM, settings.max_prompts_per_minute)
        )

    def spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a task that outlives the request (held until it ends, its failure logged)."""
        spawn(self.tasks, coroutine, what)


def _refuse_if_busy(api: ApiQueue, user: str) -> None:
    most = api.settings.max_pending_per_user
    if api.deliveries.pending_for(user) >= most:
        raise ApiError(
            429,
            f"this key already has {most} answers pending (MAX_PENDING_PER_USER); wait for one of them first",
            code="too_many_pending",
            retry_after_s=PENDING_RETRY_S,
        )


def _question(api: ApiQueue, user: str, body: ChatBody) -> Request:
    """The Request of the body's last message, checked as a chat message is, with its conversation."""
    asked = conversation(body)
    most = api.settings.max_prompt_chars
    if asked.system is not None and len(asked.system) > most:  # as a chat's /system: sent with every turn
        message = f"the system prompt has {len(asked.system)} characters; the maximum is {most}"
        raise ApiError(400, message, param="messages")
    attached = _attached(api, asked.images)
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
            api.settings, catalog, platform=PLATFORM, user_id=user, prompt=question, model=entry.name, attached=attached
        )
    except InputError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_prompt") from None
    update = {
        "system": asked.system,
        "turns": asked.turns,
        "conversation_id": uuid.uuid4().hex,
        "turn": 1 + sum(t.role == "user" for t in asked.turns),
        "max_tokens": answer_tokens(body, api.settings.max_tokens),
        "sampling": chosen,
    }
    return request.model_copy(update=update)


def _attached(api: ApiQueue, images: list[tuple[str, bytes]]) -> Attached:
    """The question's images read and normalised as a chat's are (MAX_IMAGES, MAX_IMAGE_BYTES, …)."""
    if not images:
        return Attached()
    try:
        return Attached(images=read_images(images, image_limits(api.settings)))
    except AttachmentError as exc:
        raise ApiError(400, str(exc), param="messages", code="invalid_image") from None


def prepare(api: ApiQueue, user: str, body: ChatBody, box: str | None) -> Request:
    """The validated, routed Request; nothing is queued here. ApiError for each refusal."""
    try:
        api.client.ensure_ready()  # embedded: (re)start the embedded Redis and worker, as a chat does
        _refuse_if_busy(api, user)
        request = _question(api, user, body)
        try:
            (request,) = api.client.route([request], box)
        except NoBox as exc:
            raise ApiError(503, str(exc), param="joulebot.box" if box else "model", code="no_box") from None
        except JobError as exc:
            raise ApiError(503, str(exc), code="queue_unavailable") from None
        if not api.rate.allow(user):
            raise ApiError(
                429,
                f"more than {api.settings.max_prompts_per_minute} requests in a minute with this key "
                "(MAX_PROMPTS_PER_MINUTE)",
                code="rate_limit_exceeded",
                retry_after_s=60 - int(time.time()) % 60,  # the limit counts calendar minutes
            )
        return request
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None


def submit(api: ApiQueue, request: Request) -> Delivery:
    """Queue the job with the delivery owing its answer, in one transaction: both or neither."""
    delivery = Delivery(
        request_ids=[request.id], platform=PLATFORM, user_id=request.user_id, chat_id="", units=request.units
    )
    try:
        with queue_errors(api.settings), api.client.connection.pipeline() as pipe:
            pipe.multi()
            api.deliveries.add(delivery, pipe)
            api.client.submit(request, pipe)
            pipe.execute()
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None
    return delivery
