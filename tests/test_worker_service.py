"""The measurement worker as a service: real worker processes, a real Redis of the test's own,
the Ollama stand-in as the model (no weights needed, so this runs in the fast lane).

A worker that serves until stopped, runs only joulebot's job, one worker per box.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib

import redis
from faultproxy import FaultProxy
from rq import Callback, Queue, Worker
from rq.command import PUBSUB_CHANNEL_TEMPLATE
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.webhook import Webhook
from standins import HttpStandIn
from testenv import run_cli
from waiting import wait
from workers import ask, serving, start_worker, stop, worker_env, worker_settings

from joulebot.config import Settings
from joulebot.exchange import Request
from joulebot.keys import JOB_FUNCTION, box_lock_key, refused_jobs_key
from joulebot.queueing.client import QueueClient


def test_an_idle_worker_outlives_every_socket_timeout_and_a_redis_restart(tmp_path, private_redis, ollama, processes):
    """With redis-py 8 a worker whose dequeue shared the pooled connection quit ~20 s after its last job (exit 0)."""
    settings = worker_settings(tmp_path, private_redis, ollama)
    worker = start_worker(processes, settings)
    try:
        wait(lambda: serving(settings), what="the worker to take its box")
        first = ask(settings, "Capital of France?")
        assert first.returncode == 0, first.stderr
        time.sleep(25)  # > redis-py's 5 s socket timeout × its retries: the old worker was gone by now
        assert worker.poll() is None, "the idle worker quit"
        second = ask(settings, "Capital of France, after a pause?")
        assert second.returncode == 0, second.stderr

        private_redis.kill()  # a crash, then the same server back (its append-only file kept the data)
        time.sleep(2)
        private_redis.start()
        wait(lambda: serving(settings), timeout=30, what="the worker to take its box again")
        third = ask(settings, "Capital of France, after a restart?")
        assert third.returncode == 0, third.stderr
        assert "Paris is the capital of France." in third.stdout
        assert worker.poll() is None
    finally:
        err = stop(worker)
    assert worker.returncode == 0, err
    assert "quitting" not in err


def test_a_worker_that_never_gets_redis_back_exits_non_zero_and_says_why(tmp_path, private_redis, ollama, processes):
    settings = worker_settings(tmp_path, private_redis, ollama)
    worker = start_worker(processes, settings, REDIS_RECONNECT_ATTEMPTS="2", REDIS_RECONNECT_WAIT_S="0.5")
    wait(lambda: serving(settings), what="the worker to take its box")
    private_redis.kill()
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("joulebot: Redis unreachable after 2 reconnects")
    assert "Traceback" not in err.split("joulebot: Redis unreachable")[-1]


def test_the_worker_runs_only_joulebots_job_function(tmp_path, private_redis, ollama, processes):
    """Anyone who can write to Redis can enqueue os.system: the worker must refuse to run it."""
    settings = worker_settings(tmp_path, private_redis, ollama)
    marker = tmp_path / "pwned"
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
    foreign = queue.enqueue("os.system", f"touch {marker}")
    request = Request(platform="cli", user_id="u", model="llama3", prompt="Hi")
    with_callback = queue.enqueue(JOB_FUNCTION, request.model_dump(mode="json"), on_success=Callback("os.system"))
    worker = start_worker(processes, settings)
    try:
        wait(lambda: foreign.get_status(refresh=True) == "failed", what="the foreign job to fail")
        wait(lambda: with_callback.get_status(refresh=True) == "failed", what="the job with a callback to fail")
        assert not marker.exists(), "the foreign function ran"
        assert int(connection.get(refused_jobs_key(settings.queue_name))) == 2
        assert "refused" in foreign.latest_result().exc_string
        assert ask(settings, "Still there?").returncode == 0, "the worker keeps serving"
        assert StartedJobRegistry(queue=queue).count == 0
    finally:
        err = stop(worker)
    assert "refused job" in err and "not joulebot's job function: 'os.system'" in err


def test_one_worker_per_box_and_a_dead_holder_is_taken_over(tmp_path, private_redis, ollama, processes):
    """A second worker on the same box would bill each answer with the other's load: it is refused."""
    settings = worker_settings(tmp_path, private_redis, ollama)
    first = start_worker(processes, settings)
    try:
        wait(lambda: serving(settings), what="the first worker to take its box")
        second = subprocess.run(
            [sys.executable, "-m", "joulebot", "worker"],
            env=worker_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
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
    successor = start_worker(processes, settings)  # ...but a dead holder on this host is taken over at once
    try:
        wait(
            lambda: (
                json.loads(redis.Redis.from_url(settings.redis_url).get(box_lock_key(settings.box_name)) or "{}").get(
                    "pid"
                )
                == successor.pid
            ),
            timeout=30,
            what="the takeover",
        )
        assert ask(settings, "Who serves?").returncode == 0
    finally:
        stop(successor)


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


def test_a_redis_restart_mid_answer_still_delivers_the_answer(tmp_path, private_redis, ollama, processes):
    """The running job is completed and delivered, never stranded in the started registry."""
    ollama.chunk_delay_s = 1.0  # five chunks: the answer takes ~5 s
    settings = worker_settings(tmp_path, private_redis, ollama)
    worker = start_worker(processes, settings)
    try:
        wait(lambda: serving(settings), what="the worker")
        client = QueueClient(settings)
        request = Request(platform="cli", user_id="u", model="llama3", prompt="Slowly, please.")
        job = client.submit(request)
        wait(lambda: job.get_status(refresh=True) == "started", what="the job to start")
        private_redis.kill()
        time.sleep(2)
        private_redis.start()
        result = client.wait(client.job(request.id), timeout_s=60)
        assert result.answer == "Paris is the capital of France." and result.exchange_id is not None
        connection = redis.Redis.from_url(settings.redis_url)
        started = StartedJobRegistry(settings.queue_name, connection=connection)
        wait(lambda: started.count == 0, timeout=10, what="the started registry to empty")
        assert worker.poll() is None
    finally:
        err = stop(worker)
    assert worker.returncode == 0, err


def test_the_embedded_stack_never_runs_two_workers(embedded, monkeypatch, ollama):
    """A worker whose pid file was lost (disk full, deleted) still holds the box: no second spawn."""
    from joulebot.queueing.embedded import ensure_embedded_stack, pid_path

    settings = embedded.model_copy(update={"ollama_host": ollama.url, "default_model": "llama3"})
    for name, value in {"OLLAMA_HOST": ollama.url, "DEFAULT_MODEL": "llama3", "BOX_NAME": settings.box_name}.items():
        monkeypatch.setenv(name, value)  # what the spawned worker reads, as a user's environment would say
    ensure_embedded_stack(settings)
    first_pid = int(pid_path(settings).read_text())
    wait(
        lambda: QueueClient(settings).connection.exists(box_lock_key(settings.box_name)) == 1,
        what="the embedded worker to take its box",
    )
    pid_path(settings).unlink()
    ensure_embedded_stack(settings)
    assert not pid_path(settings).exists(), "a second worker was spawned"
    os.kill(first_pid, signal.SIGTERM)


def test_a_worker_with_metrics_port_serves_its_box_metrics(tmp_path, private_redis, ollama, processes):
    import urllib.request

    from standins import free_port

    settings = worker_settings(tmp_path, private_redis, ollama)
    port = free_port()
    worker = start_worker(processes, settings, METRICS_PORT=str(port))
    try:
        wait(lambda: serving(settings), what="the worker")
        assert ask(settings, "Capital of France?").returncode == 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "joulebot_answers_total" in body and f'box="{settings.box_name}"' in body
    finally:
        stop(worker)


# --- a worker that always stops ----------------------------------------------------------------


def test_sigterm_stops_an_idle_worker_at_once_and_it_takes_no_pubsub_commands(
    tmp_path, private_redis, ollama, processes
):
    """The 50 s hangs: RQ's pub/sub listener. Stopping it joined the thread without a timeout while the
    thread, having read the unsubscribe reply first (on a busy machine), waited up to 60 s for a
    subscription only the joining thread could make (py-spy: main in PubSubWorkerThread.stop → join,
    the listener in PubSub.get_message → Event.wait; 66 s to exit, 2 of 9 SIGTERMs with two busy cores).
    The worker no longer starts that listener."""
    settings = worker_settings(tmp_path, private_redis, ollama)
    worker = start_worker(processes, settings)
    connection = redis.Redis.from_url(settings.redis_url)
    wait(lambda: serving(settings), what="the worker")
    listening = connection.pubsub_channels(PUBSUB_CHANNEL_TEMPLATE % "*")
    assert listening == [], "a listener thread that could hold the exit"
    err = stop(worker)
    assert worker.returncode == 0, err
    assert connection.exists(box_lock_key(settings.box_name)) == 0, "the box is free for the next worker"
    assert Worker.count(queue=Queue(settings.queue_name, connection=connection)) == 0


def test_sigterm_ends_a_worker_whose_redis_stalls_within_its_bound(tmp_path, private_redis, ollama, processes):
    """Redis black-holed (connections up, nothing answered): RQ's goodbye waits on a socket whose timeout
    is above its 405 s dequeue, and the box's "stopped" and lock release wait on theirs. Before, the
    worker was still there after 120 s; now it leaves after WORKER_STOP_GRACE_S (idle: no answer to
    finish), with where its threads waited and one line."""
    proxy = FaultProxy(private_redis.port)
    try:
        settings = worker_settings(tmp_path, private_redis, ollama).model_copy(
            update={"redis_url": proxy.url_for(private_redis.url)}
        )
        worker = start_worker(processes, settings, WORKER_STOP_GRACE_S="2")
        wait(lambda: serving(settings), what="the worker")
        proxy.black_hole()
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=120)
    finally:
        proxy.close()
    assert worker.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("joulebot: the worker did not stop within 2 s of SIGTERM"), last
    assert "Thread" in err, "where each thread waited is in the log"


