"""Deleting what the queue's Redis keeps of a user's words (the history's forget does the rest).

Where the words of a question and its answer sit in Redis:
- the RQ job's hash (`rq:job:<id>`): the Request (prompt, earlier turns, system prompt);
- its Results (`rq:results:<id>`): the Result, prompt and answer, kept `RESULT_TTL_S` for
  front ends to collect;
- the answer so far (`joulebot:answer-stream:<id>`), kept a minute past the job timeout;
- Results waiting for the history database (`joulebot:history-outbox:<queue>`).
The deliveries, conversation pointers, RQ's queues and registries hold ids, never words.

Redis' files keep what was deleted until they are written anew: the RDB snapshot until the
next save, an append-only file until it is rewritten. After a forget the embedded server
saves at once; a configured server rewrites its AOF and schedules a snapshot where it keeps
one (a server whose CONFIG is disabled is left to its own schedule, logged).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import redis
from rq.job import Job
from rq.results import Result as RQResult
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.keys import answer_stream_key, history_outbox_key
from joulebot.queueing import connection as conn

log = logging.getLogger(__name__)


@contextlib.contextmanager
def server_up(settings: Settings) -> Iterator[None]:
    """Redis answering for a forget: the embedded server is started if it is down (its snapshot holds
    the words) and shut down afterwards, saved; a configured one is used as it is."""
    if not settings.embedded_redis:
        yield
        return
    with conn.embedded_lock(settings):
        try:
            started = conn.start_embedded_redis(settings)
        except (RuntimeError, OSError) as exc:  # as if it did not answer (the caller's `queue_errors`)
            raise redis.ConnectionError(f"the embedded Redis could not be started: {exc}") from exc
        try:
            yield
        finally:
            if started is not None:
                conn.stop_embedded_redis(settings)
                started.wait(10)


def forget_requests(connection: redis.Redis, request_ids: list[str]) -> None:
    """Delete each request's job (its hash, its place in RQ's registries) and Results, and its answer so far."""
    if not request_ids:
        return
    jobs = Job.fetch_many(request_ids, connection=connection, serializer=JSONSerializer)
    with connection.pipeline(transaction=False) as pipe:
        for request_id, job in zip(request_ids, jobs, strict=True):
            if job is not None:
                job.delete(pipeline=pipe)
            pipe.delete(RQResult.get_key(request_id), answer_stream_key(request_id))  # also when the job expired
        pipe.execute()


def drop_waiting_results(connection: redis.Redis, platform: str, user_id: str) -> int:
    """Drop the user's Results still waiting for the history database (their measurements go with them).

    Optimistic (WATCH): the worker pops the list's head as it stores, so the list is rewritten only
    if nobody changed it meanwhile."""
    dropped = 0
    for key in connection.scan_iter(match=history_outbox_key("*")):
        with connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    waiting = pipe.lrange(key, 0, -1)
                    kept = [raw for raw in waiting if not _asked_by(raw, platform, user_id)]
                    if len(kept) == len(waiting):
                        break
                    pipe.multi()
                    pipe.delete(key)
                    if kept:
                        pipe.rpush(key, *kept)
                    pipe.execute()
                    dropped += len(waiting) - len(kept)
                    break
                except redis.WatchError:
                    continue
    return dropped


def _asked_by(raw: bytes | str, platform: str, user_id: str) -> bool:
    try:
        request = json.loads(raw).get("request") or {}
    except (ValueError, AttributeError):
        return False
    return request.get("platform") == platform and request.get("user_id") == user_id


def rewrite_files(connection: redis.Redis, embedded: bool) -> None:
    """Write Redis' persistence files anew so that they no longer hold what was just deleted."""
    try:
        if embedded:
            _save_now(connection)
            return
        if connection.info("persistence").get("aof_enabled"):
            connection.bgrewriteaof()
        if connection.config_get("save").get("save"):
            connection.bgsave(schedule=True)
    except redis.ResponseError as exc:  # CONFIG disabled, a rewrite already running: the schedule does it
        log.warning("Redis' files keep the forgotten words until its next save or rewrite: %s", exc)


def _save_now(connection: redis.Redis) -> None:
    """The embedded server's snapshot, written before the forget is reported done (it is small); if
    its own periodic save is running (begun before the deletions, maybe), one more right after it."""
    try:
        connection.save()
    except redis.ResponseError:  # "Background save already in progress"
        connection.bgsave(schedule=True)
