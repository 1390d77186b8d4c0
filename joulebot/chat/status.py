"""The one status line every front end shows while a job waits or runs."""

from __future__ import annotations

from joulebot.queueing.client import Progress


def status_text(progress: Progress) -> str:
    if progress.state == "queued":
        position = "" if progress.position is None else f" — position {progress.position + 1}"
        box = f" · box {progress.box_status}" if progress.box_status else ""
        waiting = "" if progress.workers else " (waiting for the measurement worker)"
        return f"⏳ queued{position}{waiting}{box}"
    if progress.state == "generating":
        return "✍️ generating"
    return f"⚙️ running on {progress.box or 'the measurement box'} · {progress.state}"
