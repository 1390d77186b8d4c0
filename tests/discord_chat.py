"""The real DiscordBot on an event loop of its own, logged in against the Discord API stand-in
(discord.py's REST client pointed at it through `Route.BASE`), and the fixtures that start it:
the Ollama stand-in as the model (answering ANSWER), the stand-in API, and `start(**overrides)`
to start the bot as often as a test restarts it; no error may be logged, nor the token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import discord
import pytest
from standins import DiscordApiStandIn, OllamaStandIn
from waiting import wait

from joulebot.chat.discord_bot import DiscordBot
from joulebot.config import Settings

TOKEN = "discord-standin-token"
ANSWER = "Paris is the capital of France."
CHANNEL = DiscordApiStandIn.CHANNEL


class BotRunner:
    """One DiscordBot process's worth: its own event loop on a thread, logged in against the stand-in."""

    def __init__(self, settings: Settings, api: DiscordApiStandIn) -> None:
        self.api = api
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bot = DiscordBot(settings)

    def call(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> BotRunner:
        self.api.dispatch = self.event
        self.call(self.bot.login(TOKEN))  # GET users/@me, the application; setup_hook: queue, worker, commands
        self.api.connect()
        return self

    def event(self, name: str, data: dict) -> None:
        """A gateway event, parsed by discord.py on the bot's loop as its websocket would."""
        # discord.py has no public way to feed an event in: its websocket hands each one to the
        # client's ConnectionState (`_connection`), whose `parse_<event>` is the library's real path
        self.loop.call_soon_threadsafe(getattr(self.bot._connection, f"parse_{name.lower()}"), data)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.api.wait_answered()  # a test's last wait saw a call arrive: the bot gets its answer first

        async def close() -> None:
            await self.bot.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(close(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def ollama() -> Iterator[OllamaStandIn]:
    standin = OllamaStandIn()
    standin.answer = [ANSWER]
    yield standin
    standin.close()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DiscordApiStandIn]:
    with contextlib.closing(DiscordApiStandIn(TOKEN)) as standin:
        # discord.py has no setting for the API's address: every request's URL starts with the
        # class attribute Route.BASE (its own `_set_api_version` sets it the same way)
        monkeypatch.setattr(discord.http.Route, "BASE", standin.base_url)
        yield standin


@pytest.fixture
def start(embedded, api, ollama, monkeypatch, caplog) -> Iterator[Callable[..., BotRunner]]:
    """Start the bot (as often as a test restarts it); the embedded worker it spawns asks the Ollama stand-in."""
    env = {"OLLAMA_HOST": ollama.url, "DEFAULT_MODEL": "llama3", "IDLE_BASELINE_S": "0.5", "IDLE_SETTLE_S": "0.1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the worker process inherits them
    runners: list[BotRunner] = []
    caplog.set_level(logging.WARNING)

    def start_bot(**overrides) -> BotRunner:
        settings = embedded.model_copy(update={"ollama_host": ollama.url, "default_model": "llama3", **overrides})
        runners.append(BotRunner(settings, api).start())
        return runners[-1]

    yield start_bot
    for runner in runners:
        runner.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert TOKEN not in caplog.text


def chats(ollama: OllamaStandIn) -> list[list[dict]]:
    """The messages of every /api/chat the worker sent, in order."""
    return [body["messages"] for _, path, body in ollama.requests if path == "/api/chat"]


def contents(ollama: OllamaStandIn) -> list[str]:
    return [m["content"] for m in chats(ollama)[-1]]


def footer(body: dict) -> str:
    return " ".join((e.get("footer") or {}).get("text", "") for e in body.get("embeds") or [])


def custom_ids(body: dict) -> list[str]:
    return [c["custom_id"] for row in body.get("components") or [] for c in row["components"]]


def answer_to(api: DiscordApiStandIn, asked: dict, timeout: float = 60) -> dict:
    """The bot's status message for the message `asked`, once it shows the answer with its footer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = next(iter(api.replies_to(asked["id"])), None)
        if status is None and asked["id"] in api.channels:  # a mention that opened a thread: its first message
            status = next(iter(api.in_channel(asked["id"])), None)
        if status is not None and "⚡" in footer(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"no answer to {asked['content']!r}; last calls: {api.calls[-5:]}")


def original(api: DiscordApiStandIn, token: str) -> dict:
    """A slash command's reply (its original response), once it shows the answer with its footer."""
    wait(lambda: "⚡" in footer(api.messages.get(api.interactions[token].get("original", ""), {})))
    return api.messages[api.interactions[token]["original"]]
