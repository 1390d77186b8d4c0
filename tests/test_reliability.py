"""Faults with real processes and real servers: nothing lost, nobody left waiting (docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import cli_env, make_settings, run_cli
from faultproxy import FaultProxy
from standins import PrivateRedis, free_port

from joulebot.chat.asking import InputError, build_request
from joulebot.chat.service import ChatService
from joulebot.history import HistoryStore
from joulebot.models import build_catalog
from joulebot.queueing.client import JobError, QueueClient
from joulebot.queueing.connection import queue_for

pytestmark = pytest.mark.e2e

LONG_PROMPT = "Write the numbers from 1 to 500 separated by commas."


def _request(settings, prompt: str, user: str = "u"):
    return build_request(settings, build_catalog(9.0), platform="cli", user_id=user, prompt=prompt)


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _started(client: QueueClient, job) -> bool:
    return job.get_status(refresh=True) == "started"


def test_a_killed_worker_is_reported_within_the_bound_and_records_nothing(embedded, monkeypatch):
    monkeypatch.setenv("WORKER_LOST_AFTER_S", "3")
    monkeypatch.setenv("JOULEBOT_DATA_DIR", str(embedded.data_dir))
    settings = embedded.model_copy(update={"max_tokens": 400})
    client = QueueClient(settings)
    job = client.submit(_request(settings, LONG_PROMPT))
    _wait(lambda: _started(client, job))
    os.kill(int((embedded.data_dir / "worker.pid").read_text()), signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(JobError, match="measurement worker stopped in the middle of this answer"):
        client.wait(job, timeout_s=60)
    told_after = time.monotonic() - t0
    assert told_after <= 3 + 7, f"the user waited {told_after:.1f} s"  # bound 3 s + one poll, with slack for a busy CI
    assert HistoryStore.open(embedded.sqlalchemy_url).recent("cli", "u") == []
    # the next question gets a fresh worker
    result = client.wait(client.submit(_request(embedded, "Say yes.")), timeout_s=60)
    assert result.exchange_id is not None


def test_sigterm_finishes_the_running_job_and_leaves_the_queued_one(embedded, monkeypatch):
    monkeypatch.setenv("JOULEBOT_DATA_DIR", str(embedded.data_dir))
    settings = embedded.model_copy(update={"max_tokens": 200})
    client = QueueClient(settings)
    running = client.submit(_request(settings, LONG_PROMPT))
    _wait(lambda: _started(client, running))
    waiting = client.submit(_request(settings, "Say two."))
    pid = int((embedded.data_dir / "worker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    result = client.wait(running, timeout_s=120)
    assert result.completion_tokens > 0 and result.exchange_id is not None
    _wait(
        lambda: (
            not (embedded.data_dir / "worker.pid").exists()
            or (embedded.data_dir / "worker.pid").read_text() != str(pid)
        )
    )
    assert waiting.get_status(refresh=True) == "queued", "queued jobs wait for the next worker"
    client.ensure_ready()  # what the next question does: a new worker takes the waiting job
    assert client.wait(waiting, timeout_s=60).exchange_id is not None


def test_redis_down_gives_a_clear_busy_reply_and_works_again_when_it_returns(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        chat = ChatService(make_settings(tmp_path / "data", redis_url=server.url), "telegram")
        assert chat.asking.prepare("7", "7", "Hello?", [None])
        server.stop()
        with pytest.raises(InputError, match="queue is unavailable right now; please try again"):
            chat.asking.prepare("7", "7", "Hello?", [None])
        server.start()
        assert chat.asking.prepare("7", "7", "Hello again?", [None]), "the same process works again"
    finally:
        server.stop()


def test_queued_jobs_survive_a_redis_restart_with_appendonly(tmp_path):
    server = PrivateRedis(tmp_path, appendonly=True)
    server.start()
    settings = make_settings(tmp_path / "data", redis_url=server.url)
    try:
        client = QueueClient(settings)
        jobs = [client.submit(_request(settings, f"Say {word}.")) for word in ("one", "two", "three")]
        server.stop()
        server.start()
        assert queue_for(settings).count == 3
        worker = subprocess.run(
            [sys.executable, "-m", "joulebot", "worker", "--burst"],
            env=cli_env(settings),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert worker.returncode == 0, worker.stderr
        client = QueueClient(settings)
        assert all(client.poll(client.job(job.id), 1) is not None for job in jobs)
    finally:
        server.stop()


def test_database_down_still_answers_and_stores_the_exchange_when_it_is_back(tmp_path, postgres_url):
    proxy = FaultProxy(5432)
    url = proxy.url_for(postgres_url)
    settings = make_settings(tmp_path / "data", database_url=url)
    try:
        assert run_cli(settings, "ask", "Say one.").returncode == 0
        proxy.refuse()
        down = run_cli(settings, "ask", "Say two.")
        assert down.returncode == 0, down.stderr
        assert "⚠️ history is unavailable: this exchange will be stored when it is back" in down.stdout
        proxy.forward()
        assert run_cli(settings, "ask", "Say three.").returncode == 0
        prompts = [row.prompt for row in HistoryStore.open(url).recent("cli", str(os.getuid()))]
        assert prompts == ["Say three.", "Say two.", "Say one."]
    finally:
        proxy.close()
        from joulebot.queueing.embedded import stop_embedded_stack

        stop_embedded_stack(settings, timeout_s=20)


def test_an_embedded_worker_that_cannot_start_is_reported_not_waited_for(embedded):
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    t0 = time.monotonic()
    proc = run_cli(embedded, "ask", "Say hi.", DATABASE_URL=nowhere, timeout=120)
    assert proc.returncode == 1
    assert f"the embedded worker does not start; see {embedded.data_dir / 'worker.log'}" in proc.stderr
    assert time.monotonic() - t0 < 60
    log = embedded.data_dir / "worker.log"
    _wait(lambda: "cannot be opened" in log.read_text(), timeout=30)  # the worker says why, in one line
    assert "DATABASE_URL: the history database" in log.read_text() and "Traceback" not in log.read_text()


def test_a_failed_result_that_outlived_its_job_says_the_answer_expired(tmp_path, system_redis_url):
    """Redis expires (or evicts) a job's hash and its result apart: a failed outcome whose job is gone is
    the usual one line, not RQ's NoSuchJobError escaping the front ends."""
    from rq.results import Result as RQResult

    from joulebot.queueing.client import JobGone

    settings = make_settings(tmp_path / "data", redis_url=system_redis_url)
    client = QueueClient(settings)
    job = client.submit(build_request(settings, build_catalog(9.0), platform="cli", user_id="u", prompt="hi"))
    client.queue.remove(job.id)  # no worker here: as if one had taken it
    RQResult.create_failure(job, ttl=60, exc_string="Traceback ...\nRuntimeError: boom")
    client.connection.delete(job.key)
    with pytest.raises(JobGone, match="this answer expired before it could be delivered; please ask again"):
        client.poll(job, 1)
