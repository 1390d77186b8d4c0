"""The web chat's forms, which work without JavaScript (chat.js sends the same questions to /v1 and
streams them instead): ask (compare, retry), cancel, units, sign in and out.

Every post must come from our own origin with the session's CSRF token. An ask is a /v1 request made
in this process (`start_answer`, the API's one way to queue), then waits for the answer and shows the
conversation it continues.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from joulebot.exchange import Result
from joulebot.history import HistoryUnavailable
from joulebot.history.api_keys import PLATFORM as KEY_PLATFORM
from joulebot.history.api_keys import key_hash
from joulebot.web.chat_access import address_of, same_origin, session_of, sessions_of
from joulebot.web.chat_bill import shown_result
from joulebot.web.chat_pages import chat_page, require_chat, require_session
from joulebot.web.chat_sessions import Session, clear_cookie, secure, set_cookie
from joulebot.web.openai_api import api_of, cancel_answer, start_answer
from joulebot.web.openai_asking import Asker
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_follow import Followed
from joulebot.web.openai_request import ChatBody, parse_body
from joulebot.web.page import Page, history_of, render, settings_of

FIELDS = 12  # the most fields a chat form has
STALE = "This form is from an older page of the chat, or from another site: reload /chat and send it again."


async def posted(request: Request, files: int = 0) -> tuple[Session, FormData]:
    """A page's form, checked: the session, our own origin, the session's CSRF token (else 403, STALE)."""
    session = await require_session(request)
    if not same_origin(request):
        raise HTTPException(403, STALE)
    most = settings_of(request).api_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise HTTPException(413, f"The form is over {most} bytes (API_MAX_BODY_BYTES): send smaller images.")
    form = await request.form(max_files=files, max_fields=FIELDS)
    if not session.csrf_ok(str(form.get("csrf") or "")):
        raise HTTPException(403, STALE)
    return session, form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _number(form: FormData, name: str) -> int | None:
    value = _text(form, name).strip()
    return int(value) if value.isdigit() else None


async def _images(form: FormData) -> list[str]:
    """The chosen images as the data: URLs an API client sends (an empty file input sends none)."""
    urls = []
    for item in form.getlist("images"):
        if isinstance(item, UploadFile) and item.filename:
            data = base64.b64encode(await item.read()).decode()
            urls.append(f"data:{item.content_type or 'application/octet-stream'};base64,{data}")
    return urls


def _body(model: str, prompt: str, parent_id: int | None, images: list[str], images_of: int | None) -> ChatBody:
    """The /v1 body a page's question is: the same parsing and checks as any API client's (`images_of`:
    a Retry asks with the images of the answer it retries)."""
    content = [{"type": "text", "text": prompt}] + [{"type": "image_url", "image_url": {"url": u}} for u in images]
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    extension = {"parent_id": parent_id, "images_of": images_of}
    if any(v is not None for v in extension.values()):
        body["joulebot"] = {k: v for k, v in extension.items() if v is not None}
    return parse_body(json.dumps(body).encode())


async def ask(request: Request) -> Response:
    """POST /chat/ask: ask (with `compare_with`, two models side by side), wait, show the answer."""
    session, form = await posted(request, files=settings_of(request).max_images)
    model, prompt, compare_with = _text(form, "model"), _text(form, "prompt"), _text(form, "compare_with")
    parent, images_of = _number(form, "parent_id"), _number(form, "images_of")
    keep = {"prompt": prompt, "model": model, "compare_with": compare_with, "after": parent}
    asker = Asker(session.platform, session.user, address_of(request))
    await run_in_threadpool(sessions_of(request).touch, session)  # a session that asks is kept IDLE_S
    watches: list[Followed] = []
    try:
        images = await _images(form)
        bodies = [_body(model, prompt, None if compare_with else parent, images, images_of)]
        if compare_with:  # a comparison is a new question to both, side by side
            bodies.append(_body(compare_with, prompt, None, images, images_of))
        for body in bodies:
            watches.append((await start_answer(request, asker, body, None))[1])
    except ApiError as exc:
        if not watches:
            return await chat_page(request, session, status=exc.status, error=exc.message, **keep)
        watches.append(_failed(exc))  # the first is queued already: show it beside the refusal
    await asyncio.gather(*(w.finished.wait() for w in watches))
    results = [w.result for w in watches if w.result is not None]
    errors = [w.error for w in watches if w.error is not None]
    ids = [r.exchange_id for r in results]
    if not errors and None not in ids:
        target = f"/chat?after={ids[0]}#turn-{ids[0]}" if len(ids) == 1 else f"/chat/compare/{ids[0]}/{ids[1]}"
        return RedirectResponse(target, 303)
    return await _unstored(request, session, results, errors, keep)


def _failed(exc: ApiError) -> Followed:
    watch = Followed()
    watch.end(error=exc)
    return watch


async def _unstored(
    request: Request, session: Session, results: list[Result], errors: list[ApiError], keep: dict
) -> Response:
    """Answers history has not stored yet, or an answer that did not come: shown on the page itself."""
    fresh = [shown_result(r) for r in results]
    status = 200 if results else errors[0].status
    said = "; ".join(e.message for e in errors) or None
    return await chat_page(request, session, status=status, error=said, fresh=fresh, **keep)


async def cancel(request: Request) -> Response:
    """POST /chat/cancel: take one of the session's questions out of the queue while it still waits."""
    session, form = await posted(request)
    asker = Asker(session.platform, session.user, address_of(request))
    try:
        said = await run_in_threadpool(cancel_answer, api_of(request), asker, _text(form, "request_id"))
    except ApiError as exc:
        return await chat_page(request, session, status=exc.status, error=exc.message)
    return await chat_page(request, session, notice=said)


