"""The RQ job function. It runs in the measurement worker's process.

Jobs carry a Request as JSON and return a Result as JSON. A failure the user
should read (unknown model, a model that cannot answer) is put in the job's
meta as `error` before the job fails, so clients never parse tracebacks.
"""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from joulebot.config import get_settings
from joulebot.models import ModelUnavailable, RunnerError, UnknownModelError
from joulebot.queue_worker.contract import Request
from joulebot.queue_worker.keys import box_status_key
from joulebot.queue_worker.station import Station

_station: Station | None = None


def use_station(station: Station) -> None:
    """Called by the worker at start, so jobs find the warm models and the idle baseline."""
    global _station
    _station = station


def _current_station() -> Station:
    global _station
    if _station is None:  # a job run by a plain `rq worker`: build the station on first use
        _station = Station(get_settings())
    return _station


def _report_stage(stage: str) -> None:
    job = get_current_job()
    if job is None:
        return
    settings = _current_station().settings
    job.meta["stage"] = stage
    job.meta["box"] = settings.box_name
    job.save_meta()
    key = box_status_key(job.origin)
    if stage.startswith("cooling down"):
        job.connection.set(key, stage, ex=int(settings.cooldown_sleep_s * 2) + 10)
    else:
        job.connection.delete(key)


def _set_error(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["error"] = message
        job.save_meta()


def run_request(payload: dict[str, Any]) -> dict[str, Any]:
    request = Request.model_validate(payload)
    try:
        result = _current_station().run(request, stage=_report_stage)
    except (RunnerError, UnknownModelError, ModelUnavailable) as exc:
        _set_error(str(exc))
        raise
    return result.model_dump(mode="json")
