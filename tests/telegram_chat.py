"""Fixtures for the real Telegram bot process in a conversation: the Ollama stand-in as the
model (answering ANSWER), the Bot API stand-in, and `bot(**env)` to start the bot as often as
a test restarts it; each bot is stopped afterwards and must have logged no traceback."""

from __future__ import annotations

import contextlib

import pytest
from standins import BotApiStandIn, OllamaStandIn
from telegram_process import TOKEN, Bot

ANSWER = "Paris is the capital of France."


@pytest.fixture
def ollama():
    standin = OllamaStandIn()
    standin.answer = [ANSWER]
    yield standin
    standin.close()


@pytest.fixture
def api():
    with contextlib.closing(BotApiStandIn(TOKEN)) as standin:
        yield standin


@pytest.fixture
def bot(embedded, api, ollama):
    bots: list[Bot] = []

    def start(**env: str) -> Bot:
        bots.append(Bot(embedded, api, OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llama3", **env).start())
        return bots[-1]

    yield start
    for b in bots:
        b.stop()
    for b in bots:
        assert "Traceback" not in b.logs, b.logs
