"""The real Telegram bot process against a Bot API stand-in, with the real queue, worker and model."""

# ruff: noqa: F811 (the fixtures imported from telegram_process are the tests' parameters)
from __future__ import annotations

import json
import signal
import time

import pytest
from telegram_process import TOKEN, answered, api, bot  # noqa: F401 (fixtures)

from joulebot.history import HistoryStore

pytestmark = pytest.mark.e2e

LONG_PROMPT = "Write the numbers from 1 to 500 separated by commas."


def test_a_message_gets_a_status_then_the_answer_with_its_footer(bot, api, embedded):
    bot()
    api.message(501, "What is the capital of France?")
    _, final = api.wait_for(answered(501))
    calls = api.to_chat(501)
    method, status = calls[0]
    assert method == "sendMessage" and status["text"].startswith("⏳ queued")
    assert final["message_id"] == status.get("message_id", final["message_id"])
    assert final["parse_mode"] == "HTML"
    assert "J total" in final["text"] and "estimated from CPU load (no meter here)" in final["text"]
    assert final["text"].count("estimated") == 1, "one label for the whole bill"
    edits = [p["text"] for m, p in calls if m == "editMessageText"]
    assert len(edits) == len(set(edits)), "no edit repeats the text already shown"
    (row,) = HistoryStore.open(embedded.sqlalchemy_url).recent("telegram", "501")
    assert row.prompt == "What is the capital of France?" and row.answer.split()[0] in final["text"]
    assert "GRID_ZONE" in final["text"], "a user's first answer says which grid its CO2e used"

    api.message(501, "Name a planet.")  # the same user again: said once is enough

    def answers() -> dict[int, str]:
        return {p["message_id"]: p["text"] for m, p in api.to_chat(501) if m == "editMessageText" and "⚡" in p["text"]}

    api.wait_for(lambda m, p: len(answers()) == 2)
    assert "GRID_ZONE" not in answers()[max(answers())]


def test_commands_preferences_history_and_forget(bot, api, embedded):
    bot()
    api.message(502, "/units watts")
    api.wait_for(lambda m, p: m == "sendMessage" and p["text"] == "Units set to watts.")
    api.message(502, "/ask smollm2 Name a planet.")
    _, final = api.wait_for(answered(502))
    assert " W avg over " in final["text"] and " J total" not in final["text"]

    api.message(502, "/model")
    _, menu = api.wait_for(lambda m, p: m == "sendMessage" and "Choose another" in p["text"])
    keyboard = json.loads(menu["reply_markup"])["inline_keyboard"]
    assert keyboard[0][0]["callback_data"] == "model:smollm2-135m"
    api.press(502, 1, "model:smollm2-135m")
    api.wait_for(lambda m, p: m == "editMessageText" and p["text"].startswith("Your default model is now smollm2-135m"))
    api.message(502, "/model gpt-17")
    api.wait_for(lambda m, p: m == "sendMessage" and "unknown model 'gpt-17'" in p["text"])

    api.message(502, "/history")
    api.wait_for(lambda m, p: m == "sendMessage" and "Name a planet." in p["text"] and "⚡" in p["text"])
    api.message(502, "/stats")
    api.wait_for(lambda m, p: m == "sendMessage" and p["text"].startswith("Average energy per answer ± 95 %"))
    api.message(502, "/models")
    api.wait_for(lambda m, p: m == "sendMessage" and "smollm2-135m (135M, SmolLM2) — " in p["text"])

    api.message(502, "/forget")
    api.wait_for(lambda m, p: m == "sendMessage" and "forget:yes" in p.get("reply_markup", ""))
    api.press(502, 2, "forget:yes")
    api.wait_for(lambda m, p: m == "editMessageText" and p["text"].startswith("Deleted the prompts and answers of 1"))
    assert HistoryStore.open(embedded.sqlalchemy_url).recent("telegram", "502") == []


