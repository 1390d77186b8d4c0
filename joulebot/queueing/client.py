"""Submitting a Request and waiting for its Result: what every front end uses.

The Result waits in Redis (for `RESULT_TTL_S`), keyed by the request id, so a
front end that restarts can still collect it with `job(request_id)`. RQ stays
behind this module: front ends see our exceptions, never RQ's or redis': Redis not
answering is `QueueUnavailable`, a job Redis no longer has is `JobGone`, a
`REDIS_URL` the server refuses is `SettingsError` (see `queue_errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from redis.client import Pipeline
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result as RQResult

from joulebot.categories import classify
from joulebot.config import Settings, SettingsError
from joulebot.exchange import GENERATING, Request, Result, Routing
from joulebot.keys import JOB_FUNCTION, alive_key, box_status_key
from joulebot.queueing import connection as conn
from joulebot.queueing import forgetting
from joulebot.queueing.answer_stream import read_answer
from joulebot.queueing.embedded import embedded_worker_alive, ensure_embedded_stack
from joulebot.queueing.fleet import BoxView, Fleet
from joulebot.queueing.routing import POLICIES, RoutingRefused, ago, route, same_box


class JobError(RuntimeError):
    """The job did not produce a Result; the message is for the user."""


class QueueUnavailable(JobError):
    """Redis does not answer (stopped, restarting, unreachable, or the embedded one cannot be started), or
    refuses to work (cannot save, out of memory, a replica, wrong credentials); what was queued may still
    be there. The message is one line saying which."""


class JobGone(JobError):
    """The job is no longer in Redis: its Result expired, or Redis restarted without it."""


# What redis-py raises when the server is not there (a missing unix socket can surface as FileNotFoundError).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, ConnectionRefusedError)


@contextlib.contextmanager
def queue_errors(settings: Settings | None = None) -> Iterator[None]:
    """Translate redis' exceptions into ours for everything said to Redis inside: each is one line."""
    try:
        yield
    except (redis.ResponseError, redis.AuthenticationError) as exc:
        if "DB index" in str(exc) or "invalid database" in str(exc).lower():
            raise SettingsError(
                "REDIS_URL names a database index this Redis server does not have"
                " (0–15 on a default server; more only with `databases` in redis.conf)"
            ) from None
        raise QueueUnavailable(f"{_redis_here(settings)} {conn.refused(exc)}") from None
    except UNREACHABLE as exc:
        if "invalid database" in str(exc).lower():  # redis-py's wording when SELECT fails on connect
            raise SettingsError("REDIS_URL names a database index this Redis server does not have") from None
        raise QueueUnavailable(f"{_redis_here(settings)} does not answer") from exc


def _redis_here(settings: Settings | None) -> str:
    """The queue's Redis, named for an error (worked out only then: parsing the URL on every call costs
    the chat's enqueue path several microseconds a command)."""
    return f"the queue's Redis ({conn.describe(settings)})" if settings is not None else "the queue's Redis"


EXPIRED = "this answer expired before it could be delivered; please ask again"


def list_boxes(settings: Settings) -> list[BoxView]:
    """Every box alive or lately seen (`joulebot boxes`); none while the embedded Redis is not running.

    QueueUnavailable (one line) when REDIS_URL's Redis does not answer or refuses."""
    connection = conn.connect(settings, retries=0)
    if settings.embedded_redis and not conn.is_up(connection):
        return []  # the embedded box starts on the first question
    with queue_errors(settings):
        return Fleet(connection, settings.worker_lost_after_s).boxes()


class JobTimedOut(JobError):
    """The model did not finish within the job's timeout (nothing was stored)."""


class JobCancelled(JobError):
    """The job was cancelled before it ran: nothing was measured or stored."""


class NoBox(JobError):
    """No live box can take the request (unknown or down box, model offered nowhere): bad input."""


@dataclass(frozen=True)
class Progress:
    state: str  # "queued", or the worker's stage ("generating", "loading model", ...)
    position: int | None = None  # 0-based place in the queue while queued
    workers: int = 0  # workers serving the queue
    box_status: str | None = None  # e.g. "cooling down (…)" while the worker waits
    box: str | None = None  # the measurement box running the job (or the one it waits for)
    why: str | None = None  # why that box was chosen


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class JobState:
    """What one pipelined read says of a job: its status, its queue, its meta (the worker's stage)."""

    status: JobStatus | None
    origin: str
    meta: dict


