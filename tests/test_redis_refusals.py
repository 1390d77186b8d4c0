"""A Redis that answers but refuses: each state forced on a real server of the test's own, then the
terminal and the chat bots' core asked to work. Every refusal is one line naming it, never a traceback;
the terminal exits 1. Before: MISCONF, OOM and READONLY ended `joulebot ask` (and MISCONF `joulebot
boxes`) with a traceback; NOAUTH and WRONGPASS said "the queue is unavailable … try again"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from standins import PrivateRedis, free_port
from testenv import make_settings, run_cli
from waiting import wait

from joulebot.chat.asking import InputError
from joulebot.chat.service import ChatService
from joulebot.config import Settings

PASSWORD = "s3cret-Pw-9"


def _misconf(server: redis.Redis, root: Path) -> None:
    """Snapshots on, and the last one failed: its directory went away (as root, permissions would not stop it)."""
    gone = root / "gone"
    gone.mkdir()
    server.config_set("dir", str(gone))
    gone.rmdir()
    server.config_set("save", "3600 1")
    server.config_set("stop-writes-on-bgsave-error", "yes")
    server.bgsave()
    wait(lambda: server.info("persistence")["rdb_last_bgsave_status"] == "err", 20, "the snapshot to fail")


def _oom(server: redis.Redis, root: Path) -> None:
    server.config_set("maxmemory-policy", "noeviction")
    server.config_set("maxmemory", "1")


def _readonly(server: redis.Redis, root: Path) -> None:
    server.replicaof("127.0.0.1", free_port())  # a replica of a primary that is not there


def _password(server: redis.Redis, root: Path) -> None:
    server.config_set("requirepass", PASSWORD)


STATES: dict[str, Callable[[redis.Redis, Path], None]] = {
    "MISCONF": _misconf,
    "OOM": _oom,
    "READONLY": _readonly,
    "NOAUTH": _password,
    "WRONGPASS": _password,
}


@pytest.fixture(params=list(STATES))
def refusing(request, tmp_path) -> Iterator[tuple[str, Settings]]:
    """(the refusal's code, front-end settings whose REDIS_URL gets it), on a fleet's Redis (no QUEUE_NAME)."""
    code = request.param
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        STATES[code](redis.Redis.from_url(server.url), tmp_path)
        url = server.url.replace("redis://", "redis://:wrong-pw@") if code == "WRONGPASS" else server.url
        yield code, make_settings(tmp_path / "data", redis_url=url, queue_name="")
    finally:
        server.kill()


def _one_line(proc, code: str) -> str:
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("joulebot: the queue's Redis (127.0.0.1) ") and f"({code}" in line, line
    assert PASSWORD not in line and "wrong-pw" not in line
    return line


def test_every_redis_refusal_is_one_line_in_the_terminal(refusing):
    code, settings = refusing
    asked = run_cli(settings, "ask", "Say hi.", timeout=60)
    assert asked.returncode == 1, asked.stderr
    _one_line(asked, code)
    listed = run_cli(settings, "boxes", timeout=60)
    if listed.returncode == 0:  # a replica, a full server: reading the fleet still works
        assert code in ("OOM", "READONLY") and "no box has announced itself yet" in listed.stdout
    else:
        assert listed.returncode == 1
        _one_line(listed, code)


def test_every_redis_refusal_is_one_line_for_the_chat_bots(refusing):
    _, settings = refusing
    chat = ChatService(settings, "telegram")
    unavailable = r"^joulebot's queue is unavailable right now; please try again in a minute\.$"
    with pytest.raises(InputError, match=unavailable):
        chat.asking.prepare("7", "7", "Hello?", [None])


def test_a_worker_on_a_refusing_redis_says_why_in_one_line(refusing):
    """Before: the box lock's SET raised out of the worker with a traceback (MISCONF, OOM, READONLY), or
    "Redis is unreachable: AuthenticationError"."""
    code, settings = refusing
    worker = run_cli(settings, "worker", "--burst", timeout=120, BOX_NAME="refused-box")
    assert worker.returncode == 1, worker.stderr
    (line,) = worker.stderr.strip().splitlines()
    assert line.startswith("joulebot: Redis (127.0.0.1) ") and f"({code}" in line, line


def test_boxes_says_when_redis_does_not_answer(tmp_path):
    """Before: "no box has announced itself yet", exit 0, with REDIS_URL pointing nowhere."""
    settings = make_settings(tmp_path / "data", redis_url=f"redis://127.0.0.1:{free_port()}/0", queue_name="")
    listed = run_cli(settings, "boxes", timeout=60)
    assert listed.returncode == 1
    assert listed.stderr.strip() == "joulebot: the queue's Redis (127.0.0.1) does not answer"
