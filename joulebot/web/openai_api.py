"""The OpenAI-compatible API: `POST /v1/chat/completions` (streamed or not), `GET /v1/models` and
`GET /v1/models/{id}`, served by the dashboard's app. A request is a question on the queue like a
chat message (`openai_asking`); its answer comes back with the bill (`openai_bill`).

Keys: `Authorization: Bearer KEY`, each key a user of platform `api` (`joulebot keys`); with
`API_OPEN=true` a request without a known key is the user `api:_open`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from joulebot.chat.cancelling import Cancelling
from joulebot.exchange import Request as Question
from joulebot.history.api_keys import PLATFORM
from joulebot.queueing.client import QueueUnavailable
from joulebot.web.chat_access import address_of, same_origin, session_of, sessions_of
from joulebot.web.chat_sessions import CSRF_HEADER, Session
from joulebot.web.openai_asking import QUEUE_AWAY, ApiQueue, Asker, prepare, submit
from joulebot.web.openai_bill import chunk, completion, finish_reason, usage_chunk
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_follow import Followed, settle
from joulebot.web.openai_request import ChatBody, parse_body
from joulebot.web.own_history import OwnHistory
from joulebot.web.page import history_of, settings_of

log = logging.getLogger(__name__)

OPEN_USER = "_open"  # with API_OPEN, who asked without a key (no key's name starts with "_")
KEEPALIVE_S = 15.0  # an SSE comment while an answer waits in the queue: proxies keep the connection


def api_of(request: Request) -> ApiQueue:
    api: ApiQueue = request.app.state.api
    return api


async def api_asker(request: Request) -> Asker:
    """Who asks: the request's key (its user is api:NAME), else the web chat session the page sends its
    CSRF token with; 401 without either unless API_OPEN (then the user api:_open)."""
    settings = settings_of(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if key:
        owner = await run_in_threadpool(history_of(request).api_key_owner, key)
        if owner is not None:
            return Asker(PLATFORM, owner)
        if not settings.api_open:
            raise ApiError(401, "this API key does not work (revoked, or mistyped)", code="invalid_api_key")
        return Asker(PLATFORM, OPEN_USER)
    session = await _session(request)
    if session is not None:
        return Asker(session.platform, session.user, address_of(request))
    if not settings.api_open:
        raise ApiError(
            401, "no API key: send Authorization: Bearer KEY (an admin makes one: joulebot keys create NAME)"
        )
    return Asker(PLATFORM, OPEN_USER)


async def _session(request: Request) -> Session | None:
    """The web chat session a page calls with: its cookie, its CSRF token, and our own origin; 403 if the
    cookie comes without them (another site's page, or a script without the token)."""
    try:
        session = await session_of(request)
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None
    if session is None:
        return None
    if not (same_origin(request) and session.csrf_ok(request.headers.get(CSRF_HEADER))):
        raise ApiError(403, "a web chat session asks with its page's CSRF token, from its own origin", code="csrf")
    await run_in_threadpool(sessions_of(request).touch, session)
    return session


async def read_body(request: Request, most: int) -> bytes:
    """The body, at most `most` bytes (413 past it, without reading the rest)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise ApiError(413, f"the request body is over {most} bytes (API_MAX_BODY_BYTES)", code="too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > most:
            raise ApiError(413, f"the request body is over {most} bytes (API_MAX_BODY_BYTES)", code="too_large")
    return bytes(body)


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(followed: Followed, question: Question, include_usage: bool, public_url: str) -> AsyncIterator[str]:
    """`chat.completion.chunk` events as the answer grows, then its finish, the bill (with
    `include_usage`) and `[DONE]`; an error that comes after the stream began is an `error` event."""
    yield _event(chunk(question, question.model, {"role": "assistant", "content": ""}))
    sent, shown = "", ""
    while not followed.finished.is_set():
        try:
            await asyncio.wait_for(followed.changed.wait(), KEEPALIVE_S)
        except TimeoutError:
            yield ": waiting in the queue\n\n"
            continue
        followed.changed.clear()
        if followed.status != shown and not sent:  # an SSE comment: OpenAI's clients skip it, the chat page shows it
            shown = followed.status
            yield f": status {shown}\n\n"
        if followed.text.startswith(sent) and len(followed.text) > len(sent):
            yield _event(chunk(question, question.model, {"content": followed.text[len(sent) :]}))
            sent = followed.text
    if followed.error is not None or followed.result is None:
        yield _event((followed.error or ApiError(503, "no answer")).body())
        return
    result = followed.result
    if result.answer.startswith(sent) and len(result.answer) > len(sent):  # the rest of the answer as stored
        yield _event(chunk(question, result.model, {"content": result.answer[len(sent) :]}))
    yield _event(chunk(question, result.model, {}, finish_reason(result)))
    if include_usage:
        yield _event(usage_chunk(result, public_url))
    yield "data: [DONE]\n\n"


async def start_answer(request: Request, asker: Asker, body: ChatBody, box: str | None) -> tuple[Question, Followed]:
    """Queue the body's question for `asker` and follow it to its end: the one way the API, and the web
    chat through it, asks anything."""
    api = api_of(request)
    own = OwnHistory(history_of(request))
    question = await run_in_threadpool(prepare, api, asker, body, box, own)
    delivery = await run_in_threadpool(submit, api, question)
    followed = Followed()
    api.spawn(settle(api, delivery, followed), f"the API answer {delivery.key}")
    return question, followed


async def chat_completions(request: Request) -> Response:
    settings = settings_of(request)
    asker = await api_asker(request)
    body: ChatBody = parse_body(await read_body(request, settings.api_max_body_bytes))
    box = request.headers.get("x-joulebot-box") or (body.joulebot.box if body.joulebot else None)
    question, followed = await start_answer(request, asker, body, box)
    public_url = settings.public_url
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _sse(followed, question, include_usage, public_url)
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # nginx: pass each event at once
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    await followed.finished.wait()
    if followed.error is not None or followed.result is None:
        raise followed.error or ApiError(503, "no answer")
    return JSONResponse(completion(followed.result, public_url))


def cancel_answer(api: ApiQueue, asker: Asker, request_id: str) -> str:
    """Blocking: take the asker's question out of the queue if it still waits there; what happened."""
    try:
        return Cancelling(api.client, api.books[asker.platform]).cancel(asker.user, "", request_id)
    except QueueUnavailable:
        raise ApiError(503, QUEUE_AWAY, code="queue_unavailable") from None


async def cancel_completion(request: Request) -> Response:
    """`POST /v1/chat/completions/{id}/cancel` (joulebot's own): a question still waiting in the queue
    is taken out of it; one already being generated finishes and is stored (a window is measured
    whole). Only the asker's own; the stream of a cancelled answer ends with a `cancelled` error."""
    asker = await api_asker(request)
    completion_id = request.path_params["id"]
    request_id = completion_id.removeprefix("chatcmpl-")
    said = await run_in_threadpool(cancel_answer, api_of(request), asker, request_id)
    return JSONResponse({"id": completion_id, "object": "chat.completion.cancel", "message": said})
