"""The answer so far, pushed while the worker generates it: one Redis stream per request.

The worker's sink adds an entry each time it publishes (at most every STREAM_INTERVAL_S): `d`,
the text the answer grew by, or, when the text shown changed other than by growing (a reasoning
block closed), `t`, all of it. Whoever follows the answer reads the stream from its start or
from where it left off (XREAD BLOCK waits on many at once: `follower.py`), so a token stream
loses nothing between two reads. The stream is bounded — its MAXLEN is above the request's
token limit, and an entry carries at least one token, so nothing a reader needs is trimmed —
and it expires after the job's timeout.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import redis

from joulebot.keys import answer_stream_key

CLOSE_WAIT_S = 5.0  # the longest the job's end waits for a write under way (a socket timeout is shorter)


class AnswerStream:
    """The worker's side: publish the answer so far, off the generating thread.

    `publish` (called by the runner's sink, inside the measured window) only hands the text to a
    thread of the stream's own, so the generation never waits on a Redis round trip. That thread
    writes the newest text it was handed (what it grew by since the last write: texts handed over
    while a write was under way are coalesced into the next entry). A Redis hiccup only skips one
    write (the next `d` then carries the text since the last one written). `close` (the job's end)
    waits for a write under way and drops what was not written yet — the Result carries the whole
    answer — so no entry lands after the job ended."""

    def __init__(self, connection: redis.Redis, request_id: str, max_entries: int, ttl_s: int) -> None:
        self.connection, self.key = connection, answer_stream_key(request_id)
        self.max_entries, self.ttl_s = max_entries + 16, ttl_s
        self.written = ""  # touched by the publishing thread only
        self._expiring = False  # the stream's expiry is set (with its first entry)
        self._handed: str | None = None  # the newest text not written yet
        self._closed = False
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def publish(self, answer: str) -> None:
        with self._ready:
            if self._closed:
                return
            self._handed = answer
            self._ready.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="joulebot-answer-stream", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> None:
        with self._ready:
            self._closed, self._handed = True, None
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._handed is None and not self._closed:
                    self._ready.wait()
                answer, self._handed = self._handed, None
            if answer is None:  # closed
                return
            self.write(answer)

    def write(self, answer: str) -> None:
        """One entry: what the answer grew by since the last write (or all of it). The first also sets
        the stream's expiry (one round trip); the next are the XADD alone."""
        if answer == self.written:
            return
        grown = answer.startswith(self.written)
        fields: Any = {"d": answer[len(self.written) :]} if grown else {"t": answer}
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            if self._expiring:
                self.connection.xadd(self.key, fields, maxlen=self.max_entries, approximate=True)
            else:
                with self.connection.pipeline() as pipe:
                    pipe.xadd(self.key, fields, maxlen=self.max_entries, approximate=True)
                    pipe.expire(self.key, self.ttl_s)
                    pipe.execute()
                self._expiring = True
            self.written = answer


def apply_entry(answer: str, fields: dict) -> str:
    """The answer after one entry of its stream."""
    decoded = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    raw = decoded.get("d", decoded.get("t", b""))
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return answer + text if "d" in decoded else text


def read_answer(connection: redis.Redis, request_id: str) -> str | None:
    """The answer so far, read whole (None before the first words)."""
    answer = ""
    entries: Any = connection.xrange(answer_stream_key(request_id))
    for _, fields in entries:
        answer = apply_entry(answer, fields)
    return answer or None
