"""A send to Telegram that fails for a moment does not drop the question.

The Bot API stand-in fails the first sends of the "⏳ queued" status for real: the connection is
reset after the request was read (TCP RST: httpx's ReadError, as under load), or it answers 502.
The real bot process retries with backoff; a status that never goes still leaves the question
queued, and its answer comes as a new message. Behind it: the embedded queue and worker, the
Ollama stand-in as the model.
"""

from __future__ import annotations

from collections.abc import Callable

from standins import DROP
from test_conversations import ANSWER, api, bot, ollama  # noqa: F401 (fixtures)

from joulebot.chat.sending import SEND_ATTEMPTS

QUEUED = "⏳ queued"
BAD_GATEWAY = {"ok": False, "error_code": 502, "description": "Bad Gateway"}


def status_of(chat: int) -> Callable[[str, dict], bool]:
    return lambda m, p: m == "sendMessage" and str(p.get("chat_id")) == str(chat) and p["text"] == QUEUED


def answer_in(chat: int, method: str) -> Callable[[str, dict], bool]:
    return lambda m, p: m == method and str(p.get("chat_id")) == str(chat) and "⚡" in p["text"]


def sends(api, chat: int) -> list[str]:  # noqa: F811 (the fixture's stand-in)
    return [m for m, _ in api.to_chat(chat) if m.startswith("sendMessage")]


def test_a_status_send_through_resets_and_a_502_is_retried_then_answered(bot, api):  # noqa: F811
    chat = 611
    api.faults += [(status_of(chat), status, BAD_GATEWAY) for status in (DROP, 502, DROP)]
    bot()
    api.message(chat, "What is the capital of France?")
    _, final = api.wait_for(answer_in(chat, "editMessageText"))
    assert ANSWER.split()[0] in final["text"]
    assert sends(api, chat) == ["sendMessage!0", "sendMessage!502", "sendMessage!0", "sendMessage"]
    assert not any("went wrong" in p.get("text", "") for _, p in api.to_chat(chat))


def test_a_status_that_never_goes_still_gets_the_answer_as_a_new_message(bot, api):  # noqa: F811
    chat = 612
    api.faults += [(status_of(chat), DROP, {}) for _ in range(SEND_ATTEMPTS)]
    bot()
    api.message(chat, "What is the capital of France?")
    _, final = api.wait_for(answer_in(chat, "sendMessage"))
    assert ANSWER.split()[0] in final["text"]
    assert sends(api, chat) == ["sendMessage!0"] * SEND_ATTEMPTS + ["sendMessage"]
