"""`joulebot web` and a real worker as their own processes, with a private Redis server, a SQLite history
and the Ollama stand-in (in the test's process): what the API's and the web chat's tests run against."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import redis
from standins import OllamaStandIn, PrivateRedis, free_port
from testenv import CONFIG_VARS

from joulebot.history import HistoryStore
from joulebot.queueing.fleet import Fleet

OWN_SETTINGS = (
    "API_OPEN",
    "WEB_CHAT",
    "WEB_CHAT_PER_IP_PER_MINUTE",
    "WEB_CHAT_PER_MINUTE",
    "DAILY_ENERGY_BUDGET_WH",
    "WEB_CHAT_DAILY_WH",
)


@dataclass
class Stack:
    root: Path
    redis: PrivateRedis
    ollama: OllamaStandIn
    database_url: str
    box: str
    limits: dict[str, str] = field(default_factory=dict)
    worker: subprocess.Popen | None = None
    web: subprocess.Popen | None = None
    base: str = ""  # http://127.0.0.1:PORT

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (*CONFIG_VARS, *OWN_SETTINGS)}
        env.update(
            REDIS_URL=self.redis.url,
            DATABASE_URL=self.database_url,
            QUEUE_NAME=self.box,
            BOX_NAME=self.box,
            OLLAMA_HOST=self.ollama.url,
            JOULEBOT_DATA_DIR=str(self.root / "data"),
            METERS="estimate",
            IDLE_BASELINE_S="0.2",
            IDLE_SETTLE_S="0.1",
            **self.limits,
        )
        env.update(extra)
        return env

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "joulebot", *args]
        return subprocess.run(command, env=self.env(**extra), capture_output=True, text=True, timeout=120)

    def key(self, name: str) -> str:
        made = self.cli("keys", "create", name)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def sdk(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0, timeout=120)

    def async_sdk(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0, timeout=120)

    def history(self) -> HistoryStore:
        return HistoryStore(self.database_url)


def start_web(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "joulebot", "web", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/boxes", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "joulebot web did not start"
        time.sleep(0.2)


def stop(process: subprocess.Popen, grace_s: float = 15) -> str:
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=grace_s)[1] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1] or ""


@contextmanager
def running_stack(
    root: Path, ollama: OllamaStandIn, box: str, limits: dict[str, str], **web_env: str
) -> Iterator[Stack]:
    """A warm stack (the box announced itself: it takes jobs); `web_env` is what only the web process gets."""
    (root / "redis").mkdir()
    server = PrivateRedis(root / "redis")
    server.start()
    stack = Stack(root, server, ollama, f"sqlite:///{root / 'history.sqlite3'}", box, dict(limits))
    try:
        command = [sys.executable, "-m", "joulebot", "worker"]
        stack.worker = subprocess.Popen(
            command, env=stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        port = free_port()
        stack.web, stack.base = start_web(stack.env(**web_env), port), f"http://127.0.0.1:{port}"
        fleet = Fleet(redis.Redis.from_url(server.url), 30)
        deadline = time.monotonic() + 120
        while box not in {v.name for v in fleet.live()}:
            assert stack.worker.poll() is None, stack.worker.communicate()[1]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        yield stack
    finally:
        for process in (stack.web, stack.worker):
            if process is not None:
                stop(process)
        ollama.close()
        server.kill()
