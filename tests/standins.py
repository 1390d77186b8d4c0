"""Local stand-ins that speak the documented wire protocols of services we cannot reach."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b""
    delay_s: float = 0.0


@dataclass
class HttpStandIn:
    """An HTTP server on 127.0.0.1 answering from a queue of Replies, recording every request."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                standin.requests.append(
                    {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers.items())}
                )
                reply = standin.replies.pop(0) if standin.replies else Reply(500, {"error": "no reply queued"})
                time.sleep(reply.delay_s)
                body = json.dumps(reply.body).encode() if isinstance(reply.body, dict) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
