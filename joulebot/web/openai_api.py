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

from joulebot.exchange import Request as Question
from joulebot.web.openai_asking import ApiQueue, prepare, submit
from joulebot.web.openai_bill import chunk, completion, finish_reason, usage_chunk
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_follow import Watch, settle
from joulebot.web.openai_request import ChatBody, parse_body
from joulebot.web.page import history_of, settings_of

log = logging.getLogger(__name__)

OPEN_USER = "_open"  # with API_OPEN, who asked without a key (no key's name starts with "_")
KEEPALIVE_S = 15.0  # an SSE comment while an answer waits in the queue: proxies keep the connection


def api_of(request: Request) -> ApiQueue:
    api: ApiQueue = request.app.state.api
    return api


async def api_user(request: Request) -> str:
    """The name of the request's key (its user is api:NAME); 401 without a working one unless API_OPEN."""
    settings = settings_of(request)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if key:
        owner = await run_in_threadpool(history_of(request).api_key_owner, key)
        if owner is not None:
            return owner
        if not settings.api_open:
            raise ApiError(401, "this API key does not work (revoked, or mistyped)", code="invalid_api_key")
    elif not settings.api_open:
        raise ApiError(
            401, "no API key: send Authorization: Bearer KEY (an admin makes one: joulebot keys create NAME)"
        )
    return OPEN_USER


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


async def _sse(watch: Watch, question: Question, include_usage: bool, public_url: str) -> AsyncIterator[str]:
    """`chat.completion.chunk` events as the answer grows, then its finish, the bill (with
    `include_usage`) and `[DONE]`; an error that comes after the stream began is an `error` event."""
    yield _event(chunk(question, question.model, {"role": "assistant", "content": ""}))
    sent = ""
    while not watch.finished.is_set():
        try:
            await asyncio.wait_for(watch.changed.wait(), KEEPALIVE_S)
        except TimeoutError:
            yield ": waiting in the queue\n\n"
            continue
        watch.changed.clear()
        if watch.text.startswith(sent) and len(watch.text) > len(sent):
            yield _event(chunk(question, question.model, {"content": watch.text[len(sent) :]}))
            sent = watch.text
    if watch.error is not None or watch.result is None:
        yield _event((watch.error or ApiError(503, "no answer")).body())
        return
    result = watch.result
    if result.answer.startswith(sent) and len(result.answer) > len(sent):  # the rest of the answer as stored
        yield _event(chunk(question, result.model, {"content": result.answer[len(sent) :]}))
    yield _event(chunk(question, result.model, {}, finish_reason(result)))
    if include_usage:
        yield _event(usage_chunk(result, public_url))
    yield "data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    api, settings = api_of(request), settings_of(request)
    user = await api_user(request)
    body: ChatBody = parse_body(await read_body(request, settings.api_max_body_bytes))
    box = request.headers.get("x-joulebot-box") or (body.joulebot.box if body.joulebot else None)
    question = await run_in_threadpool(prepare, api, user, body, box)
    delivery = await run_in_threadpool(submit, api, question)
    watch = Watch()
    api.spawn(settle(api, delivery, watch), f"the API answer {delivery.key}")
    public_url = settings.public_url
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _sse(watch, question, include_usage, public_url)
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # nginx: pass each event at once
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    await watch.finished.wait()
    if watch.error is not None or watch.result is None:
        raise watch.error or ApiError(503, "no answer")
    return JSONResponse(completion(watch.result, public_url))
