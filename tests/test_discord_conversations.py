"""Discord conversations: mentions, reply chains, threads, DMs, Cancel and Retry, /system.

The real DiscordBot runs on an event loop of its own, logged in against the Discord API
stand-in (discord.py's REST client pointed at it through `Route.BASE`); the stand-in's gateway
events go through discord.py's own parsers (`ConnectionState.parse_*`), so messages, button
presses and slash commands take the library's real path to the bot. Behind it: the real
embedded queue and measurement worker, with the Ollama stand-in as the model (fast lane);
the last test asks SmolLM2 itself.
"""

# ruff: noqa: F811 (the fixtures imported from discord_chat are the tests' parameters)
from __future__ import annotations

from collections.abc import Callable

import pytest
from discord_chat import (  # noqa: F401 (fixtures)
    ANSWER,
    CHANNEL,
    TOKEN,
    BotRunner,
    answer_to,
    api,
    chats,
    contents,
    custom_ids,
    footer,
    ollama,
    original,
    start,
    wait,
)
from standins import DiscordApiStandIn

from joulebot.chat.cancelling import CANCELLED
from joulebot.chat.discord_bot import UNREADABLE
from joulebot.chat.discord_views import CANCEL_ID, RETRY_ID
from joulebot.config import Settings
from joulebot.history import HistoryStore


def rows(embedded: Settings, user: int, n: int = 10) -> list:
    """The user's stored exchanges, oldest first."""
    return HistoryStore.open(embedded.sqlalchemy_url).recent("discord", str(user), n)[::-1]


def test_a_mention_opens_a_thread_that_is_one_conversation(start, api, ollama, embedded):
    runner = start(discord_allowed_channels=CHANNEL)  # a thread counts as its channel
    asked = api.say(501, "Capital of France?", mention=True)
    first = answer_to(api, asked)
    assert first["channel_id"] == asked["id"], "answered in the thread opened on the question"
    opened = next(b for m, p, b in api.calls if m == "POST" and p.endswith(f"/messages/{asked['id']}/threads"))
    assert opened["name"] == "Capital of France?"
    assert contents(ollama) == ["Capital of France?"]
    assert custom_ids(first) == [RETRY_ID] and first["embeds"][0]["description"] == ANSWER
    queued = next(b for m, p, b in api.calls if m == "POST" and p == f"/channels/{asked['id']}/messages")
    assert queued["content"] == "⏳ queued" and custom_ids(queued) == [CANCEL_ID]

    # in the thread, anyone continues the conversation; without the MESSAGE_CONTENT intent only
    # messages that mention the bot (or reply to it with the mention on) can be read
    thread = asked["id"]
    api.say(502, "unreadable without the intent", channel=thread)
    ollama.answer = ["Madrid."]
    second = answer_to(api, api.say(502, "And of Spain?", channel=thread, mention=True))
    assert contents(ollama) == ["Capital of France?", ANSWER, "And of Spain?"]
    assert "🧵 turn 2" in footer(second)
    ollama.answer = ["Berlin."]
    answer_to(api, api.say(501, "And of Germany?", channel=thread, reply_to=first["id"]))  # a branch
    assert contents(ollama) == ["Capital of France?", ANSWER, "And of Germany?"]
    ollama.answer = ["Rome."]
    answer_to(api, api.say(502, "And of Italy?", channel=thread, mention=True))  # goes on from the latest
    assert contents(ollama) == ["Capital of France?", ANSWER, "And of Germany?", "Berlin.", "And of Italy?"]
    assert not [c for c in chats(ollama) if "unreadable" in c[-1]["content"]]

    alice, bob = rows(embedded, 501), rows(embedded, 502)
    assert [r.turn for r in alice] == [1, 2] and [r.turn for r in bob] == [2, 3]
    assert bob[0].parent_id == alice[0].id == alice[1].parent_id and bob[1].parent_id == alice[1].id
    assert len({r.conversation_id for r in alice + bob}) == 1
    assert {r.chat_id for r in alice + bob} == {thread} and alice[0].message_ref == first["id"]

    # where the bot may not open a thread, it answers as a reply in the channel
    api.faults.append((lambda m, p, b: p.endswith("/threads"), 403, {"message": "Missing Permissions", "code": 50013}))
    ollama.answer = [ANSWER]
    asked = api.say(503, "Capital of Chile?", mention=True)
    assert answer_to(api, asked)["channel_id"] == CHANNEL and asked["id"] not in api.channels

    elsewhere = api.say(504, "Capital of Peru?", dm=True)  # the allow-list covers messages too
    wait(lambda: api.replies_to(elsewhere["id"]))
    assert api.replies_to(elsewhere["id"])[0]["content"] == "joulebot does not answer in this channel."

    runner.stop()  # a restarted bot knows its threads from the gateway, and where their conversation stands
    start(discord_allowed_channels=CHANNEL)
    answer_to(api, api.say(502, "And of Greece?", channel=thread, mention=True))
    assert contents(ollama)[-3:] == ["And of Italy?", "Rome.", "And of Greece?"]


