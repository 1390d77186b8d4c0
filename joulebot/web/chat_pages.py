"""The web chat's pages (WEB_CHAT=keys or open; with off, /chat is not there). Server-rendered, readable
without JavaScript: the conversation is in the address (`/chat?after=ID` continues from answer ID, an
earlier one branches), the page's forms post and wait for the answer; `static/chat.js` streams instead,
through /v1, and swaps in the fragments below (`/chat/turn/ID`, `/chat/pair/A/B`, the list of
conversations `/chat/conversations`) once an answer ends.

Only the session's own answers are ever found: any other id is "no such answer".
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from joulebot.queueing.client import QueueUnavailable
from joulebot.web.chat_access import chat_mode, session_of, sessions_of
from joulebot.web.chat_bill import ShownTurn, ratio_of, shown_exchange
from joulebot.web.chat_models import choices
from joulebot.web.chat_sessions import WEB_PLATFORM, Session, Sessions, platform_of_mode, secure, set_cookie
from joulebot.web.openai_api import api_of
from joulebot.web.openai_asking import QUEUE_AWAY
from joulebot.web.own_history import OwnHistory
from joulebot.web.page import MAX_ROW_ID, Page, check_params, history_of, int_param, private, render, settings_of

NO_ANSWER = "No answer of yours has that number."


def require_chat(request: Request) -> str:
    mode = chat_mode(request)
    if platform_of_mode(mode) is None:
        raise HTTPException(404, "The web chat is off here (WEB_CHAT=off).")
    return mode


async def require_session(request: Request) -> Session:
    require_chat(request)
    try:
        session = await session_of(request)
    except QueueUnavailable:
        raise HTTPException(503, QUEUE_AWAY) from None
    if session is None:
        raise HTTPException(403, "Your web chat session has ended: open /chat again.")
    return session


def _gather(request: Request, session: Session, after: int | None, page: Page) -> dict[str, Any]:
    """Blocking: what the chat page shows this session (history and Redis read in the thread pool)."""
    own, api = OwnHistory(history_of(request)), api_of(request)
    thread: list[ShownTurn] = []
    if after is not None:
        found = page.history(own.thread, session.platform, session.user, after, default=None)
        if found is None and not page.banners:
            raise HTTPException(404, NO_ANSWER)
        thread = [shown_exchange(e) for e in found or []]
    side = _side(request, session, page)
    try:
        models = choices(api, history_of(request))
        pending = api.books[session.platform].pending_of(session.user)
    except QueueUnavailable:
        page.banners.append(QUEUE_AWAY)
        models, pending = [], []
    return {"thread": thread, "models": models, "pending": pending, **side}


def _side(request: Request, session: Session, page: Page) -> dict[str, Any]:
    """Blocking: the side panel's list of the session's conversations (`tips`) and today's use of the
    energy budgets that apply (`budget`, a line each)."""
    own, budgets = OwnHistory(history_of(request)), api_of(request).budgets
    return {
        "tips": page.history(own.tips, session.platform, session.user, default=[]),
        "budget": budgets.day_lines(session.platform, session.user),
    }


async def chat_page(request: Request, session: Session, status: int = 200, **shown: Any) -> Response:
    """The chat page for `session` (`shown`: what a form adds — an error, a notice, an answer history has
    not stored yet, the prompt to keep in the box, a comparison)."""
    after = shown.pop("after", None)
    if after is None and "after" in request.query_params:
        after = int_param(request, "after", 1, 1, MAX_ROW_ID)
    page = Page()
    gathered = await run_in_threadpool(_gather, request, session, after, page)
    last = gathered["thread"][-1] if gathered["thread"] else None
    chosen = shown.pop("model", None) or (last.model if last else settings_of(request).default_model)
    context = {"session": session, "mode": chat_mode(request), "after": after, "chosen": chosen, **gathered}
    return render(request, "chat.html", page, status=status, **{**context, **shown})


def _new_anonymous(request: Request) -> Session:
    api = api_of(request)
    api.client.ensure_ready()  # embedded: the session lives in the embedded Redis
    units = settings_of(request).default_units
    return sessions_of(request).create(WEB_PLATFORM, Sessions.anonymous_user(), units=units)


async def chat(request: Request) -> Response:
    """GET /chat: the conversation (`?after=ID`), or a new one; signing in first with WEB_CHAT=keys."""
    mode = require_chat(request)
    check_params(request, {"after"})
    try:
        session = await session_of(request)
        if session is None and mode == "keys":
            return render(request, "chat_signin.html", Page(), mode=mode)
        fresh = session is None
        if session is None:
            session = await run_in_threadpool(_new_anonymous, request)
    except QueueUnavailable:
        raise HTTPException(503, QUEUE_AWAY) from None
    response = await chat_page(request, session)
    if fresh:
        set_cookie(response, session, secure(request, settings_of(request).public_url))
    private(response)
    return response


def _own(request: Request, session: Session, *ids: int) -> list[Any]:
    own = OwnHistory(history_of(request))
    page = Page()
    found = [page.history(own.exchange, session.platform, session.user, i) for i in ids]
    if page.banners:
        raise HTTPException(503, page.banners[0])
    if any(e is None for e in found):
        raise HTTPException(404, NO_ANSWER)
    return found


def _ids(request: Request, *names: str) -> list[int]:
    ids = [int(request.path_params[n]) for n in names]
    if any(i > MAX_ROW_ID for i in ids):
        raise HTTPException(404, NO_ANSWER)
    return ids


async def turn(request: Request) -> Response:
    """GET /chat/turn/ID: one answer of the session's, with its bill (a fragment for chat.js)."""
    session = await require_session(request)
    (exchange,) = await run_in_threadpool(_own, request, session, *_ids(request, "id"))
    response = render(request, "chat_turn_fragment.html", Page(), session=session, t=shown_exchange(exchange))
    private(response)
    return response


async def conversations(request: Request) -> Response:
    """GET /chat/conversations?after=ID: the list of the session's conversations, the one ending at ID
    marked current, and today's use of the energy budgets (a fragment chat.js swaps in once an answer
    is stored: the answer just stored counts); 503 while history is away, so that the page keeps what
    it has."""
    session = await require_session(request)
    check_params(request, {"after"})
    after = int_param(request, "after", 0, 1, MAX_ROW_ID) or None
    page = Page()
    side = await run_in_threadpool(_side, request, session, page)
    if page.banners:
        raise HTTPException(503, page.banners[0])
    response = render(request, "chat_conversations.html", page, session=session, after=after, **side)
    private(response)
    return response


def pair_context(a: Any, b: Any) -> dict[str, Any]:
    return {"compared": [shown_exchange(a), shown_exchange(b)], "ratio": ratio_of(a, b)}


async def pair(request: Request) -> Response:
    """GET /chat/pair/A/B: two answers side by side and the ratio of their energies (a fragment)."""
    session = await require_session(request)
    a, b = await run_in_threadpool(_own, request, session, *_ids(request, "a", "b"))
    response = render(request, "chat_pair_fragment.html", Page(), session=session, **pair_context(a, b))
    private(response)
    return response


async def compare(request: Request) -> Response:
    """GET /chat/compare/A/B: the chat page with a comparison of two of the session's answers."""
    session = await require_session(request)
    a, b = await run_in_threadpool(_own, request, session, *_ids(request, "a", "b"))
    response = await chat_page(request, session, **pair_context(a, b), model=a.model, compare_with=b.model)
    private(response)
    return response