@dataclass
class Standings:
    """Where each waiting job stands in its queue and whether each box's worker lives: a few reads
    per queue, whatever the number of jobs followed."""

    positions: dict[str, dict[str, int]]  # queue -> job id -> 0-based position
    workers: dict[str, int]
    box_status: dict[str, str | None]
    alive: dict[str, bool]

    def where(self, origin: str, job_id: str) -> tuple[int | None, int, str | None]:
        """(position, workers serving the queue, what its box does) of a waiting job."""
        return self.positions.get(origin, {}).get(job_id), self.workers.get(origin, 0), self.box_status.get(origin)


class QueueClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection = conn.connect(settings)
        self.queue: Queue = conn.queue_for(settings, self.connection)
        self._queues: dict[str, Queue] = {self.queue.name: self.queue}
        self._embedded_restarts = 0
        # the embedded stack is one box; with a shared Redis, the boxes announce themselves
        self.fleet = None if settings.embedded_redis else Fleet(self.connection, settings.worker_lost_after_s)

    def _queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.connection, serializer=self.queue.serializer)
        return self._queues[name]

    # --- choosing a box ----------------------------------------------------------------------
    def boxes(self) -> list[BoxView]:
        """Every box alive or lately seen (none in embedded mode: that box does not publish to anyone)."""
        if self.fleet is None:
            return []
        with queue_errors(self.settings):
            return self.fleet.boxes()

    def route(self, requests: list[Request], box: str | None = None) -> list[Request]:
        """The requests with their box chosen (all on one box: a comparison must be fair).

        `box` pins a box (a user's choice); else `ROUTING` decides. NoBox (one line naming
        what is available) when no live box can take them. In embedded mode, and before any
        worker has announced itself, the configured queue takes them as before.
        """
        if self.fleet is None or (self.settings.follows_one_queue and box is None):
            return requests
        boxes = self.boxes()
        if not boxes:
            return requests
        first, *rest = requests
        policy = box or self.settings.routing
        try:
            category = first.category or classify(first.prompt)
            also = tuple(r.model for r in rest)
            wait_s, vision = self.settings.max_routing_wait_s, bool(first.images)
            decision = route(boxes, first.model, category, policy, wait_s, also=also, vision=vision)
        except RoutingRefused as exc:
            raise NoBox(str(exc)) from None
        decisions = [decision] + [same_box(decision) for _ in rest]
        return [r.model_copy(update={"routing": d}) for r, d in zip(requests, decisions, strict=True)]

    def ensure_ready(self) -> None:
        """In embedded mode, start the embedded Redis and worker if they are not running."""
        try:
            if self.settings.embedded_redis:
                ensure_embedded_stack(self.settings)
        except (redis.ConnectionError, redis.TimeoutError, OSError, RuntimeError) as exc:
            raise QueueUnavailable(f"the embedded queue could not be started: {exc}") from exc

    def reachable(self) -> bool:
        """Does Redis answer again? In embedded mode this (re)starts the embedded Redis and worker."""
        try:
            with queue_errors(self.settings):
                self.ensure_ready()
                return bool(self.connection.ping())
        except QueueUnavailable:
            return False

    def submit(self, request: Request, pipeline: Pipeline | None = None) -> Job:
        """Queue a Request (starting the embedded worker first if that is the mode).

        With `pipeline` (a MULTI/EXEC transaction of the caller's) the job is queued when the caller
        executes it, together with whatever else the caller wrote there. Without, in a transaction
        of its own: one round trip (RQ's own enqueue makes two).
        """
        self.ensure_ready()
        queue = self._queue(request.routing.queue) if request.routing else self.queue
        with queue_errors(self.settings):
            if pipeline is not None:
                return self._enqueue(queue, request, pipeline)
            with self.connection.pipeline() as pipe:
                pipe.multi()
                job = self._enqueue(queue, request, pipe)
                pipe.execute()
                return job

    def _enqueue(self, queue: Queue, request: Request, pipeline: Pipeline) -> Job:
        return queue.enqueue(
            JOB_FUNCTION,
            request.model_dump(mode="json"),
            job_id=request.id,
            job_timeout=self.settings.job_timeout_s,
            result_ttl=self.settings.result_ttl_s,
            failure_ttl=self.settings.result_ttl_s,
            description=f"{request.platform} {request.model}",
            pipeline=pipeline,
        )

    def job(self, request_id: str) -> Job:
        """The queued job of a request; JobGone if Redis no longer has it."""
        try:
            with queue_errors(self.settings):
                return Job.fetch(request_id, connection=self.connection, serializer=self.queue.serializer)
        except NoSuchJobError:
            raise JobGone(EXPIRED) from None

    def resumable(self, request_id: str) -> Job | None:
        """A job queued earlier that still waits, runs or holds its Result; None if it must be queued again."""
        try:
            job = self.job(request_id)
        except JobGone:
            return None
        with queue_errors(self.settings):
            if job.get_status() in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, None):
                return None
        return job

    def progress(self, job: Job) -> Progress:
        with queue_errors(self.settings):
            return self._progress(job)

    def _progress(self, job: Job) -> Progress:
        job.refresh()  # its queue may have changed (moved off a box that stopped)
        routing = _routing_of(job)
        box, why = (routing.box, routing.reason) if routing else (None, None)
        status = job.get_status()
        if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED):
            workers = Worker.count(queue=self._queue(job.origin))
            raw = self.connection.get(box_status_key(job.origin))
            box_status = raw.decode() if isinstance(raw, bytes) else raw
            return Progress("queued", job.get_position(), workers, box_status, box, why)
        return Progress(job.meta.get("stage", GENERATING), None, 1, box=job.meta.get("box") or box, why=why)

    def poll(self, job: Job, block_s: int = 1) -> Result | None:
        """The Result if the job has ended (waiting up to `block_s`); JobError if it failed."""
        with queue_errors(self.settings):
            return self._poll(job, block_s)

    def _poll(self, job: Job, block_s: int) -> Result | None:
        outcome = job.latest_result(timeout=block_s)  # wakes at once when the result is written
        if outcome is None or outcome.type == RQResult.Type.RETRIED:
            if not job.exists(job.id, connection=self.connection):  # e.g. Redis restarted without persistence
                raise JobGone(
                    "this question is no longer in joulebot's queue (it restarted without it); please ask again"
                )
            self._check_worker(job)
            return None
        return self._to_result(job, outcome)

    def _check_worker(self, job: Job) -> None:
        """A job no worker will ever run or finish: say so rather than wait forever."""
        status = job.get_status(refresh=True)
        if status == JobStatus.QUEUED and self.settings.embedded_redis:
            self._check_embedded_worker()
        if status == JobStatus.QUEUED and self.fleet is not None:
            self._move_if_box_died(job)
        if status in (JobStatus.CANCELED, JobStatus.STOPPED):
            job.refresh()
            if "error" in job.meta:  # ended by joulebot (e.g. its box stopped), with the reason
                raise JobError(job.meta["error"])
            raise JobCancelled("cancelled before it ran; nothing was measured or stored")  # by its user
        if status != JobStatus.STARTED:
            return
        if self.connection.exists(alive_key(job.origin)):
            return
        if self._has_result(job):  # it finished just now, as the worker exited
            return
        raise JobError(
            "the measurement worker stopped in the middle of this answer; nothing was recorded — please ask again"
        )

    def _move_if_box_died(self, job: Job) -> None:
        """A job waiting on a box that stopped goes to another live box offering its model. With none, it
        waits for its own box's worker to come back (a restart) until `BOX_RETURN_WAIT_S` after the box's
        last sign of life; then it is cancelled, said in one line."""
        boxes = self.boxes()
        dead = next((v for v in boxes if v.profile.queue == job.origin and not v.live), None)
        if dead is None:
            return
        job.refresh()
        request = Request.model_validate(job.args[0])
        if request.routing is None:
            return  # queued on the one configured queue: it waits for that box, as before fleets
        policy = self.settings.routing if self.settings.routing in POLICIES else "greenest"
        try:  # over every box: one that is not live is never chosen, and is named as lately seen
            category = request.category or classify(request.prompt)
            wait_s, vision = self.settings.max_routing_wait_s, bool(request.images)
            decision = route(boxes, request.model, category, policy, wait_s, vision=vision)
        except RoutingRefused as exc:
            if dead.seen_age_s < self.settings.box_return_wait_s:
                return  # its worker may be restarting: the question keeps its place
            if self.connection.lrem(self._queue(job.origin).key, 0, job.id):  # ours to end (no one moved it)
                waited = ago(self.settings.box_return_wait_s)
                gone = f"box {dead.name} stopped before running this question and was not back within {waited}"
                job.meta["error"] = f"{gone}; {exc}"
                job.save_meta()
                job.cancel()
            return
        if not self.connection.lrem(self._queue(job.origin).key, 0, job.id):
            return  # another front end moved it first, or the box took it just before it stopped
        reason = f"moved from {dead.name} (stopped): {decision.reason}"
        moved = decision.model_copy(update={"policy": "moved", "moved_from": dead.name, "reason": reason})
        self.submit(request.model_copy(update={"routing": moved}))
        job.refresh()

    def _check_embedded_worker(self) -> None:
        """The embedded worker may have exited (idle, or failed at start): start it once more, then give up."""
        if embedded_worker_alive(self.settings):
            return
        if self._embedded_restarts >= 1:
            raise JobError(f"the embedded worker does not start; see {self.settings.data_dir / 'worker.log'}")
        self._embedded_restarts += 1
        self.ensure_ready()

    def _has_result(self, job: Job) -> bool:
        outcome = job.latest_result()
        return outcome is not None and outcome.type != RQResult.Type.RETRIED

    def wait(self, job: Job, on_progress: ProgressCallback | None = None, timeout_s: float | None = None) -> Result:
        """Block until the job ends; report progress about once a second."""
        waited = 0
        last: Progress | None = None
        while timeout_s is None or waited < timeout_s:
            result = self.poll(job)
            if result is not None:
                return result
            waited += 1
            if on_progress is not None:
                current = self.progress(job)
                if current != last:
                    on_progress(current)
                    last = current
        raise JobError(f"no answer after {timeout_s:.0f} s; it will still be stored in your history")

    def _to_result(self, job: Job, outcome: RQResult) -> Result:
        return self.result_of(job.id, outcome, job)

    def result_of(self, request_id: str, outcome: RQResult, job: Job | None = None) -> Result:
        """The Result of a job's outcome; JobError with the reason it has none."""
        if outcome.type == RQResult.Type.SUCCESSFUL:
            return Result.model_validate(outcome.return_value)
        try:
            with queue_errors(self.settings):
                if job is None:
                    job = Job.fetch(request_id, connection=self.connection, serializer=self.queue.serializer)
                else:
                    job.refresh()  # the reason joulebot wrote, if any
        except NoSuchJobError:  # expired or evicted just before its failed result
            raise JobGone(EXPIRED) from None
        timed_out = "JobTimeoutException" in (outcome.exc_string or "")  # RQ's death penalty ended it
        if "error" in job.meta:
            raise (JobTimedOut if timed_out else JobError)(job.meta["error"])
        if outcome.type == RQResult.Type.STOPPED:
            raise JobError("the job was stopped before it finished")
        exc = (outcome.exc_string or "").strip()
        last_line = exc.splitlines()[-1] if exc else "unknown error"
        raise JobError(f"the worker failed: {last_line.split(':')[0]} (see the worker log)")

    # --- following many jobs at once (the follower's reads) ---------------------------------------
    def job_states(self, request_ids: list[str]) -> dict[str, JobState]:
        """Every job's status, queue and meta in one round trip; a job Redis no longer has is left out."""
        with queue_errors(self.settings), self.connection.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.hmget(Job.key_for(request_id), ["status", "origin", "meta"])
            rows = pipe.execute()
        found = {}
        for request_id, (status, origin, meta) in zip(request_ids, rows, strict=True):
            if status is None and origin is None:
                continue
            try:
                decoded = self.queue.serializer.loads(meta) if meta else {}
            except ValueError:
                decoded = {}
            found[request_id] = JobState(
                JobStatus(status.decode()) if status else None, origin.decode() if origin else "", decoded
            )
        return found

    def standings(self, waiting: set[str], running: set[str]) -> Standings:
        """Positions, workers and box status of the queues with waiting jobs; the liveness of the
        workers of those with running ones: one round trip."""
        queues = sorted(waiting)
        boxes = sorted(running)
        with queue_errors(self.settings), self.connection.pipeline(transaction=False) as pipe:
            for name in queues:
                pipe.lrange(self._queue(name).key, 0, -1)
                pipe.get(box_status_key(name))
            for name in boxes:
                pipe.exists(alive_key(name))
            replies = pipe.execute()
            workers = {name: Worker.count(queue=self._queue(name)) for name in queues}
        positions, box_status = {}, {}
        for index, name in enumerate(queues):
            ids, status = replies[2 * index], replies[2 * index + 1]
            positions[name] = {(i.decode() if isinstance(i, bytes) else i): n for n, i in enumerate(ids)}
            box_status[name] = status.decode() if isinstance(status, bytes) else status
        alive = {name: bool(flag) for name, flag in zip(boxes, replies[2 * len(queues) :], strict=True)}
        return Standings(positions, workers, box_status, alive)

    def routings(self, request_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """(box, why it was chosen) of each request, in one round trip; (None, None) on the one configured
        queue, or for a job Redis no longer has."""
        with queue_errors(self.settings):
            jobs = Job.fetch_many(request_ids, connection=self.connection, serializer=self.queue.serializer)
        found: dict[str, tuple[str | None, str | None]] = {}
        for request_id, job in zip(request_ids, jobs, strict=True):
            routing = _routing_of(job) if job is not None else None
            found[request_id] = (routing.box, routing.reason) if routing else (None, None)
        return found

    def no_answer_from(self, request_id: str) -> None:
        """A job cancelled, stopped, or running on a box whose worker died: JobError with the reason,
        unless its Result came meanwhile (then it is in its stream)."""
        job = self.job(request_id)
        with queue_errors(self.settings):
            if not self._has_result(job):
                self._check_worker(job)

    def rescue(self, waiting: list[str]) -> None:
        """Waiting jobs no worker would run: an embedded worker that exited is started again (once,
        then JobError); a job on a box that stopped moves to another live box, or fails with the reason."""
        with queue_errors(self.settings):
            if self.settings.embedded_redis:
                self._check_embedded_worker()
            if self.fleet is None:
                return
            dead = {v.profile.queue for v in self.boxes() if not v.live}
            if not dead:
                return
            for job in Job.fetch_many(waiting, connection=self.connection, serializer=self.queue.serializer):
                if job is not None and job.origin in dead:
                    self._move_if_box_died(job)

    def partial(self, request_id: str) -> str | None:
        """The answer so far, while the worker generates it (None before the first words)."""
        with queue_errors(self.settings):
            return read_answer(self.connection, request_id)

    def forget(self, request_ids: list[str], platform: str, user_id: str) -> None:
        """Delete what Redis keeps of these requests' words and the user's Results still waiting for
        history, then write Redis' files anew (see `forgetting`); QueueUnavailable if it does not answer."""
        with queue_errors(self.settings), forgetting.server_up(self.settings):
            forgetting.forget_requests(self.connection, request_ids)
            forgetting.drop_waiting_results(self.connection, platform, user_id)
            forgetting.rewrite_files(self.connection, self.settings.embedded_redis)

    def cancel(self, job: Job) -> bool:
        """Cancel a job that has not started; a running job is left to finish and be stored."""
        with queue_errors(self.settings):
            if job.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                job.cancel()
                return True
        return False


def _routing_of(job: Job) -> Routing | None:
    try:
        routing = job.args[0].get("routing") if job.args else None
        return Routing.model_validate(routing) if routing else None
    except (ValueError, AttributeError):
        return None