def test_reply_chains_and_dms_continue_and_nothing_leaks(start, api, ollama, embedded):
    start(discord_threads=False)  # answers as replies in the channel
    asked = api.say(511, "My password is hunter2. Capital of France?", mention=True)
    first = answer_to(api, asked)
    assert first["channel_id"] == CHANNEL and first["message_reference"]["message_id"] == asked["id"]
    ollama.answer = ["Madrid."]
    answer_to(api, api.say(511, "And of Spain?", reply_to=first["id"]))  # a reply with the mention on
    assert contents(ollama) == ["My password is hunter2. Capital of France?", ANSWER, "And of Spain?"]
    one, two = rows(embedded, 511)
    assert (two.parent_id, two.turn, two.conversation_id) == (one.id, 2, one.conversation_id)
    ollama.answer = [ANSWER]

    # a reply to someone else's message, to a deleted one, or from another chat starts afresh
    answer_to(api, api.say(512, "What did they say?", mention=True, reply_to=asked["id"]))
    assert contents(ollama) == ["What did they say?"]
    del api.messages[two.message_ref]  # the answer was deleted: Discord sends referenced_message null
    answer_to(api, api.say(512, "Go on?", mention=True, reply_to=two.message_ref))
    assert contents(ollama) == ["Go on?"]
    answer_to(api, api.say(513, "What did I say?", dm=True, reply_to=first["id"]))  # ids are per channel
    assert contents(ollama) == ["What did I say?"]

    # in a DM every message continues the conversation (the text of DMs needs no intent)
    ollama.answer = ["Berlin."]
    answer_to(api, api.say(513, "And Germany?", dm=True))
    assert contents(ollama) == ["What did I say?", ANSWER, "And Germany?"]

    # a reply without the mention has no text for a bot without the intent: it says what to do
    silent = api.say(511, "And of Portugal?", reply_to=first["id"], ping=False)
    wait(lambda: api.replies_to(silent["id"]))
    assert api.replies_to(silent["id"])[0]["content"] == UNREADABLE