# --- hostile queue data ------------------------------------------------------------------------


def _hostile_jobs(connection: redis.Redis, settings: Settings, webhook_url: str) -> list[str]:
    """Jobs in the worker's queue that it must refuse without running or stopping: RQ's default pickle,
    garbage and JSON of another shape in `data`, a hash RQ cannot parse, a Request with a webhook."""
    request = Request(platform="cli", user_id="u", model="llama3", prompt="Hi").model_dump(mode="json")
    pickled = Queue(settings.queue_name, connection=connection)  # RQ's default serializer
    queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
    ids = [pickled.enqueue("os.system", "true").id for _ in range(12)]  # more than the worker's loop restarts
    for data in (b"\x00garbage\xff", zlib.compress(b'{"a": 1}')):
        job = queue.enqueue(JOB_FUNCTION, request)
        connection.hset(job.key, "data", data)
        ids.append(job.id)
    unparsable = queue.enqueue(JOB_FUNCTION, request)
    connection.hset(unparsable.key, "created_at", "yesterday")
    hooked = queue.enqueue(JOB_FUNCTION, request, webhooks=[Webhook(webhook_url, "failed")])
    return [*ids, unparsable.id, hooked.id]


def test_jobs_that_cannot_be_read_are_refused_and_the_worker_serves_on(tmp_path, private_redis, ollama, processes):
    """Before: RQ's pickle or garbage in `data` raised DeserializationError out of the refusal check; RQ
    quit its loop ("unhandled exception"), joulebot restarted it ("Redis connection lost and regained"),
    the job stayed in the started registry, and after 12 such jobs the worker exited."""
    settings = worker_settings(tmp_path, private_redis, ollama)
    connection = redis.Redis.from_url(settings.redis_url)
    hook = HttpStandIn()
    try:
        hostile = _hostile_jobs(connection, settings, hook.url)
        worker = start_worker(processes, settings)
        refused = refused_jobs_key(settings.queue_name)
        wait(lambda: int(connection.get(refused) or 0) == len(hostile), what="every hostile job to be refused")
        queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
        assert StartedJobRegistry(queue=queue).count == 0 and queue.count == 0
        assert connection.llen(queue.intermediate_queue_key) == 0
        assert ask(settings, "Still there?").returncode == 0, "the worker keeps serving"
        assert worker.poll() is None
        assert hook.requests == [], "the refused job's webhook was called"
    finally:
        hook.close()
    err = stop(worker)
    assert "cannot be read" in err and "carries webhooks" in err
    assert "unhandled exception" not in err and "lost and regained" not in err