async def units(request: Request) -> Response:
    """POST /chat/units: the bills in joules or in watts, remembered by the session."""
    session, form = await posted(request)
    chosen = _text(form, "units")
    if chosen not in ("joules", "watts"):
        raise HTTPException(400, "'units' must be joules or watts.")
    session.units = chosen  # type: ignore[assignment]
    await run_in_threadpool(sessions_of(request).save, session)
    back = _text(form, "next")
    if not back.startswith("/chat") or back.startswith("//"):
        back = "/chat"
    return RedirectResponse(back, 303)


async def signin(request: Request) -> Response:
    """POST /chat/signin (WEB_CHAT=keys): an API key makes this browser's session that key's user."""
    mode = require_chat(request)
    if mode != "keys":
        raise HTTPException(404, "Signing in is only for WEB_CHAT=keys.")
    if not same_origin(request):
        raise HTTPException(403, STALE)
    form = await request.form(max_files=0, max_fields=2)
    key = _text(form, "api_key").strip()
    try:
        name = await run_in_threadpool(history_of(request).api_key_owner, key) if key else None
    except HistoryUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    if name is None:
        message = "That API key does not work (revoked, or mistyped)."
        return render(request, "chat_signin.html", Page(), status=401, error=message, mode=mode)
    before = await session_of(request)
    sessions = sessions_of(request)
    if before is not None:
        await run_in_threadpool(sessions.end, before)
    units = settings_of(request).default_units
    session = await run_in_threadpool(sessions.create, KEY_PLATFORM, name, key_hash(key), units)
    response = RedirectResponse("/chat", 303)
    set_cookie(response, session, secure(request, settings_of(request).public_url))
    return response


async def signout(request: Request) -> Response:
    """POST /chat/signout: end the session (its answers stay in history; this browser no longer sees them)."""
    session, _ = await posted(request)
    await run_in_threadpool(sessions_of(request).end, session)
    response = RedirectResponse("/chat", 303)
    clear_cookie(response, secure(request, settings_of(request).public_url))
    return response
