"""`joulebot worker` (the measurement worker of this box) and `joulebot stop` (the embedded one)."""

from __future__ import annotations

from joulebot.cli.console import fail, say
from joulebot.config import get_settings


def worker(idle_exit: int | None, burst: bool) -> None:
    """The worker in this process, with logging; its reason to stop, if any, is one line and its exit code."""
    from joulebot.config.logs import configure_logging
    from joulebot.worker.measurement_worker import WorkerExit, serve

    settings = get_settings()
    configure_logging(settings)
    try:
        serve(settings, idle_exit_s=idle_exit, burst=burst)
    except WorkerExit as exc:
        raise fail(exc.reason, exc.code if isinstance(exc.code, int) else 1) from None


def stop() -> None:
    """The embedded worker (after its running answer) and the embedded Redis; with REDIS_URL, refused.
    Says whether anything was running (a stale pid file is cleared either way)."""
    from joulebot.queueing import connection as conn
    from joulebot.queueing.embedded import embedded_worker_alive, stop_embedded_stack

    settings = get_settings()
    if not settings.embedded_redis:
        raise fail("REDIS_URL is set: stop the worker with your process manager", 2)
    running = embedded_worker_alive(settings) or conn.is_up(conn.connect(settings, retries=0))
    graceful = stop_embedded_stack(settings)
    if not running:
        say("nothing was running (the embedded worker and Redis start with the next question)")
    else:
        say("stopped" if graceful else "stopped (the worker had to be killed)")