def test_cancel_and_retry_buttons_also_after_a_restart(start, api, ollama, embedded):
    runner = start(discord_threads=False)
    token = api.command(521, "ask", prompt="Capital of France?")  # its reply is the answer: replies continue it
    first = original(api, token)
    assert api.wait_for(lambda m, p, b: p.endswith(f"/{token}/callback"))[2]["type"] == 5, "deferred at once"
    queued = next(b for m, p, b in api.calls if m == "PATCH" and f"/{token}/messages/@original" in p)
    assert queued["content"] == "⏳ queued" and custom_ids(queued) == [CANCEL_ID]
    assert custom_ids(first) == [RETRY_ID]
    ollama.answer = ["Madrid."]
    second = answer_to(api, api.say(521, "And of Spain?", reply_to=first["id"]))

    # Retry: the same question with the same context; both answers stay, siblings of one parent
    before = len(chats(ollama))
    ollama.answer = ["Madrid, of course."]
    token = api.press(522, second["id"], RETRY_ID)  # in a server anyone there may retry
    again = answer_to(api, second)
    assert again["id"] != second["id"] and "Madrid, of course." in again["embeds"][0]["description"]
    assert chats(ollama)[before] == chats(ollama)[before - 1], "a retry sends exactly the same messages"
    first_call = next((m, p, b) for m, p, b in api.calls if token in p)
    assert first_call[1].endswith("/callback") and first_call[2]["type"] == 6, "the press is answered first"
    stored = rows(embedded, 521) + rows(embedded, 522)
    retried = [r for r in stored if r.prompt == "And of Spain?"]
    assert len(retried) == 2 and retried[0].parent_id == retried[1].parent_id == stored[0].id
    assert {r.turn for r in retried} == {2}

    # Cancel: a question waiting behind a slow one leaves the queue; only its asker may cancel it
    ollama.answer, ollama.chunk_delay_s = ["slow"] * 40, 0.5  # 20 s: it speeds up once the cancel is done
    slow = api.say(523, "A slow one?", mention=True)
    wait(lambda: any(c[-1]["content"] == "A slow one?" for c in chats(ollama)))
    waiting = api.say(524, "Queued behind it?", mention=True)
    wait(lambda: api.replies_to(waiting["id"]))
    status = api.replies_to(waiting["id"])[0]
    assert custom_ids(status) == [CANCEL_ID]

    def ephemeral(token: str, text: str) -> Callable[[str, str, dict], bool]:
        return lambda m, p, b: token in p and not p.endswith("/callback") and b.get("content", "").startswith(text)

    api.wait_for(ephemeral(api.press(523, status["id"], CANCEL_ID), "Nothing of yours is waiting"))
    _, _, said = api.wait_for(ephemeral(api.press(524, status["id"], CANCEL_ID), "Cancelled 1 waiting question"))
    assert said["flags"] & DiscordApiStandIn.EPHEMERAL
    wait(lambda: api.messages[status["id"]]["content"] == CANCELLED)
    assert api.messages[status["id"]]["components"] == [], "no button under a cancelled question"
    ollama.chunk_delay_s = 0.0
    answer_to(api, slow)
    assert rows(embedded, 524) == [] and not [c for c in chats(ollama) if c[-1]["content"] == "Queued behind it?"]

    # the buttons are persistent: a restarted bot still answers a press under an older answer
    runner.stop()
    start(discord_threads=False)
    ollama.answer = ["Paris!"]
    api.press(521, first["id"], RETRY_ID)
    answer_to(api, first)
    assert contents(ollama) == ["Capital of France?"] and len(rows(embedded, 521)) == 3


def test_a_restarted_bot_answers_a_slash_command_in_its_own_reply(start, api, ollama, embedded):
    runner = start(discord_threads=False)
    ollama.answer, ollama.chunk_delay_s = ["slow "] * 8, 0.5
    token = api.command(541, "ask", prompt="A slow one?")
    wait(lambda: any(c[-1]["content"] == "A slow one?" for c in chats(ollama)))
    runner.stop()  # the answer is still being generated: owed, kept in Redis
    start(discord_threads=False)
    answer = original(api, token)  # the command's own reply shows it, as if the bot had never stopped
    assert custom_ids(answer) == [RETRY_ID] and "slow" in answer["embeds"][0]["description"]
    assert not [p for m, p, b in api.calls if m == "POST" and p.endswith(f"/webhooks/{api.BOT['id']}/{token}")]
    ollama.chunk_delay_s = 0.0
    assert rows(embedded, 541)[0].message_ref == answer["id"], "a reply to it continues the conversation"


