"""One follower for every waiting answer: real Redis, a real worker, the Ollama stand-in; and the
pacing that puts final answers before status edits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from standins import OllamaStandIn
from testenv import cli_env, make_settings

from joulebot.chat.asking import build_request
from joulebot.chat.pacing import Pacer
from joulebot.models.inventory import current_catalog
from joulebot.queueing.catalog import publish_catalog
from joulebot.queueing.client import JobCancelled, Progress, QueueClient
from joulebot.queueing.follower import Delta, Finished, Follower, Status, visible_move, worth_showing

ROOT = Path(__file__).resolve().parent.parent


def redis_sockets(port: int) -> int:
    """This process's TCP connections to the Redis server."""
    return sum(1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port)


@pytest.fixture
def queue(tmp_path, system_redis_url):
    ollama = OllamaStandIn({"tinyllama:1.1b": "1.1B"})
    ollama.answer_for = lambda body: ["You asked: ", body["messages"][-1]["content"], " That is all."]
    ollama.chunk_delay_s = 0.02
    settings = make_settings(
        tmp_path / "data",
        redis_url=system_redis_url,
        ollama_host=ollama.url,
        default_model="tinyllama",
        stream_interval_s=0.01,
        idle_baseline_s=0.2,
    )
    client = QueueClient(settings)
    publish_catalog(client.connection, settings.queue_name, current_catalog(settings))
    yield settings, client
    client.queue.delete(delete_jobs=True)
    ollama.close()


def run_worker(settings) -> subprocess.CompletedProcess:
    env = cli_env(settings, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL="tinyllama", STREAM_INTERVAL_S="0.01")
    return subprocess.run(
        [sys.executable, "-m", "joulebot", "worker", "--burst"], env=env, capture_output=True, text=True, timeout=300
    )


def test_one_thread_and_one_connection_follow_every_waiting_answer_each_to_its_own_watch(queue):
    settings, client = queue
    catalog = current_catalog(settings)
    requests = [
        build_request(settings, catalog, platform="test", user_id=f"u{n}", prompt=f"Question number {n}?")
        for n in range(120)
    ]
    for request in requests:
        client.submit(request)
    port = client.connection.connection_pool.connection_kwargs["port"]
    follower = Follower(settings)

    async def follow(request_id: str) -> tuple[list[Delta], list[Progress], list[Finished]]:
        deltas, statuses, finals = [], [], []
        async with follower.watch(request_id) as watch:
            async for event in watch:
                if isinstance(event, Delta):
                    deltas.append(event)
                elif isinstance(event, Status):
                    statuses.append(event.progress)
                elif isinstance(event, Finished):
                    finals.append(event)
        return deltas, statuses, finals

    async def scenario():
        threads, sockets = set(threading.enumerate()), redis_sockets(port)
        tasks = [asyncio.create_task(follow(r.id)) for r in requests]
        await asyncio.sleep(1.5)  # every watch admitted, every job's state read once
        grown = [t.name for t in threading.enumerate() if t not in threads], redis_sockets(port) - sockets
        worker = await asyncio.to_thread(run_worker, settings)
        assert worker.returncode == 0, worker.stderr
        return grown, await asyncio.gather(*tasks)

    try:
        (threads, sockets), followed = asyncio.run(scenario())
    finally:
        follower.close()
    assert threads == ["joulebot-follower"] and sockets <= 1, "one thread and one connection for all waiting"
    for request, (deltas, statuses, finals) in zip(requests, followed, strict=True):
        (final,) = finals
        assert final.result.request.id == request.id and request.prompt in final.result.answer
        streamed = "".join(d.text for d in deltas)  # the answer so far, pushed: a token stream loses nothing
        assert streamed + final.rest == final.result.answer
        assert not deltas or streamed == deltas[-1].answer
        queued = [s.position for s in statuses if s.state == "queued"]
        assert queued and queued[0] is not None, "each waiting answer is told where it stands"
        assert queued == sorted(queued, reverse=True), "a position only moves forward"
    tail = followed[-1][1]
    assert len([s for s in tail if s.state == "queued"]) < 60, "the last of 120 is not told every single step"


def test_a_cancelled_question_ends_its_watch_with_the_reason(queue):
    settings, client = queue
    request = build_request(settings, current_catalog(settings), platform="test", user_id="u", prompt="Hi?")
    job = client.submit(request)
    follower = Follower(settings)

    async def scenario():
        async with follower.watch(request.id) as watch:
            first = await watch.next()
            client.cancel(job)
            with pytest.raises(JobCancelled):
                async for _ in watch:
                    pass
            return first

    try:
        first = asyncio.run(scenario())
    finally:
        follower.close()
    assert isinstance(first, Status) and first.progress.state == "queued"


@pytest.mark.unit
def test_a_position_changes_on_screen_by_a_visible_step_or_after_a_while():
    queued = Progress("queued", 400, 1)
    assert visible_move(400, 300) and not visible_move(400, 350)
    assert visible_move(3, 2) and visible_move(1, 0)
    assert not worth_showing(queued, Progress("queued", 350, 1), age_s=10)
    assert worth_showing(queued, Progress("queued", 290, 1), age_s=10)
    assert not worth_showing(queued, Progress("queued", 290, 1), age_s=1), "not more often than every few seconds"
    assert worth_showing(queued, Progress("queued", 399, 1), age_s=60), "after a while, any move"
    assert worth_showing(queued, Progress("queued", 399, 1, box_status="cooling down"), age_s=0.1)
    assert worth_showing(queued, Progress("generating"), age_s=0.1), "a change of state at once"
    assert worth_showing(Progress("queued", 2, 1), Progress("queued", 1, 1), age_s=0.5), "at the front, every step"


@pytest.mark.unit
def test_finals_go_first_and_statuses_only_take_what_is_free():
    async def scenario() -> list[str]:
        pacer, order = Pacer(per_second=20), []

        async def final(name: str) -> None:
            await pacer.final()
            order.append(name)

        assert pacer.status(), "a free slot: the status takes it"
        assert not pacer.status(), "the next status waits for a free slot, it is not queued"
        finals = [asyncio.create_task(final(f"final {n}")) for n in range(3)]
        await asyncio.sleep(0)
        assert not pacer.status(), "no status while a final waits"
        await asyncio.gather(*finals)
        return order

    started = time.monotonic()
    assert asyncio.run(scenario()) == ["final 0", "final 1", "final 2"]
    assert time.monotonic() - started < 5


def test_three_hundred_people_waiting_on_the_telegram_bot_each_get_their_answer_once(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import chat_load

    report = chat_load.run(300, None, timeout_s=600)
    assert report["problems"] == [], report["problems"]
    assert report["threads"] <= 40, "the bot's threads do not grow with the people waiting"
    assert report["connections"] <= 12, "nor its Redis connections"
