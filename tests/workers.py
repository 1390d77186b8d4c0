"""Real measurement worker processes for the tests: their settings, start, readiness, questions, stop.

The model is the Ollama stand-in (no weights needed), Redis one of the test's own; each worker
is started through `processes` (conftest), so it is killed when its test ends, however it ends.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import redis
from processes import Processes
from rq import Queue, Worker
from standins import OllamaStandIn, PrivateRedis
from testenv import cli_env, make_settings

from joulebot.config import Settings
from joulebot.keys import box_lock_key


def worker_settings(tmp_path: Path, server: PrivateRedis, ollama: OllamaStandIn, **extra) -> Settings:
    return make_settings(
        tmp_path / "data",
        redis_url=server.url,
        ollama_host=ollama.url,
        default_model="llama3",
        idle_baseline_s=0.2,
        **extra,
    )


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return cli_env(settings, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL="llama3", **extra)


def start_worker(processes: Processes, settings: Settings, **extra: str) -> subprocess.Popen:
    """A worker process, killed when the test ends if it is still there (even when the test fails)."""
    return processes.start(
        [sys.executable, "-m", "joulebot", "worker"],
        env=worker_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def serving(settings: Settings) -> bool:
    """The worker holds its box and RQ lists it as a worker of the queue (warm-up done)."""
    try:
        connection = redis.Redis.from_url(settings.redis_url)
        queue = Queue(settings.queue_name, connection=connection)
        return connection.exists(box_lock_key(settings.box_name)) == 1 and Worker.count(queue=queue) > 0
    except redis.ConnectionError:
        return False


def ask(settings: Settings, prompt: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joulebot", "ask", "--model", "llama3", prompt],
        env=worker_env(settings, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def stop(worker: subprocess.Popen) -> str:
    """SIGTERM, and what the worker said. It exits within its bound (idle: WORKER_STOP_GRACE_S, 30 s)."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=90)
    return err
