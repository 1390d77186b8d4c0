"""Two messages of one user that arrive together are taken in one after the other: the pending limit
holds even though the bot handles updates concurrently and sends the "queued" status between
checking the user's pending answers and recording the new one. The real bot process, the embedded
queue and worker, the Ollama stand-in as the model."""

from __future__ import annotations

from telegram_chat import api, bot, ollama  # noqa: F401 (fixtures)

REFUSED = "You already have 1 questions waiting"


def test_two_messages_arriving_together_cannot_both_pass_the_pending_limit(bot, api):  # noqa: F811
    user, other = 621, 622
    api.message(user, "What is the capital of France?")  # both in the bot's first batch of updates
    api.message(user, "And of Spain?")
    api.message(other, "And of Italy?")
    bot(MAX_PENDING_PER_USER="1")
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == str(other) and "⚡" in p["text"])
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == str(user) and "⚡" in p["text"])
    texts = [p["text"] for m, p in api.to_chat(user) if m == "sendMessage"]
    assert sum(t.startswith("⏳") for t in texts) == 1, f"both questions were queued: {texts}"
    assert sum(REFUSED in t for t in texts) == 1
    other_texts = [p["text"] for m, p in api.to_chat(other) if m == "sendMessage"]
    assert not any(REFUSED in t for t in other_texts), "another user was held to the first one's limit"
