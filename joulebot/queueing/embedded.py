"""The embedded stack of a machine with nothing configured: a Redis server and one worker.

The embedded worker owns the embedded Redis: front ends start both when needed
(`ensure_embedded_stack`, under a file lock so two never race), and the worker
stops itself and the server after a quiet period. `joulebot stop` stops both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from joulebot.config import Settings
from joulebot.config.files import PRIVATE_UMASK, private_dir, private_umask
from joulebot.queueing import connection as conn
from joulebot.queueing.box_lock import BoxLock


def pid_path(settings: Settings) -> Path:
    return settings.data_dir / "worker.pid"


def embedded_worker_alive(settings: Settings) -> bool:
    """A worker serves this data directory: the pid file names a live joulebot process, or a
    live process holds the box lock (an orphan whose pid file could not be written)."""
    try:
        if _live_joulebot(int(pid_path(settings).read_text())):
            return True
    except (FileNotFoundError, ValueError):
        pass
    connection = conn.connect(settings, retries=0)
    try:
        holder = BoxLock(connection, settings.box_name, settings.queue_name, settings.worker_lost_after_s).holder()
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False
    finally:
        connection.close()
    return holder is not None and not BoxLock.dead_here(holder)


def _live_joulebot(pid: int) -> bool:
    """A live (not zombie) process whose command line names joulebot.

    Read from /proc where there is one: this runs on every `joulebot ask`, and importing
    psutil costs more than the rest of the check.
    """
    if not Path("/proc/self/stat").exists():
        import psutil

        try:
            process = psutil.Process(pid)
            return process.status() != psutil.STATUS_ZOMBIE and "joulebot" in " ".join(process.cmdline())
        except psutil.Error:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and "joulebot" in cmdline


def claim_pid_file(settings: Settings) -> None:
    with private_umask():
        pid_path(settings).write_text(str(os.getpid()))


def release_pid_file(settings: Settings) -> None:
    try:
        if int(pid_path(settings).read_text()) == os.getpid():
            pid_path(settings).unlink()
    except (FileNotFoundError, ValueError):
        pass


def ensure_embedded_stack(settings: Settings) -> None:
    """Make sure the embedded Redis answers and an embedded worker serves it.

    Returns as soon as the job can be queued: a worker that is still warming up
    takes it when ready (the client shows that it waits).
    """
    with conn.embedded_lock(settings):
        if not embedded_worker_alive(settings):
            # spawned first: its imports (~1 s) run while Redis starts; it then waits for this lock
            _spawn_worker(settings)
        conn.start_embedded_redis(settings)


def _spawn_worker(settings: Settings) -> None:
    """An embedded worker in a session of its own, its pid noted (call with the embedded lock held)."""
    with private_umask(), open(private_dir(settings.data_dir) / "worker.log", "ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "joulebot", "worker", "--idle-exit", str(settings.embedded_worker_idle_exit_s)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C in the user's terminal must not reach it
            # the worker this front end expects: its data directory, box and queue
            env={
                **os.environ,
                "JOULEBOT_DATA_DIR": str(settings.data_dir),
                "BOX_NAME": settings.box_name,
                "QUEUE_NAME": settings.queue_name,
            },
            umask=PRIVATE_UMASK,  # what the worker writes (history, pid file) is private
        )
        try:
            pid_path(settings).write_text(str(child.pid))  # before the lock is released: no second spawn (0600)
        except OSError:
            child.kill()  # no orphan: a worker nobody can find or stop
            raise


def stop_embedded_stack(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the embedded worker (it finishes its current job) and the embedded Redis.

    Returns False if the worker had to be killed because it did not stop in time.
    """
    graceful = True
    with conn.embedded_lock(settings):
        try:
            pid = int(pid_path(settings).read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # RQ's warm shutdown: the running job completes
                graceful = _wait_gone(pid, timeout_s)
                if not graceful:
                    os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 5)
            pid_path(settings).unlink(missing_ok=True)
        conn.stop_embedded_redis(settings)
    return graceful


def _wait_gone(pid: int, timeout_s: float) -> bool:
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True  # exited; only its parent's reaping is left
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