def test_flood_control_and_a_parse_error_never_lose_the_answer(bot, api):
    final_answer = lambda m, p: m == "editMessageText" and "⚡" in p.get("text", "")  # noqa: E731
    flood = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    unparsable = {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities: unclosed tag"}
    api.faults += [(final_answer, 429, flood), (final_answer, 400, unparsable)]
    bot()
    api.message(503, "Say hello.")
    _, final = api.wait_for(lambda m, p: final_answer(m, p) and "parse_mode" not in p)
    methods = [m for m, _ in api.to_chat(503)]
    assert "editMessageText!429" in methods and "editMessageText!400" in methods
    assert methods.index("editMessageText!429") < methods.index("editMessageText!400")
    assert "J total" in final["text"] and "&amp;" not in final["text"]


def test_a_restarted_bot_still_delivers_the_answer(bot, api):
    first = bot(MAX_TOKENS="300")
    api.message(504, LONG_PROMPT)
    api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "504")
    time.sleep(1.0)
    first.stop(signal.SIGKILL)  # no goodbye: the answer is owed in Redis only
    bot(MAX_TOKENS="300")
    _, final = api.wait_for(answered(504), timeout=120)
    assert "J total" in final["text"]
    message_ids = {p["message_id"] for m, p in api.to_chat(504) if m == "editMessageText"}
    assert len(message_ids) == 1, "the same status message became the answer"


def test_limits_refuse_kindly(bot, api):
    bot(TELEGRAM_ALLOWED_USERS="505,506", MAX_PENDING_PER_USER="1", MAX_PROMPT_CHARS="60", MAX_TOKENS="300")
    api.message(999, "hello?")
    api.wait_for(lambda m, p: m == "sendMessage" and p["text"] == "Sorry, this joulebot only answers invited users.")
    api.message(505, "x" * 61)
    api.wait_for(lambda m, p: m == "sendMessage" and "the prompt has 61 characters; the maximum is 60" in p["text"])
    api.message(505, LONG_PROMPT)
    api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "505" and p["text"].startswith("⏳"))
    api.message(505, "And another one?")
    api.wait_for(lambda m, p: m == "sendMessage" and "You already have 1 questions waiting" in p["text"])
    # another user is not blocked by 505's long answer: queued behind it at once
    api.message(506, "Say hi.")
    api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "506" and p["text"].startswith("⏳ queued"))
    api.wait_for(answered(506), timeout=120)


def test_groups_answer_when_mentioned(bot, api):
    bot()
    group = -4001
    api.message(507, "just chatting", chat_id=group, chat_type="group")
    api.message(
        507,
        "@joulebot_test_bot what is a watt?",
        chat_id=group,
        chat_type="group",
        entities=[{"type": "mention", "offset": 0, "length": 18}],
    )
    api.wait_for(answered(group))
    statuses = [p for m, p in api.to_chat(group) if m == "sendMessage"]
    assert len(statuses) == 1, "the unmentioned message got no reply"
    api.message(507, "/ask Say yes.", chat_id=group, chat_type="group")
    api.wait_for(
        lambda m, p: (
            m == "sendMessage"
            and str(p["chat_id"]) == str(group)
            and len([c for c in api.to_chat(group) if c[0] == "sendMessage"]) == 2
        )
    )


def test_webhook_mode(bot, api):
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot(
        TELEGRAM_WEBHOOK_URL="https://bots.example.org/joulebot/hook",
        TELEGRAM_WEBHOOK_PORT=str(port),
        TELEGRAM_WEBHOOK_SECRET="hook-secret-1",
    )
    _, registered = api.wait_for(lambda m, p: m == "setWebhook")
    assert registered["url"] == "https://bots.example.org/joulebot/hook"
    assert registered["secret_token"] == "hook-secret-1"

    update = {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "date": int(time.time()),
            "chat": {"id": 508, "type": "private"},
            "text": "Say hi.",
            "from": {"id": 508, "is_bot": False, "first_name": "Web"},
        },
    }

    def post(secret: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/joulebot/hook",
            data=json.dumps(update).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
        )
        for _ in range(100):  # the listener may come up just after setWebhook
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code
            except urllib.error.URLError:
                time.sleep(0.1)
        raise AssertionError("the webhook listener never came up")

    assert post("wrong") == 403
    assert post("hook-secret-1") == 200
    api.wait_for(answered(508))
