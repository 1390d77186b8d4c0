"""The real Telegram bot process (`joulebot telegram`) against a Bot API stand-in, started and stopped."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from standins import BotApiStandIn
from testenv import cli_env

TOKEN = "123456:TEST-token-do-not-log"


class Bot:
    def __init__(self, settings, api: BotApiStandIn, **env: str) -> None:
        self.settings, self.api, self.env = settings, api, env
        self.process: subprocess.Popen | None = None
        self.logs = ""

    def start(self) -> Bot:
        env = cli_env(self.settings, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=self.api.base_url, **self.env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "joulebot", "telegram"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            out, _ = self.process.communicate(timeout=30)
            self.logs += out or ""


@pytest.fixture
def api():
    standin = BotApiStandIn(TOKEN)
    yield standin
    standin.close()


@pytest.fixture
def bot(embedded, api):
    bots: list[Bot] = []

    def start(**env: str) -> Bot:
        bots.append(Bot(embedded, api, **env).start())
        return bots[-1]

    yield start
    for b in bots:
        b.stop()
    for b in bots:
        assert TOKEN not in b.logs and TOKEN.split(":")[1] not in b.logs, "the bot token was logged"
        assert "Traceback" not in b.logs, b.logs


def answered(chat_id: int, marker: str = "⚡"):
    def match(method: str, p: dict) -> bool:
        return method == "editMessageText" and str(p.get("chat_id")) == str(chat_id) and marker in p["text"]

    return match
