"""One follower for every answer a front-end process waits for.

A wait that holds a thread (a blocking poll through `asyncio.to_thread`) serves as many answers
at once as the pool has threads: a thousand people waiting would be served six at a time. So
each process has one `Follower`: one thread and one Redis connection, however many answers it
waits for. The thread waits on all of them at once: RQ writes each job's Result to a Redis
stream of its own, and the worker writes the answer so far to another (`answer_stream_key`), so
one XREAD BLOCK covers every pending answer and returns as soon as any of them moves. Once a
second the thread also reads, in one pipeline, what every followed job does (where it waits in
its queue, which stage it is at) and does what following one answer always did: it moves a job
off a box that stopped, says when a worker died, and keeps following through a Redis outage
(the answer is delivered when Redis is back, or said lost).

A task follows an answer through a `Watch` (any asyncio loop, any number of tasks):

    async with follower.watch(request_id) as watch:
        async for event in watch:
            match event:
                case Delta(text=new, answer=so_far): ...  # the answer grew (token streams: `new`)
                case Status(progress=progress): ...       # queued where, on which box, at which stage
                case QueueAway(): ...                     # Redis went away; the watch goes on
                case Finished(result=result, rest=rest): ...  # the final Result (and the answer's end
                                                              # no Delta gave): the iteration ends
    # a failed, cancelled or lost answer raises JobError (JobCancelled, JobGone) from the iteration

The events wait in the watch coalesced: the newest status, the answer so far, the final Result.
A slow reader sees the latest of each, never a backlog, and the final is never behind a status.
A position is reported when it moved by a visible step (every step near the front, a quarter of
the way further back) or after a while, so a moving queue does not make every waiter's screen
change every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rq.job import JobStatus
from rq.results import Result as RQResult

from joulebot.config import Settings
from joulebot.exchange import GENERATING, Result
from joulebot.keys import answer_stream_key
from joulebot.queueing.answer_stream import apply_entry
from joulebot.queueing.client import (
    EXPIRED,
    UNREACHABLE,
    JobError,
    JobGone,
    JobState,
    Progress,
    QueueClient,
    QueueUnavailable,
    Standings,
)

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often the jobs' states are read (positions, stages, failover, dead workers)
ADMIT_S = 0.25  # the longest a new watch waits before its streams are read
RETRY_S = 2.0  # while Redis is away: how often to ask whether it is back
POSITION_EVERY_S = 5.0  # a position alone changes on screen at most this often
POSITION_AFTER_S = 30.0  # ... and at least this often while it moves by small steps
LOST = "joulebot's queue restarted without your question, so its answer was lost; please ask again."
NO_LONGER_QUEUED = "this question is no longer in joulebot's queue (it restarted without it); please ask again"
WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED)


@dataclass(frozen=True)
class Delta:
    """The answer grew by `text`; `answer` is all of it so far (the worker's pace: STREAM_INTERVAL_S)."""

    text: str
    answer: str


@dataclass(frozen=True)
class Status:
    """Where the job is: queued (position, box status) or running (its stage)."""

    progress: Progress


@dataclass(frozen=True)
class QueueAway:
    """Redis does not answer; the watch goes on and ends with the answer, or JobGone, once it is back."""

    reason: str


@dataclass(frozen=True)
class Finished:
    """The final Result, as soon as it is there (before any Delta still pending): `rest` is the end
    of its answer that no Delta gave yet ("" when what was streamed is not how the answer begins)."""

    result: Result
    rest: str = ""


Event = Delta | Status | QueueAway | Finished


def visible_move(shown: int, now: int) -> bool:
    """A position moved enough to show: every step near the front, a quarter of the way further back."""
    return abs(shown - now) >= max(1, shown // 4)


@dataclass
class _State:
    """What the follower thread knows of one followed job (touched by that thread only)."""

    request_id: str
    results_from: str = "0-0"  # stream ids read so far
    answer_from: str = "0-0"
    answer: str = ""  # the answer so far
    checked: bool = False  # its job was seen in Redis at least once
    origin: str | None = None
    routing: tuple[str | None, str | None] = (None, None)  # (box, why) of the job's routing, per origin
    shown: Progress | None = None  # the last progress handed to the watches
    shown_at: float = 0.0
    away: bool = False  # Redis went away while it was followed


class Watch:
    """One task's view of one answer: an async iterator of `Event`s (see the module's docstring)."""

    def __init__(self, follower: Follower, request_id: str) -> None:
        self.follower, self.request_id = follower, request_id
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        # written by the follower's thread, read by the task
        self._answer = ""
        self._progress: Progress | None = None
        self._progress_seq = 0
        self._away: str | None = None
        self._end: Result | JobError | None = None
        # the task's side
        self._sent = 0
        self._sent_progress = 0
        self._told_away = False
        self._closed = False
        self._admitted = False  # the follower thread gave it what its job's state already showed

    # -- the follower's side (its thread) ---------------------------------------------------
    def _notify(self) -> bool:
        """Wake the task; False if its loop is gone (the watch is dropped)."""
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
            return True
        except RuntimeError:
            return False

    def _grow(self, answer: str) -> bool:
        with self._lock:
            self._answer = answer
        return self._notify()

    def _status(self, progress: Progress) -> bool:
        with self._lock:
            self._progress, self._progress_seq = progress, self._progress_seq + 1
        return self._notify()

    def _queue_away(self, reason: str) -> bool:
        with self._lock:
            self._away = reason
        return self._notify()

    def _finish(self, end: Result | JobError) -> None:
        with self._lock:
            self._end = end
        self._notify()

    # -- the task's side ----------------------------------------------------------------------------
    def _next(self) -> Event | None:
        with self._lock:
            answer, progress, seq, away, end = self._answer, self._progress, self._progress_seq, self._away, self._end
        if isinstance(end, Result):
            streamed = answer[: self._sent]
            return Finished(end, end.answer[len(streamed) :] if end.answer.startswith(streamed) else "")
        if isinstance(end, JobError):
            raise end
        if len(answer) > self._sent:
            new, self._sent = answer[self._sent :], len(answer)
            return Delta(new, answer)
        if away is not None and not self._told_away:
            self._told_away = True
            return QueueAway(away)
        if progress is not None and seq != self._sent_progress:
            self._sent_progress = seq
            return Status(progress)
        return None

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None when `timeout` seconds passed without one. After Finished (or an
        exception), StopAsyncIteration."""
        if self._closed:
            raise StopAsyncIteration
        while True:
            self._wake.clear()
            try:
                event = self._next()
            except JobError:
                self.close()
                raise
            if event is not None:
                if isinstance(event, Finished):
                    self.close()
                return event
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        event = await self.next()
        assert event is not None  # no timeout: it waits for one
        return event

    def close(self) -> None:
        """Stop following (done by the iteration's end, and by `async with`)."""
        if not self._closed:
            self._closed = True
            self.follower._drop(self)

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Table:
    """The watches by request id, shared by the tasks (adding, closing) and the thread (the rest)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    watches: dict[str, list[Watch]] = field(default_factory=dict)
    states: dict[str, _State] = field(default_factory=dict)  # the thread's own
    arrived: threading.Event = field(default_factory=threading.Event)


class Follower:
    """Follows every answer its process waits for on one thread and one Redis connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = QueueClient(settings)  # used by the follower's thread only: one connection
        self._table = _Table()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._away_since: float | None = None
        self._next_tick = 0.0

    def watch(self, request_id: str) -> Watch:
        """Follow the answer to `request_id` (call from the task that will read the events)."""
        watch = Watch(self, request_id)
        with self._table.lock:
            self._table.watches.setdefault(request_id, []).append(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="joulebot-follower", daemon=True)
                self._thread.start()
        self._table.arrived.set()
        return watch

    def close(self) -> None:
        """Stop the thread (the watches still open get no more events)."""
        self._stop.set()
        self._table.arrived.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _drop(self, watch: Watch) -> None:
        with self._table.lock:
            watches = self._table.watches.get(watch.request_id, [])
            with contextlib.suppress(ValueError):
                watches.remove(watch)
            if not watches:
                self._table.watches.pop(watch.request_id, None)

    def _watching(self, request_id: str) -> list[Watch]:
        with self._table.lock:
            return list(self._table.watches.get(request_id, []))

    def _forget(self, request_id: str, watches: list[Watch]) -> None:
        """The job ended: its watches hold their end, the thread stops reading its streams."""
        with self._table.lock:
            for watch in watches:
                with contextlib.suppress(ValueError):
                    self._table.watches.get(request_id, []).remove(watch)
            if not self._table.watches.get(request_id):
                self._table.watches.pop(request_id, None)
                self._table.states.pop(request_id, None)

    # -- the thread ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            states = self._admit()
            if not states:
                self._table.arrived.wait(TICK_S)
                self._table.arrived.clear()
                continue
            try:
                if self._away_since is not None:
                    self._wait_for_redis(states)
                    continue
                self._read_streams(states)
                if time.monotonic() >= self._next_tick:
                    self._next_tick = time.monotonic() + TICK_S
                    self._tick(states)
            except QueueUnavailable as exc:
                self._went_away(states, str(exc))
            except UNREACHABLE as exc:
                self._went_away(states, f"the queue does not answer ({type(exc).__name__})")
            except Exception:  # a bug must not stop every answer of the process: logged, retried
                log.exception("the follower failed; it goes on in a second")
                self._stop.wait(TICK_S)

    def _admit(self) -> dict[str, _State]:
        """The jobs followed now: a new job gets a state, a new watch what its job's state shows."""
        with self._table.lock:
            table = self._table
            for request_id in [r for r in table.states if r not in table.watches]:
                del table.states[request_id]
            fresh = []
            for request_id, watches in table.watches.items():
                state = table.states.get(request_id)
                if state is None:
                    state = table.states[request_id] = _State(request_id)
                    self._next_tick = 0.0  # read the new job's state at once
                fresh += [(state, w) for w in watches if not w._admitted]
            states = dict(table.states)
        for state, watch in fresh:
            watch._admitted = True
            if state.answer:
                watch._grow(state.answer)
            if state.shown is not None:
                watch._status(state.shown)
        return states

    def _read_streams(self, states: dict[str, _State]) -> None:
        """Wait (until the next tick, at most ADMIT_S) for a Result or more of an answer; hand them over."""
        streams: dict[Any, Any] = {}
        owners: dict[str, tuple[_State, bool]] = {}
        for state in states.values():
            results, answer = RQResult.get_key(state.request_id), answer_stream_key(state.request_id)
            streams[results], streams[answer] = state.results_from, state.answer_from
            owners[results], owners[answer] = (state, False), (state, True)
        block = max(1, int(min(ADMIT_S, max(0.0, self._next_tick - time.monotonic())) * 1000))
        replies: Any = self.client.connection.xread(streams, block=block)
        for key, entries in replies or []:
            state, is_answer = owners[key.decode() if isinstance(key, bytes) else key]
            if is_answer:
                self._answer_grew(state, entries)
            else:
                self._results(state, entries)

    def _answer_grew(self, state: _State, entries: list) -> None:
        for entry_id, fields in entries:
            state.answer_from = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            state.answer = apply_entry(state.answer, fields)
        self._tell(state, lambda watch: watch._grow(state.answer))

    def _results(self, state: _State, entries: list) -> None:
        for entry_id, payload in entries:
            state.results_from = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            outcome = RQResult.restore(
                state.request_id,
                state.results_from,
                payload,
                connection=self.client.connection,
                serializer=self.client.queue.serializer,
            )
            if outcome.type == RQResult.Type.RETRIED:
                continue
            try:
                end: Result | JobError = self.client.result_of(state.request_id, outcome)
            except JobError as exc:
                end = exc
            self._end(state, end)
            return

    def _tell(self, state: _State, deliver: Callable[[Watch], bool]) -> None:
        for watch in self._watching(state.request_id):
            if not deliver(watch):  # its loop is gone
                self._drop(watch)

    def _end(self, state: _State, end: Result | JobError) -> None:
        watches = self._watching(state.request_id)
        for watch in watches:
            watch._finish(end)
        self._forget(state.request_id, watches)

    def _tick(self, states: dict[str, _State]) -> None:
        """Every followed job's state in one round trip: progress to show, failover, and what no answer
        will come from."""
        jobs = self.client.job_states(list(states))
        moved = [r for r, s in states.items() if r in jobs and jobs[r].origin != s.origin]
        for request_id, routing in (self.client.routings(moved) if moved else {}).items():
            states[request_id].origin, states[request_id].routing = jobs[request_id].origin, routing
        waiting = {job.origin for job in jobs.values() if job.status in WAITING}
        running = {job.origin for job in jobs.values() if job.status == JobStatus.STARTED}
        queues = self.client.standings(waiting, running)
        now = time.monotonic()
        for request_id, state in states.items():
            try:
                progress = self._progress(state, jobs.get(request_id), queues)
            except JobError as exc:
                self._end(state, exc)
                continue
            state.checked = True
            if progress is not None and worth_showing(state.shown, progress, now - state.shown_at):
                state.shown, state.shown_at = progress, now
                self._tell(state, functools.partial(Watch._status, progress=progress))
        self._rescue({r: s for r, s in states.items() if r in jobs and jobs[r].status == JobStatus.QUEUED})

    def _progress(self, state: _State, job: JobState | None, queues: Standings) -> Progress | None:
        """What the job does now; JobError (the reason) when no answer will come from it."""
        if job is None:  # its hash is gone: expired, or Redis restarted without it
            raise JobGone(LOST if state.away else (NO_LONGER_QUEUED if state.checked else EXPIRED))
        box, why = state.routing  # read again when its queue changed (moved off a box that stopped)
        if job.status in WAITING:
            position, workers, box_status = queues.where(job.origin, state.request_id)
            return Progress("queued", position, workers, box_status, box, why)
        stopped = job.status in (JobStatus.CANCELED, JobStatus.STOPPED)
        if stopped or (job.status == JobStatus.STARTED and not queues.alive.get(job.origin, True)):
            self.client.no_answer_from(state.request_id)  # JobError with the reason, unless a Result came
            return None
        if job.status == JobStatus.STARTED:
            return Progress(job.meta.get("stage", GENERATING), None, 1, box=job.meta.get("box") or box, why=why)
        return None  # finished or failed: its Result is in its stream

    def _rescue(self, waiting: dict[str, _State]) -> None:
        """Jobs waiting on a box that stopped move to another (or fail, said); an embedded worker that
        exited is started again."""
        if not waiting:
            return
        try:
            self.client.rescue(list(waiting))
        except QueueUnavailable:
            raise
        except JobError as exc:  # the embedded worker does not start: no waiting answer will come
            for state in waiting.values():
                self._end(state, exc)

    # -- Redis away --------------------------------------------------------------------------------------
    def _went_away(self, states: dict[str, _State], reason: str) -> None:
        if self._away_since is None:
            log.warning("%s while following %d answers; waiting for it to come back", reason, len(states))
            self._away_since = time.monotonic()
        for state in states.values():
            state.away = True
            self._tell(state, lambda watch: watch._queue_away(reason))

    def _wait_for_redis(self, states: dict[str, _State]) -> None:
        """While Redis is away: watches are told (new ones too); the answers are said lost after RESULT_TTL_S."""
        self._went_away(states, "the queue does not answer")
        if self.client.reachable():
            log.info("the queue is back; following %d answers again", len(states))
            self._away_since, self._next_tick = None, 0.0
            return
        assert self._away_since is not None
        if time.monotonic() - self._away_since > self.settings.result_ttl_s:
            gone = JobGone(f"joulebot's queue was away for over {self.settings.result_ttl_s} s; your answer was lost")
            for state in list(states.values()):
                self._end(state, gone)
            return
        self._stop.wait(RETRY_S)


def worth_showing(shown: Progress | None, progress: Progress, age_s: float) -> bool:
    """Whether a new progress changes what the waiting person should see: anything but the position
    at once; a position alone by a visible step (at most every POSITION_EVERY_S, except at the very
    front) or after POSITION_AFTER_S."""
    if shown is None or progress == shown:
        return shown is None
    if progress.position is None and shown.position is not None and progress.state == shown.state:
        return False  # taken off its queue this instant: its stage follows
    if shown.position is None or progress.position is None or replace(progress, position=shown.position) != shown:
        return True
    if age_s < POSITION_EVERY_S and progress.position > 2:
        return False
    return visible_move(shown.position, progress.position) or age_s >= POSITION_AFTER_S
