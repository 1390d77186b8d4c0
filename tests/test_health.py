"""`joulebot health`: each role's container healthcheck, against the real Redis, heartbeat and dashboard."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import redis
from conftest import cli_env, make_settings, run_cli
from standins import free_port

from joulebot.queueing.box_lock import BoxLock
from joulebot.worker.heartbeat import Heartbeat


def _one_line(result: subprocess.CompletedProcess) -> str:
    (line,) = result.stderr.strip().splitlines()
    return line


def test_health_says_in_one_line_that_the_queue_does_not_answer(tmp_path):
    settings = make_settings(tmp_path / "d", redis_url=f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    result = run_cli(settings, "health", timeout=60)
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith("joulebot: the queue does not answer (127.0.0.1)") and "secret-pw" not in line


def test_health_of_a_worker_follows_its_heartbeat(tmp_path, system_redis_url):
    settings = make_settings(tmp_path / "d", redis_url=system_redis_url)
    assert run_cli(settings, "health", timeout=60).returncode == 0  # the queue answers: enough for a bot
    before = run_cli(settings, "health", "worker", timeout=60)
    assert before.returncode == 1
    assert (
        _one_line(before)
        == f"joulebot: box {settings.box_name!r} has no live measurement worker (queue {settings.queue_name!r})"
    )

    connection = redis.Redis.from_url(system_redis_url)
    lock = BoxLock(connection, settings.box_name, settings.queue_name, ttl_s=30)
    lock.acquire()
    heartbeat = Heartbeat(connection, settings.queue_name, lock, ttl_s=30)
    heartbeat.start()
    try:
        alive = run_cli(settings, "health", "worker", timeout=60)
        assert alive.returncode == 0, alive.stderr
        assert alive.stdout.strip() == f"box {settings.box_name!r}: the worker is alive"
    finally:
        heartbeat.stop()
    assert run_cli(settings, "health", "worker", timeout=60).returncode == 1  # a worker that stopped says so


def test_health_of_the_dashboard_asks_it_for_its_first_page(tmp_path, system_redis_url):
    settings = make_settings(tmp_path / "d", redis_url=system_redis_url)
    port = free_port()
    down = run_cli(settings, "health", "web", timeout=60, WEB_PORT=str(port))
    assert down.returncode == 1
    assert _one_line(down).startswith(f"joulebot: the dashboard does not answer at http://127.0.0.1:{port}/")

    proxy = "http://127.0.0.1:9"  # nothing listens there
    env = cli_env(
        settings, WEB_PORT=str(port), WEB_HOST="0.0.0.0", HTTP_PROXY=proxy, http_proxy=proxy, NO_PROXY="", no_proxy=""
    )
    web = subprocess.Popen([sys.executable, "-m", "joulebot", "web"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert web.poll() is None and time.monotonic() < deadline, "joulebot web did not start"
                time.sleep(0.2)
        # served on every address, asked on this host's own, never through the configured proxy
        up = subprocess.run(
            [sys.executable, "-m", "joulebot", "health", "web"], env=env, capture_output=True, text=True, timeout=60
        )
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == f"the dashboard answers at http://127.0.0.1:{port}/"
    finally:
        web.terminate()
        web.wait(20)
