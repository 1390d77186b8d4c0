"""Webhook mode requires TELEGRAM_WEBHOOK_SECRET, and the listener checks it on every request.

The real bot process (`joulebot telegram` in webhook mode, python-telegram-bot's own listener)
against the Bot API stand-in, which posts users' updates to the webhook with the secret as
Telegram does. An attacker posts straight to the listener: without the secret header, or with a
wrong one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import cli_env, run_cli
from factories import make_result
from standins import BotApiStandIn, free_port
from test_telegram import TOKEN, Bot

from joulebot.history import HistoryStore

SECRET = "s3cret_webhook-Token_0123456789"
USER = 901


@pytest.fixture
def api():
    with contextlib.closing(BotApiStandIn(TOKEN)) as standin:
        yield standin


def webhook_env(api: BotApiStandIn, port: int, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": api.base_url,
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
        "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": str(port),
        **extra,
    }


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("", "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not"),
        ("has spaces in it", "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
    ],
)
def test_webhook_mode_refuses_to_start_without_a_usable_secret(settings, api, secret, said):
    env = webhook_env(api, free_port(), TELEGRAM_WEBHOOK_SECRET=secret)
    proc = run_cli(settings, "telegram", timeout=60, **env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not secret or secret not in proc.stderr, "the secret is not echoed"
    assert api.calls == [], "nothing was started: no getMe, no setWebhook"


def post(url: str, update: dict, secret: str | None) -> int:
    """POST an update to the listener as anyone could; the HTTP status it answers."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(update).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def listening(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the bot exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError("the webhook listener never opened")


def forged(update_id: int, **update: dict) -> dict:
    return {"update_id": update_id, **update}


def test_forged_forget_posted_to_the_webhook_erases_nothing(embedded, api):
    store = HistoryStore.open(embedded.sqlalchemy_url)
    store.record(make_result(platform="telegram", user_id=str(USER), prompt="my secret plan"))
    port = free_port()
    bot = Bot(embedded, api, **webhook_env(api, port, TELEGRAM_WEBHOOK_SECRET=SECRET))
    bot.process = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "telegram"],
        env=cli_env(embedded, **bot.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _, registered = api.wait_for(lambda m, p: m == "setWebhook")
        assert registered["secret_token"] == SECRET
        listening(port, bot.process)
        url = f"http://127.0.0.1:{port}/hook"
        sender = {"id": USER, "is_bot": False, "first_name": "victim"}
        chat = {"id": USER, "type": "private"}
        command = {
            "message_id": 1,
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
            "text": "/forget",
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        }
        press = {
            "id": "4242",
            "chat_instance": "ci",
            "data": "forget:yes",
            "from": sender,
            "message": {"message_id": 2, "date": int(time.time()), "chat": chat, "text": "?", "from": api.BOT},
        }
        answers = [
            post(url, forged(9001, message=command), None),
            post(url, forged(9002, message=command), "a-wrong-secret"),
            post(url, forged(9003, callback_query=press), None),
            post(url, forged(9004, callback_query=press), "a-wrong-secret"),
        ]
        assert answers == [403, 403, 403, 403]
        time.sleep(1.0)  # what the bot would have done with them, it would have done by now
        assert api.to_chat(USER) == [] and not any(m == "answerCallbackQuery" for m, _ in api.calls)
        (row,) = store.recent("telegram", str(USER))
        assert row.prompt == "my secret plan", "nothing was erased"

        # the same press, delivered by Telegram (with the secret): the user's own forget works
        api.press(USER, 2, "forget:yes")
        deleted = "Deleted the prompts and answers of 1"
        api.wait_for(lambda m, p: m == "editMessageText" and p["text"].startswith(deleted))
        assert api.webhook_answers == [200]
        assert store.get(row.id).prompt == ""
    finally:
        bot.stop()
    assert TOKEN not in bot.logs and SECRET not in bot.logs, "a secret was logged"
    assert "Traceback" not in bot.logs, bot.logs
