"""Names shared by the worker and its clients, kept light to import."""

from __future__ import annotations

JOB_FUNCTION = "joulebot.queue_worker.job.run_request"


def box_status_key(queue_name: str) -> str:
    """Where the worker says what the box is doing, for users whose jobs still wait."""
    return f"joulebot:box-status:{queue_name}"


def alive_key(queue_name: str) -> str:
    """Present while the queue's measurement worker process lives (it refreshes it on a thread)."""
    return f"joulebot:worker-alive:{queue_name}"


