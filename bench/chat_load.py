"""Chat load: many people waiting at once on the Telegram bot, each in a private chat of their own.

Real processes: a Redis server of the bench's own, `joulebot worker` (the Ollama runner against a
fast local stand-in: about 0.15 s an answer) and `joulebot telegram` (against a Bot API stand-in
that records when each call arrived). Every chat sends one question at once; the bench waits
until every chat shows its answer with the footer, then prints per size:

- delivery lag: the final message with the footer minus the end of that answer's generation
  (`Result.finished_at`, from history), p50 / p95 / max;
- total time (first question sent to last answer shown) against the sum of the generation times
  and against the box's busy span (first generation's start to last one's end);
- the bot process's threads, its Redis connections and its RSS (peak, sampled every 0.25 s);
- what must hold: every chat answered, each exactly once, in its own chat.

`--executor-threads N` runs the same bot with a default executor of N threads instead of
asyncio's min(32, CPUs + 4): how a blocking follow loop's lag depends on that pool.

    python bench/chat_load.py --chats 60 500 1000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import psutil
import redis
import sqlalchemy
from standins import BotApiStandIn, OllamaStandIn, PrivateRedis

from joulebot.keys import alive_key

TOKEN = "123456:bench-token"
FIRST_CHAT = 100_000
ANSWER_S = 0.15  # the stand-in's time per answer: its chunks are spaced to take this long


def echo(body: dict) -> list[str]:
    """The stand-in's answer: the question back, so that each chat can be checked to get its own."""
    return ["You asked: ", body["messages"][-1]["content"], " That is all."]


# The bot with a default executor of N threads (argv[1]); the rest is `joulebot telegram`.
BOT_WITH_EXECUTOR = """
import asyncio, sys
from concurrent.futures import ThreadPoolExecutor
loop = asyncio.new_event_loop()
loop.set_default_executor(ThreadPoolExecutor(int(sys.argv[1])))
asyncio.set_event_loop(loop)
from joulebot.cli import main
sys.argv = ["joulebot", "telegram"]
main()
"""


