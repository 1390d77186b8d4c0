"""What the worker runs: joulebot's job function, with one Request, and nothing else.

Whoever can write to the queue's Redis must not be able to run code on the box, nor
stop its worker. A job is refused, before anything in it is imported or called, when
its function is not joulebot's; when it carries RQ callbacks (they name functions too)
or webhooks (the worker would send the job, a Request's words with it, wherever they
point, and wait on each); when its arguments are not one Request; and when it cannot
be read at all: RQ's default pickle or garbage in its `data` (RQ raises as soon as
the job's function is asked for), or a job hash whose fields RQ cannot parse (RQ
raises while dequeueing it). A refused job is failed (one that cannot be read is
dropped from RQ's lists), logged, counted in `joulebot:refused-jobs:<queue>`, and
the worker serves on.
"""

from __future__ import annotations

import logging

import redis
from rq import Queue
from rq.job import Job

from joulebot.keys import JOB_FUNCTION, refused_jobs_key

log = logging.getLogger(__name__)


def refusal(job: Job) -> str | None:
    """Why this job must not run here, or None for joulebot's own job."""
    try:
        func_name, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except Exception as exc:  # RQ's DeserializationError: pickle, garbage, JSON of another shape
        return f"its data cannot be read ({type(exc).__name__})"
    if func_name != JOB_FUNCTION:
        return f"not joulebot's job function: {func_name!r}"
    stored = job.to_dict(include_meta=False, include_result=False)
    if any(stored.get(f"{kind}_callback_name") for kind in ("success", "failure", "stopped")):
        return "carries callbacks (they would run arbitrary functions)"
    if job.webhooks:
        return "carries webhooks (the worker would send the job to those addresses)"
    one_request = isinstance(args, list | tuple) and len(args) == 1 and isinstance(args[0], dict)
    if instance is not None or kwargs or not one_request:
        return "arguments are not one Request"
    return None


def count_refused(connection: redis.Redis, queue: Queue, job_id: str, reason: str) -> None:
    """Log and count a refused job, and take it out of RQ's intermediate list (it is not run)."""
    log.error("refused job %s: %s", job_id, reason)
    with connection.pipeline() as pipe:
        pipe.incr(refused_jobs_key(queue.name))
        pipe.lrem(queue.intermediate_queue_key, 1, job_id)
        pipe.execute()


def unreadable_job(exc: Exception) -> tuple[str, Queue] | None:
    """The job id and queue RQ attaches to an error it met fetching a dequeued job (None: not such an error)."""
    job_id, queue = getattr(exc, "job_id", None), getattr(exc, "queue", None)
    if not isinstance(job_id, str) or not isinstance(queue, Queue):
        return None
    return job_id, queue
