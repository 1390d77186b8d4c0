"""The one status line every front end shows while a job waits or runs."""

from __future__ import annotations

from joulebot.exchange import GENERATING
from joulebot.queueing.client import Progress


def status_text(progress: Progress) -> str:
    """What the job does now; in a fleet, also which box it waits for and why that one."""
    chosen = f" on {progress.box} ({progress.why})" if progress.box and progress.why else ""
    if progress.state == "queued":
        position = "" if progress.position is None else f" — position {progress.position + 1}"
        box = f" · box {progress.box_status}" if progress.box_status else ""
        waiting = "" if progress.workers else " (waiting for the measurement worker)"
        return f"⏳ queued{chosen}{position}{waiting}{box}"
    if progress.state == GENERATING:
        return f"✍️ generating{chosen}"
    return f"⚙️ running on {progress.box or 'the measurement box'} · {progress.state}"