class TimedBotApi(BotApiStandIn):
    """The Bot API stand-in, also noting when each call arrived (wall clock, as history's timestamps)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.finals: dict[int, list[float]] = {}  # chat id -> when a message with the footer was shown
        self.foreign: list[int] = []  # chats shown another chat's answer
        self.queued: dict[int, float] = {}  # chat id -> when its "⏳ queued" was sent
        self.counts: dict[str, int] = {}  # method -> calls

    def answer(self, method: str, params: dict) -> tuple[int, dict]:
        status, body = super().answer(method, params)
        arrived = time.time()
        with self.cond:
            self.counts[method] = self.counts.get(method, 0) + 1
            if status == 200 and method == "sendMessage" and params.get("text", "").startswith("⏳"):
                self.queued.setdefault(int(params["chat_id"]), arrived)
            if status == 200 and method in ("sendMessage", "editMessageText") and "⚡" in params.get("text", ""):
                chat = int(params["chat_id"])
                self.finals.setdefault(chat, []).append(arrived)
                if f"chat {chat - FIRST_CHAT}:" not in params["text"]:
                    self.foreign.append(chat)
                self.cond.notify_all()
        return status, body

    def wait_for_finals(self, chats: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while len(self.finals) < chats and time.monotonic() < deadline:
                self.cond.wait(1.0)


@dataclass
class Peaks:
    threads: int = 0
    connections: int = 0
    rss_mb: float = 0.0
    idle_rss_mb: float = 0.0  # before the questions
    samples: list[tuple[int, int, float]] = field(default_factory=list)


def sample(pid: int, redis_port: int, peaks: Peaks, stop: threading.Event) -> None:
    """The bot's threads, Redis connections and RSS, every 0.25 s while it runs."""
    process = psutil.Process(pid)
    while not stop.wait(0.25):
        try:
            threads = process.num_threads()
            connections = sum(1 for c in process.net_connections("tcp") if c.raddr and c.raddr.port == redis_port)
            rss = process.memory_info().rss / 2**20
        except psutil.Error:
            return
        peaks.samples.append((threads, connections, rss))
        peaks.threads, peaks.connections = max(peaks.threads, threads), max(peaks.connections, connections)
        peaks.rss_mb = max(peaks.rss_mb, rss)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def environment(base: Path, redis_url: str, queue: str, ollama_url: str, api: TimedBotApi, chats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_", "TELEGRAM_"))}
    env.update(
        JOULEBOT_DATA_DIR=str(base / "data"),
        REDIS_URL=redis_url,
        QUEUE_NAME=queue,
        BOX_NAME=queue,
        DATABASE_URL=f"sqlite:///{base / 'history.sqlite3'}",
        OLLAMA_HOST=ollama_url,
        DEFAULT_MODEL="tinyllama",
        IDLE_BASELINE_S="0.2",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=api.base_url,
        MAX_PROMPTS_PER_MINUTE=str(chats + 10),
        MAX_PENDING_PER_USER="5",
        JOB_TIMEOUT_S="600",
    )
    return env


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"chat_load: {what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen, sig: int) -> str:
    """Stop a process as its service manager would (then kill it if it does not go); its stderr."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=60)[1].decode(errors="replace")
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1].decode(errors="replace")


def generations(database: Path) -> dict[int, tuple[float, float]]:
    """chat id -> (generation start, generation end), wall clock, from the stored Results."""
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT chat_id, result FROM exchanges")).all()
    engine.dispose()
    spans = {}
    for chat_id, raw in rows:
        result = raw if isinstance(raw, dict) else json.loads(raw)
        start = datetime.fromisoformat(result["started_at"]).timestamp()
        spans[int(chat_id)] = (start, datetime.fromisoformat(result["finished_at"]).timestamp())
    return spans


def run(chats: int, executor_threads: int | None, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="jb-chat-load-") as tmp:
        base = Path(tmp)
        server = PrivateRedis(base)
        server.start()
        ollama = OllamaStandIn({"tinyllama:1.1b": "1.1B"})
        ollama.answer_for = echo
        ollama.chunk_delay_s = ANSWER_S / 4  # three chunks and the closing statistics
        api = TimedBotApi(TOKEN)
        queue = f"chat-load-{uuid.uuid4().hex[:8]}"
        env = environment(base, server.url, queue, ollama.url, api, chats)
        worker = subprocess.Popen(
            [sys.executable, "-m", "joulebot", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        connection = redis.Redis.from_url(server.url)
        wait_until(lambda: connection.exists(alive_key(queue)), 120, "the worker's start")
        bot_args = ["-m", "joulebot", "telegram"]
        if executor_threads:
            bot_args = ["-c", BOT_WITH_EXECUTOR, str(executor_threads)]
        bot = subprocess.Popen([sys.executable, *bot_args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: api.counts.get("getUpdates", 0) > 0, 60, "the bot's start")
        peaks, done = Peaks(), threading.Event()
        peaks.idle_rss_mb = psutil.Process(bot.pid).memory_info().rss / 2**20
        sampler = threading.Thread(target=sample, args=(bot.pid, server.port, peaks, done), daemon=True)
        sampler.start()
        sent_at = time.time()
        for n in range(chats):
            api.message(FIRST_CHAT + n, f"chat {n}: what is {n} + 1?")
        api.wait_for_finals(chats, timeout_s)
        done_at = time.time()
        done.set()
        sampler.join()
        bot_log = stop(bot, signal.SIGINT)
        stop(worker, signal.SIGTERM)
        spans = generations(base / "history.sqlite3")
        server.stop()
        ollama.close()
        api.close()
    return report(chats, api, spans, peaks, sent_at, done_at, bot_log)


def report(
    chats: int, api: TimedBotApi, spans: dict, peaks: Peaks, sent_at: float, done_at: float, bot_log: str
) -> dict:
    expected = {FIRST_CHAT + n for n in range(chats)}
    lags = [api.finals[c][0] - spans[c][1] for c in expected if c in api.finals and c in spans]
    problems = []
    if missing := expected - set(api.finals):
        problems.append(f"{len(missing)} chats never got their answer")
    if twice := [c for c, times in api.finals.items() if len(times) > 1]:
        problems.append(f"{len(twice)} chats got their answer more than once")
    if strangers := set(api.finals) - expected:
        problems.append(f"answers in {len(strangers)} chats that asked nothing")
    if api.foreign:
        problems.append(f"{len(set(api.foreign))} chats were shown another chat's answer")
    if "Traceback" in bot_log:
        problems.append("the bot logged a traceback")
    generation = sum(end - start for start, end in spans.values())
    busy = max(end for _, end in spans.values()) - min(start for start, _ in spans.values()) if spans else 0.0
    last = max((times[0] for times in api.finals.values()), default=done_at)
    windows: dict[int, list[float]] = {}  # lag by when the answer was generated, 10 s windows from the start
    for chat in expected & set(api.finals) & set(spans):
        windows.setdefault(int((spans[chat][1] - sent_at) // 10), []).append(api.finals[chat][0] - spans[chat][1])
    return {
        "windows": {k * 10: (len(v), max(v)) for k, v in sorted(windows.items())},
        "chats": chats,
        "lag_p50": statistics.median(lags) if lags else float("nan"),
        "lag_p95": percentile(lags, 95) if lags else float("nan"),
        "lag_max": max(lags, default=float("nan")),
        "total_s": last - sent_at,
        "queued_s": max(api.queued.values(), default=sent_at) - sent_at,
        "generation_s": generation,
        "busy_s": busy,
        "threads": peaks.threads,
        "connections": peaks.connections,
        "rss_mb": peaks.rss_mb,
        "kb_per_chat": (peaks.rss_mb - peaks.idle_rss_mb) * 1024 / chats,
        "calls": dict(api.counts),
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, nargs="+", default=[60, 500, 1000])
    parser.add_argument("--executor-threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every answer, per size")
    parser.add_argument("--windows", action="store_true", help="also the worst lag per 10 s of the run")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    executor = f"a default executor of {args.executor_threads} threads" if args.executor_threads else "as shipped"
    print(f"joulebot telegram {executor}; Ollama stand-in answering in {ANSWER_S} s")
    for chats in args.chats:
        r = run(chats, args.executor_threads, args.timeout)
        edits = r["calls"].get("editMessageText", 0)
        print(
            f"{r['chats']:5d} chats: lag p50 {r['lag_p50']:.2f} s, p95 {r['lag_p95']:.2f} s, max {r['lag_max']:.2f} s;"
            f" every chat told it is queued within {r['queued_s']:.1f} s;"
            f" total {r['total_s']:.1f} s vs generation {r['generation_s']:.1f} s (box busy {r['busy_s']:.1f} s);"
            f" bot peak {r['threads']} threads, {r['connections']} Redis connections, {r['rss_mb']:.0f} MB RSS"
            f" (+{r['kb_per_chat']:.0f} KB per waiting chat); {edits} edits;"
            f" {'; '.join(r['problems']) or 'every chat answered exactly once'}"
        )
        if args.windows:
            print("        answers generated from t s: count, worst lag:", r["windows"])


if __name__ == "__main__":
    main()
