"""A web chat user forgets their own questions and answers, as `/forget` does in the chats: through
`forget_user`, the one way to forget (the queue's Redis first, through the queue client; then history,
through its own API; then the images kept for them). Their anonymous energy figures stay, and the day's
energy still counts against the daily budgets.

GET /chat/forget says what goes and what stays, and asks; POST /chat/forget (our own origin, the
session's CSRF token, as every form of the page) forgets and shows the chat page, now empty, with the
outcome in one line. The session stays. With WEB_CHAT=keys the session's user is the key's (`api:NAME`):
what the key asked through the API is forgotten with what the page asked — it is one user.

A forget rewrites Redis' files and SQLite's log (PostgreSQL: a VACUUM), so a public page bounds it: a
user forgets at most FORGETS_PER_MINUTE times a minute, and an anonymous session that has asked nothing
has nothing to forget (its user is new) — a crawler or a script cannot make a server rewrite its files
more often than the question limits let it ask.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from joulebot.chat.forgetting import forget_user
from joulebot.history import HistoryUnavailable
from joulebot.queueing.client import QueueUnavailable
from joulebot.queueing.rate_limits import RateLimiter
from joulebot.web.chat_access import chat_mode
from joulebot.web.chat_forms import posted
from joulebot.web.chat_pages import chat_page, require_session
from joulebot.web.chat_sessions import WEB_PLATFORM, Session
from joulebot.web.history_writer import HistoryWriter
from joulebot.web.openai_api import api_of
from joulebot.web.page import Page, check_params, private, render, settings_of

log = logging.getLogger(__name__)

FORGETS_PER_MINUTE = 3
FORGETS = "web-forget"  # the rate counter of forgets from the web chat, per user
QUEUE_AWAY = "Nothing was deleted: joulebot's queue is unavailable; try again in a minute."
HISTORY_CLOSED = "Nothing was deleted: the history database cannot be reached now; try again in a minute."


class NotForgotten(Exception):
    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status, self.line = status, line


def writer_of(request: Request) -> HistoryWriter:
    writer: HistoryWriter = request.app.state.history_writer
    return writer


NOTHING = "Nothing to forget: no answer of yours is stored."


def _forget(request: Request, session: Session) -> str:
    """Blocking: forget the session's user everywhere joulebot keeps their words, or say why not."""
    api = api_of(request)
    limiter = RateLimiter(api.client.connection, FORGETS, FORGETS_PER_MINUTE)
    try:
        if not limiter.allow(f"{session.platform}:{session.user}"):
            raise NotForgotten(429, f"At most {FORGETS_PER_MINUTE} forgets a minute: wait a minute, then forget again.")
        if session.platform == WEB_PLATFORM and not session.asked:
            return NOTHING  # a new anonymous user: nothing of theirs is kept anywhere
        store = writer_of(request).store()
        forgotten = forget_user(store, api.client, session.platform, session.user)
        if not (forgotten.exchanges or forgotten.images) and not forgotten.queue_left:
            return NOTHING
        return forgotten.told(api.books[session.platform].pending_for(session.user), "forget")
    except QueueUnavailable:
        raise NotForgotten(503, QUEUE_AWAY) from None
    except HistoryUnavailable as exc:  # it could not be opened: nothing was done
        log.warning("a web chat forget found history away: %s", exc)
        raise NotForgotten(503, HISTORY_CLOSED) from None
    except SQLAlchemyError as exc:
        # forget_user reads history first (away then: nothing was done) and deletes there in one transaction
        # after Redis: the queue's copies may be gone, history keeps every word until a forget succeeds
        kind = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("a web chat forget found history away (%s)", kind)
        line = f"Your questions and answers are still in history: its database did not answer ({kind}). "
        line += "Copies joulebot's queue held may already be deleted. Forget again in a minute."
        raise NotForgotten(503, line) from None


async def confirm(request: Request) -> Response:
    """GET /chat/forget: what a forget deletes and what it keeps, and the button that does it."""
    session = await require_session(request)
    check_params(request, set())
    keep_images = settings_of(request).keep_images
    response = render(
        request, "chat_forget.html", Page(), session=session, mode=chat_mode(request), keep_images=keep_images
    )
    private(response)
    return response


async def forget(request: Request) -> Response:
    """POST /chat/forget: forget, then the chat page with the outcome (the session stays)."""
    session, _ = await posted(request)
    try:
        line = await run_in_threadpool(_forget, request, session)
    except NotForgotten as refused:
        return await chat_page(request, session, status=refused.status, error=refused.line)
    response = await chat_page(request, session, notice=line)
    private(response)
    return response
