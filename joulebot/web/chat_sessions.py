"""Web chat sessions: whom a browser asks as, kept in Redis; the browser holds only a random id.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it with a
request), Secure behind https, and names nothing: Redis keeps the session under the SHA-256 of the
cookie's value, so a copy of Redis cannot be replayed as a cookie. Every form the page posts and every
/v1 call it makes carries the session's CSRF token as well (a form field, or the X-CSRF-Token header),
compared in constant time.

With WEB_CHAT=open a session is an anonymous user of platform `web` (a random id, unrelated to the
cookie); with WEB_CHAT=keys, signing in with an API key makes the session that key's user (platform
`api`), and the key is checked at every use (revoked: the session asks no more).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from joulebot.exchange import Units
from joulebot.history.api_keys import PLATFORM as KEY_PLATFORM
from joulebot.queueing.web_sessions import SessionStore

COOKIE = "joulebot_chat"
CSRF_HEADER = "x-csrf-token"
WEB_PLATFORM = "web"  # the history platform of anonymous web chat users
IDLE_S = 7 * 86_400  # a session that asked something lasts this long after its last use
FRESH_S = 3_600  # one that never asked, this long: a crawler's visits leave little behind
UNITS = TypeAdapter(Units)


@dataclass
class Session:
    id: str  # the cookie's value: never stored
    csrf: str
    platform: str  # "web" (anonymous) or "api" (signed in with a key)
    user: str  # the history's platform user id: an anonymous id, or the key's name
    key_hash: str | None = None  # signed in with this key (its SHA-256, as history keeps it)
    units: Units = "joules"
    asked: bool = False  # it asked something: kept for IDLE_S, not FRESH_S

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """The sessions in Redis; each call QueueUnavailable (one line) when Redis does not answer."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def create(self, platform: str, user: str, key_hash: str | None = None, units: Units = "joules") -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), platform, user, key_hash, units)
        self.save(session)
        return session

    @staticmethod
    def anonymous_user() -> str:
        return "anon-" + secrets.token_hex(12)

    def load(self, session_id: str) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        raw = self.store.get(_hash(session_id))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return Session(id=session_id, **{**data, "units": UNITS.validate_python(data.get("units"))})
        except (TypeError, ValueError):  # a session written by another version: none
            return None

    def save(self, session: Session) -> None:
        data = {k: v for k, v in asdict(session).items() if k != "id"}
        ttl = IDLE_S if session.asked else FRESH_S
        self.store.put(_hash(session.id), json.dumps(data), ttl)

    def touch(self, session: Session) -> None:
        """The session was used: it lives IDLE_S from now (and from its first question on, not FRESH_S)."""
        if not session.asked:
            session.asked = True
            self.save(session)
            return
        self.store.keep(_hash(session.id), IDLE_S)

    def end(self, session: Session) -> None:
        self.store.drop(_hash(session.id))


def cookie_of(request: Request) -> str:
    return request.cookies.get(COOKIE, "")


def secure(request: Request, public_url: str) -> bool:
    """Whether the browser reached us over https (directly or through a proxy uvicorn trusts)."""
    return request.url.scheme == "https" or public_url.startswith("https://")


def set_cookie(response: Response, session: Session, https: bool) -> None:
    response.set_cookie(COOKIE, session.id, max_age=IDLE_S, path="/", httponly=True, samesite="strict", secure=https)


def clear_cookie(response: Response, https: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=https)


def platform_of_mode(mode: str) -> str | None:
    """The platform a session of this WEB_CHAT mode asks as (None: the chat is off)."""
    return {"open": WEB_PLATFORM, "keys": KEY_PLATFORM}.get(mode)
