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
from typing import Any

import redis

from joulebot.keys import answer_stream_key


class AnswerStream:
    """The worker's side: publish the answer so far. A Redis hiccup only skips one entry's write
    (the next `d` then carries the text since the last one written)."""

    def __init__(self, connection: redis.Redis, request_id: str, max_entries: int, ttl_s: int) -> None:
        self.connection, self.key = connection, answer_stream_key(request_id)
        self.max_entries, self.ttl_s = max_entries + 16, ttl_s
        self.written = ""

    def publish(self, answer: str) -> None:
        if answer == self.written:
            return
        grown = answer.startswith(self.written)
        fields = {"d": answer[len(self.written) :]} if grown else {"t": answer}
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError), self.connection.pipeline() as pipe:
            pipe.xadd(self.key, fields, maxlen=self.max_entries, approximate=True)  # type: ignore[arg-type]
            pipe.expire(self.key, self.ttl_s)
            pipe.execute()
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
