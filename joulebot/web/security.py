"""Headers every response carries, so that a browser runs only the app's own files, never frames a
page (clickjacking), and never guesses a type the server did not send (a CSV read as HTML).

The pages load one stylesheet and one script from /static, draw charts as inline SVG, and fetch
only their own rows: nothing else needs allowing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


def protect(response: Response) -> Response:
    """For a response sent outside the middleware (the server-error handler's)."""
    response.headers.update(HEADERS)
    return response


class SecurityHeaders:
    """Pure ASGI middleware (no buffering: a streamed response still streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_protected(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.app(scope, receive, send_protected)
