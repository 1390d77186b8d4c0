"""The RQ job function. It runs in the measurement worker's process, and only there.

Jobs carry a Request as JSON and return a Result as JSON. A failure the user
should read (unknown model, a model that cannot answer, the job timeout) is
put in the job's meta as `error` before the job fails; the queue client shows
that. Anything else is a bug: the client names only its exception type.

The station (models, meters, history) belongs to the `MeasurementWorker`; it
hands it to the job for the job's duration through a context variable, the way
RQ hands the current job to `get_current_job()`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import redis
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from joulebot.exchange import GENERATING, Request
from joulebot.keys import box_status_key
from joulebot.models import ModelUnavailable, RunnerError, UnknownModelError
from joulebot.queueing.answer_stream import AnswerStream
from joulebot.worker.station import Station

_serving: ContextVar[Station | None] = ContextVar("joulebot_station", default=None)


@contextlib.contextmanager
def serving(station: Station) -> Iterator[None]:
    """While a job runs, the job function reaches the worker's station."""
    token = _serving.set(station)
    try:
        yield
    finally:
        _serving.reset(token)


class NotAMeasurementWorker(RuntimeError):
    """The job was taken by something other than `joulebot worker` (e.g. a plain `rq worker`)."""


class _Stages:
    """Reports a job's stages. The first is never GENERATING: a started job with no stage is
    generating (the client reads it so), and a warm answer saves the round trip."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.shown: str | None = None

    def __call__(self, name: str) -> None:
        if name == GENERATING and self.shown is None:
            return
        self.shown = name
        _report_stage(self.station, name)

    def close(self) -> None:
        """A job that ended while "cooling down" was shown (its timeout hit while the box was hot)
        clears the box's status: the next job may show no stage at all, and so would not."""
        job = get_current_job()
        if job is not None and self.shown is not None and self.shown.startswith("cooling down"):
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                job.connection.delete(box_status_key(job.origin))


def _report_stage(station: Station, stage: str) -> None:
    """Tell waiting users what the box does. Cosmetic: a Redis hiccup must not fail the answer."""
    job = get_current_job()
    if job is None:
        return
    settings = station.settings
    job.meta["stage"] = stage
    job.meta["box"] = settings.box_name
    key = box_status_key(job.origin)
    # One round trip: the job's meta (what `Job.save_meta` writes) and the box status together.
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError), job.connection.pipeline() as pipe:
        pipe.hset(job.key, "meta", job.serializer.dumps(job.meta))
        if stage.startswith("cooling down"):
            pipe.set(key, stage, ex=int(settings.cooldown_sleep_s * 2) + 10)
        else:
            pipe.delete(key)
        pipe.execute()


def _set_error(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["error"] = message
        job.save_meta()


def _answer_stream(station: Station, request: Request) -> AnswerStream | None:
    """Where the answer so far is pushed, for the front ends that follow it."""
    job = get_current_job()
    if job is None or not request.stream:
        return None
    return AnswerStream(job.connection, request.id, request.max_tokens, station.settings.job_timeout_s + 60)


def _time_limit(station: Station) -> float:
    """The limit the asker set on the job, which may differ from this worker's own."""
    job = get_current_job()
    return job.timeout if job is not None and job.timeout else station.settings.job_timeout_s


def run_request(payload: dict[str, Any]) -> dict[str, Any]:
    station = _serving.get()
    if station is None:
        raise NotAMeasurementWorker("joulebot jobs run only in `joulebot worker` (it holds the meters)")
    limit = _time_limit(station)
    deadline = time.monotonic() + limit  # RQ's death penalty started a moment ago
    request = Request.model_validate(payload)
    stages = _Stages(station)
    stream = _answer_stream(station, request)
    try:
        publish = stream.publish if stream is not None else None
        result = station.run(request, stage=stages, publish=publish, deadline=deadline)
    except (RunnerError, UnknownModelError, ModelUnavailable) as exc:
        _set_error(str(exc))
        raise
    except JobTimeoutException:  # RQ's death penalty, raised into this frame
        _set_error(f"the model did not finish within {limit} s; job failed")
        raise
    finally:
        stages.close()
        if stream is not None:
            stream.close()
    return result.model_dump(mode="json")
