"""Who a browser is to the web chat (WEB_CHAT=off | keys | open): its session, checked at every use,
and the checks every state-changing request from a page passes (same origin, the session's CSRF token).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from joulebot.web.chat_sessions import Session, Sessions, cookie_of, platform_of_mode
from joulebot.web.page import history_of, settings_of


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def chat_mode(request: Request) -> str:
    return settings_of(request).web_chat


def _still_valid(request: Request, session: Session) -> bool:
    """Blocking: a session of the mode the chat is in now; signed in with a key, one that still works."""
    if session.platform != platform_of_mode(chat_mode(request)):
        return False
    if session.key_hash is None:
        return True
    return history_of(request).api_key_owner(session.key_hash, hashed=True) == session.user


def _load(request: Request) -> Session | None:
    if platform_of_mode(chat_mode(request)) is None or not cookie_of(request):
        return None
    session = sessions_of(request).load(cookie_of(request))
    return session if session is not None and _still_valid(request, session) else None


async def session_of(request: Request) -> Session | None:
    """The request's web chat session, if it has one that works (QueueUnavailable if Redis is away)."""
    return await run_in_threadpool(_load, request)


def address_of(request: Request) -> str:
    """The asker's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


def same_origin(request: Request) -> bool:
    """A browser names the page a POST came from: it must be one of ours (no Origin: not a browser's
    cross-site form; the session's token is still required)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    public = settings_of(request).public_url
    if public:
        parts = urlsplit(public)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return origin in own
