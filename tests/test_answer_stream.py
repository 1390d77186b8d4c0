"""The worker's answer stream against a Redis server of the test's own: the generating thread hands
the answer over and goes on (the write happens on the stream's own thread), nothing handed over is
lost or garbled by the coalescing, and nothing is written once the job's end closed the stream."""

from __future__ import annotations

import time

import redis
from standins import PrivateRedis
from waiting import wait

from joulebot.queueing.answer_stream import AnswerStream, read_answer


def test_the_generating_thread_never_waits_for_redis_and_the_stream_keeps_every_word(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        stream = AnswerStream(connection, "request-1", max_entries=64, ttl_s=60)
        connection.client_pause(10_000, all=False)  # writes wait in the server; reads go on
        stream.publish("The")
        stream.publish("The lighthouse")  # handed over while the first write waits: coalesced
        assert read_answer(connection, "request-1") is None, "publishing returned before its write was done"
        redis.Redis.from_url(server.url).client_unpause()
        wait(lambda: read_answer(connection, "request-1") == "The lighthouse")
        stream.publish("The lighthouse keeper")
        wait(lambda: read_answer(connection, "request-1") == "The lighthouse keeper")
        stream.publish("Think: storm. The keeper")  # not a growth (a reasoning block closed): all of it
        wait(lambda: read_answer(connection, "request-1") == "Think: storm. The keeper")
        assert 0 < connection.ttl(stream.key) <= 60
        stream.close()
        stream.publish("Think: storm. The keeper slept.")  # after the job's end: never written
        time.sleep(0.2)
        assert read_answer(connection, "request-1") == "Think: storm. The keeper"
    finally:
        server.kill()