def test_system_prompt_of_a_server_channel_needs_manage_server(start, api, ollama, embedded):
    start()

    def said(token: str) -> str:
        _, _, body = api.wait_for(lambda m, p, b: p.endswith(f"/{token}/callback"))
        assert body["type"] == 4 and body["data"]["flags"] & DiscordApiStandIn.EPHEMERAL
        return body["data"]["content"]

    refused = said(api.command(531, "system", text="You answer in French."))
    assert refused.startswith("Only members with the Manage Server permission")
    assert said(api.command(531, "system", text="clear")).startswith("Only members with the Manage Server")
    assert said(api.command(531, "system")).startswith("No system prompt is set.")
    admin = DiscordApiStandIn.EVERYONE_PERMISSIONS | DiscordApiStandIn.MANAGE_GUILD
    assert said(api.command(532, "system", permissions=admin, text="You answer in French.")) == (
        "Set this channel's system prompt. It applies from the next question."
    )
    assert said(api.command(531, "system")) == "System prompt (this channel):\nYou answer in French."
    dm = api.dm_channel(531)["id"]
    assert said(api.command(531, "system", channel=dm, text="Be brief.")).startswith("Set your system prompt.")

    answer_to(api, api.say(531, "Capital of France?", mention=True))  # in the thread it opens: its channel's
    assert chats(ollama)[-1][0] == {"role": "system", "content": "You answer in French."}
    answer_to(api, api.say(531, "Capital of Spain?", dm=True))
    assert chats(ollama)[-1][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.e2e
def test_a_reply_chain_with_smollm2(embedded, api, monkeypatch):
    """The embedded runner (SmolLM2) behind the real bot: a reply continues the first turn."""
    for name, value in {"MAX_TOKENS": "24", "IDLE_BASELINE_S": "0.5", "IDLE_SETTLE_S": "0.1"}.items():
        monkeypatch.setenv(name, value)
    runner = BotRunner(embedded.model_copy(update={"max_tokens": 24, "discord_threads": False}), api).start()
    try:
        first = answer_to(api, api.say(541, "Name a colour.", mention=True), timeout=300)
        second = answer_to(api, api.say(541, "Name another one.", reply_to=first["id"]), timeout=300)
    finally:
        runner.stop()
    assert "🧵 turn 2 · " in footer(second) and "🧵" not in footer(first)
    one, two = rows(embedded, 541)
    assert (two.parent_id, two.turn, two.conversation_id) == (one.id, 2, one.conversation_id)
    assert two.result["prompt_tokens"] > one.result["prompt_tokens"], "the second turn carried the first"


def test_a_reply_to_any_piece_of_a_long_answer_continues_it(start, api, ollama, embedded):
    start(discord_threads=False)
    ollama.answer = [" ".join(f"w{i}" for i in range(1200))]  # 6,089 characters: over one message's 6,000
    asked = api.say(531, "Count in words.", mention=True)
    wait(lambda: api.replies_to(asked["id"]))
    status = api.replies_to(asked["id"])[0]

    def pieces() -> list[dict]:
        bot = api.BOT["id"]
        return [m for m in api.in_channel(CHANNEL) if m["author"]["id"] == bot and int(m["id"]) >= int(status["id"])]

    wait(lambda: "⚡" in footer(pieces()[-1]))  # the footer comes with the last piece
    shown = pieces()
    assert len(shown) >= 2 and "w0 " in shown[0]["embeds"][0]["description"]
    assert "w1199" in shown[-1]["embeds"][-1]["description"]

    store = HistoryStore.open(embedded.sqlalchemy_url)
    wait(lambda: store.answer_at("discord", CHANNEL, shown[-1]["id"]))  # noted once the last piece is out

    ollama.answer = ["Done."]
    answer_to(api, api.say(531, "Now stop.", reply_to=shown[1]["id"]))  # a reply to the second piece
    first, second = rows(embedded, 531)
    assert (second.parent_id, second.turn, second.conversation_id) == (first.id, 2, first.conversation_id)
    # the long answer itself does not fit the 2,048-token window with a new question: trimmed, and said
    assert second.result["dropped_turns"] == 2 and contents(ollama) == ["Now stop."]
