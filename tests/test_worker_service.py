"""The measurement worker as a service: real worker processes, a real Redis of the test's own,
the Ollama stand-in as the model (no weights needed, so this runs in the fast lane).

Issue 12: a worker that serves until stopped, runs only joulebot's job, one worker per box.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from conftest import cli_env, make_settings, run_cli
from rq import Callback, Queue, Worker
from rq.serializers import JSONSerializer
from standins import OllamaStandIn, PrivateRedis

from joulebot.config import Settings
from joulebot.exchange import Request
from joulebot.keys import JOB_FUNCTION, box_lock_key, refused_jobs_key
from joulebot.queueing.client import QueueClient


@pytest.fixture
def ollama():
    standin = OllamaStandIn()
    yield standin
    standin.close()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis", appendonly=True)
    server.directory.mkdir()
    server.start()
    yield server
    server.kill()


def _settings(tmp_path: Path, server: PrivateRedis, ollama: OllamaStandIn, **extra) -> Settings:
    return make_settings(
        tmp_path / "data",
        redis_url=server.url,
        ollama_host=ollama.url,
        default_model="llama3",
        idle_baseline_s=0.2,
        **extra,
    )


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return cli_env(settings, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL="llama3", **extra)


def _start_worker(settings: Settings, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "joulebot", "worker"],
        env=_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _serving(settings: Settings) -> bool:
    """The worker holds its box and RQ lists it as a worker of the queue (warm-up done)."""
    try:
        connection = redis.Redis.from_url(settings.redis_url)
        queue = Queue(settings.queue_name, connection=connection)
        return connection.exists(box_lock_key(settings.box_name)) == 1 and Worker.count(queue=queue) > 0
    except redis.ConnectionError:
        return False


def _ask(settings: Settings, prompt: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joulebot", "ask", "--model", "llama3", prompt],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _stop(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    return err


def test_an_idle_worker_outlives_every_socket_timeout_and_a_redis_restart(tmp_path, private_redis, ollama):
    """Issue 12.1: with redis-py 8 the worker quit ~20 s after its last job (exit 0)."""
    settings = _settings(tmp_path, private_redis, ollama)
    worker = _start_worker(settings)
    try:
        _wait(lambda: _serving(settings), what="the worker to take its box")
        first = _ask(settings, "Capital of France?")
        assert first.returncode == 0, first.stderr
        time.sleep(25)  # > redis-py's 5 s socket timeout × its retries: the old worker was gone by now
        assert worker.poll() is None, "the idle worker quit"
        second = _ask(settings, "Capital of France, after a pause?")
        assert second.returncode == 0, second.stderr

        private_redis.kill()  # a crash, then the same server back (its append-only file kept the data)
        time.sleep(2)
        private_redis.start()
        _wait(lambda: _serving(settings), timeout=30, what="the worker to take its box again")
        third = _ask(settings, "Capital of France, after a restart?")
        assert third.returncode == 0, third.stderr
        assert "Paris is the capital of France." in third.stdout
        assert worker.poll() is None
    finally:
        err = _stop(worker)
    assert worker.returncode == 0, err
    assert "quitting" not in err


def test_a_worker_that_never_gets_redis_back_exits_non_zero_and_says_why(tmp_path, private_redis, ollama):
    settings = _settings(tmp_path, private_redis, ollama)
    worker = _start_worker(settings, REDIS_RECONNECT_ATTEMPTS="2", REDIS_RECONNECT_WAIT_S="0.5")
    _wait(lambda: _serving(settings), what="the worker to take its box")
    private_redis.kill()
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("joulebot: Redis unreachable after 2 reconnects")
    assert "Traceback" not in err.split("joulebot: Redis unreachable")[-1]


def test_the_worker_runs_only_joulebots_job_function(tmp_path, private_redis, ollama):
    """Issue 12.2: anyone who can write to Redis could enqueue os.system and the worker ran it."""
    settings = _settings(tmp_path, private_redis, ollama)
    marker = tmp_path / "pwned"
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
    foreign = queue.enqueue("os.system", f"touch {marker}")
    request = Request(platform="cli", user_id="u", model="llama3", prompt="Hi")
    with_callback = queue.enqueue(JOB_FUNCTION, request.model_dump(mode="json"), on_success=Callback("os.system"))
    worker = _start_worker(settings)
    try:
        _wait(lambda: foreign.get_status(refresh=True) == "failed", what="the foreign job to fail")
        _wait(lambda: with_callback.get_status(refresh=True) == "failed", what="the job with a callback to fail")
        assert not marker.exists(), "the foreign function ran"
        assert int(connection.get(refused_jobs_key(settings.queue_name))) == 2
        assert "refused" in foreign.latest_result().exc_string
        assert _ask(settings, "Still there?").returncode == 0, "the worker keeps serving"
        assert connection.zcard(f"rq:wip:{settings.queue_name}") == 0
    finally:
        err = _stop(worker)
    assert "refused job" in err and "not joulebot's job function: 'os.system'" in err


def test_one_worker_per_box_and_a_dead_holder_is_taken_over(tmp_path, private_redis, ollama):
    """Issue 12.3: a second worker on the same box was accepted and each answer billed the other's load."""
    settings = _settings(tmp_path, private_redis, ollama)
    first = _start_worker(settings)
    try:
        _wait(lambda: _serving(settings), what="the first worker to take its box")
        second = subprocess.run(
            [sys.executable, "-m", "joulebot", "worker"], env=_env(settings), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        (line,) = second.stderr.strip().splitlines()
        assert f"box {settings.box_name!r} already has a measurement worker: pid {first.pid}" in line
        other_queue = run_cli(
            settings, "worker", "--burst", QUEUE_NAME=f"other-{uuid.uuid4().hex[:6]}", REDIS_URL=settings.redis_url
        )
        assert other_queue.returncode == 2, "the box is the unit, whatever the queue"
    finally:
        first.kill()  # SIGKILL: its lock stays until its heartbeat lapses...
        first.wait(10)
    holder = json.loads(redis.Redis.from_url(settings.redis_url).get(box_lock_key(settings.box_name)))
    assert holder["pid"] == first.pid
    successor = _start_worker(settings)  # ...but a dead holder on this host is taken over at once
    try:
        _wait(
            lambda: (
                json.loads(redis.Redis.from_url(settings.redis_url).get(box_lock_key(settings.box_name)) or "{}").get(
                    "pid"
                )
                == successor.pid
            ),
            timeout=30,
            what="the takeover",
        )
        assert _ask(settings, "Who serves?").returncode == 0
    finally:
        _stop(successor)


def test_a_lock_naming_this_very_pid_on_this_host_is_taken_over(system_redis_url):
    """A container restarted after its worker was killed keeps its hostname and often gives the new worker
    the same pid: the lock its predecessor left names a live process, this one. It is a former life."""
    import socket

    from joulebot.queueing.box_lock import BoxLock

    box = f"test-box-{uuid.uuid4().hex[:8]}"
    connection = redis.Redis.from_url(system_redis_url)
    earlier = {"host": socket.gethostname(), "pid": os.getpid(), "queue": box, "token": "an earlier life"}
    connection.set(box_lock_key(box), json.dumps(earlier), px=30_000)
    lock = BoxLock(connection, box, box, ttl_s=30)
    try:
        lock.acquire()
        assert connection.get(box_lock_key(box)).decode() == lock.value
    finally:
        connection.delete(box_lock_key(box))


def test_a_redis_restart_mid_answer_still_delivers_the_answer(tmp_path, private_redis, ollama):
    """Issue 12.4: the running job is completed and delivered, never stranded in the started registry."""
    ollama.chunk_delay_s = 1.0  # five chunks: the answer takes ~5 s
    settings = _settings(tmp_path, private_redis, ollama)
    worker = _start_worker(settings)
    try:
        _wait(lambda: _serving(settings), what="the worker")
        client = QueueClient(settings)
        request = Request(platform="cli", user_id="u", model="llama3", prompt="Slowly, please.")
        job = client.submit(request)
        _wait(lambda: job.get_status(refresh=True) == "started", what="the job to start")
        private_redis.kill()
        time.sleep(2)
        private_redis.start()
        result = client.wait(client.job(request.id), timeout_s=60)
        assert result.answer == "Paris is the capital of France." and result.exchange_id is not None
        connection = redis.Redis.from_url(settings.redis_url)
        _wait(lambda: connection.zcard(f"rq:wip:{settings.queue_name}") == 0, timeout=10, what="wip to empty")
        assert worker.poll() is None
    finally:
        err = _stop(worker)
    assert worker.returncode == 0, err


def test_the_embedded_stack_never_runs_two_workers(embedded, monkeypatch, ollama):
    """A worker whose pid file was lost (disk full, deleted) still holds the box: no second spawn."""
    from joulebot.queueing.embedded import ensure_embedded_stack, pid_path

    settings = embedded.model_copy(update={"ollama_host": ollama.url, "default_model": "llama3"})
    for name, value in {"OLLAMA_HOST": ollama.url, "DEFAULT_MODEL": "llama3", "BOX_NAME": settings.box_name}.items():
        monkeypatch.setenv(name, value)  # what the spawned worker reads, as a user's environment would say
    ensure_embedded_stack(settings)
    first_pid = int(pid_path(settings).read_text())
    _wait(
        lambda: QueueClient(settings).connection.exists(box_lock_key(settings.box_name)) == 1,
        what="the embedded worker to take its box",
    )
    pid_path(settings).unlink()
    ensure_embedded_stack(settings)
    assert not pid_path(settings).exists(), "a second worker was spawned"
    os.kill(first_pid, signal.SIGTERM)


def test_a_worker_with_metrics_port_serves_its_box_metrics(tmp_path, private_redis, ollama):
    import urllib.request

    from standins import free_port

    settings = _settings(tmp_path, private_redis, ollama)
    port = free_port()
    worker = _start_worker(settings, METRICS_PORT=str(port))
    try:
        _wait(lambda: _serving(settings), what="the worker")
        assert _ask(settings, "Capital of France?").returncode == 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "joulebot_answers_total" in body and f'box="{settings.box_name}"' in body
    finally:
        _stop(worker)
