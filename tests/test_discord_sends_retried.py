"""A send to Discord that fails for a moment does not drop the question.

The Discord API stand-in fails the first sends of the "⏳ queued" status for real: the connection
is reset after the request was read (TCP RST), or it answers 503 (which discord.py does not retry
itself). The real DiscordBot retries with backoff; a status that never goes still leaves the
question queued, and its answer comes as a new message in the channel. Behind it: the embedded
queue and worker, the Ollama stand-in as the model.
"""

from __future__ import annotations

import time

from standins import DROP, DiscordApiStandIn
from test_discord_conversations import ANSWER, api, ollama, start  # noqa: F401 (fixtures)

from joulebot.chat.sending import SEND_ATTEMPTS

QUEUED = "⏳ queued"
CHANNEL = DiscordApiStandIn.CHANNEL
UNAVAILABLE = {"message": "upstream connect error", "code": 0}


def status_send(method: str, path: str, body: dict) -> bool:
    return method == "POST" and path == f"/channels/{CHANNEL}/messages" and body.get("content") == QUEUED


def bots_messages(standin: DiscordApiStandIn) -> list[dict]:
    return [m for m in standin.in_channel(CHANNEL) if m["author"]["id"] == standin.BOT["id"]]


def answered(standin: DiscordApiStandIn, timeout: float = 90) -> dict:
    """The bot's message in the channel that shows an answer with its footer."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in bots_messages(standin) if any("⚡" in str(e.get("footer")) for e in m["embeds"])]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no answer; last calls: {standin.calls[-6:]}"
        time.sleep(0.05)


def test_a_status_send_through_a_reset_and_a_503_is_retried_then_answered(start, api):  # noqa: F811
    api.faults += [(status_send, status, UNAVAILABLE) for status in (DROP, 503, DROP)]
    start(discord_threads=False)
    asked = api.say(621, "Capital of France?", mention=True)
    message = answered(api)
    assert api.replies_to(asked["id"]) == [message] and message["embeds"][0]["description"] == ANSWER
    assert len([c for c in api.calls if status_send(*c)]) == 4 and len(bots_messages(api)) == 1


def test_a_status_that_never_goes_still_gets_the_answer_as_a_new_message(start, api):  # noqa: F811
    api.faults += [(status_send, DROP, {}) for _ in range(SEND_ATTEMPTS)]
    start(discord_threads=False)
    api.say(622, "Capital of France?", mention=True)
    message = answered(api)
    assert message["content"].startswith("<@622> here is your answer.")
    assert len([c for c in api.calls if status_send(*c)]) == SEND_ATTEMPTS
