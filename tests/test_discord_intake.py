"""A crowd asking the Discord bot at once (the real bot against the Discord API stand-in, the
embedded queue and worker, the Ollama stand-in): the bot takes questions in a few at a time, as the
Telegram bot does, and every question is answered once, in its own chat."""

from __future__ import annotations

import time

from discord_chat import answer_to, api, ollama, start  # noqa: F401 (fixtures)

from joulebot.chat.pacing import INTAKE_AT_ONCE

QUEUED = "⏳ queued"
PEOPLE = 40


def test_a_crowd_is_taken_in_a_few_at_a_time_and_each_answered_once_in_its_own_chat(start, api):  # noqa: F811
    start()
    # Discord takes its time to post each status message: the questions being taken in pile up there
    api.latency = lambda method, path, body: 0.5 if method == "POST" and body.get("content") == QUEUED else 0.0
    asked = [api.say(700 + n, f"Question number {n}?", dm=True) for n in range(PEOPLE)]
    answers = [answer_to(api, message, timeout=300) for message in asked]
    assert api.most_in_flight <= INTAKE_AT_ONCE, f"{api.most_in_flight} questions taken in at once"
    assert api.most_in_flight > 1, "the questions are still taken in side by side"
    for message, answer in zip(asked, answers, strict=True):
        assert answer["channel_id"] == message["channel_id"], "answered in the asker's own chat"
    time.sleep(1)  # nothing more arrives: each answered once
    for message in asked:
        shown = [m for m in api.in_channel(message["channel_id"]) if m["author"]["id"] == api.BOT["id"]]
        assert len(shown) == 1 and "⚡" in str(shown[0]["embeds"]), "one message per question: its answer"
