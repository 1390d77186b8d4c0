"""A model's code, checked by the benchmark, reaches nothing of the machine it runs on.

Each escape is an answer whose `reverse_string` is right only if the escape worked, scored by a
real scorer process (its own environment holds a fake secret, its working folder a `.env` and a
history database, as a bot's would) through `checkers.check`, as `joulebot bench` scores.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import redis

from joulebot.campaign.checkers import check
from joulebot.campaign.references import CodeReference
from joulebot.campaign.sandbox import PROCESSES

pytestmark = pytest.mark.usefixtures("bwrap_here")
SECRET = "fake-telegram-token-" + uuid.uuid4().hex
REVERSE = CodeReference(
    prompt="Write a Python function that reverses a string.",
    name="reverse_string",
    tests=["assert reverse_string('joule') == 'eluoj'", "assert reverse_string('') == ''"],
    solution="def reverse_string(s):\n    return s[::-1]",
)
SCORER = """
import json, os, sys
from joulebot.campaign.checkers import check
from joulebot.campaign.references import CodeReference
reference = CodeReference.model_validate_json(sys.argv[1])
answer = sys.stdin.read().replace("SCORER_PID", str(os.getpid()))
verdict = check(reference, answer)
print(json.dumps({"correct": verdict.correct, "note": verdict.note}))
"""


def escape_answer(body: str) -> str:
    """An answer whose function is right only when `escaped()` (the body) returns True."""
    return (
        "```python\nimport os\n\ndef escaped():\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "    ")
        + "\n\ndef reverse_string(s):\n    try:\n        return s[::-1] if escaped() else s\n"
        + "    except Exception:\n        return s\n```\n"
    )


def score_elsewhere(
    answer: str, home: Path, reference: CodeReference = REVERSE, timeout: float = 60, **env: str
) -> dict:
    """The verdict of a real scorer process whose environment holds SECRET and whose folder holds `home`."""
    scorer = subprocess.run(
        [sys.executable, "-c", SCORER, reference.model_dump_json()],
        input=answer,
        env={**os.environ, "TELEGRAM_TOKEN": SECRET, "DATABASE_URL": f"postgresql://bot:{SECRET}@db/bot", **env},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert scorer.returncode == 0, f"the scorer died ({scorer.returncode}): {scorer.stderr[-500:]}"
    return json.loads(scorer.stdout.splitlines()[-1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A bot's working folder: a `.env` with the secret and a history database with a user's prompt."""
    (tmp_path / ".env").write_text(f"TELEGRAM_TOKEN={SECRET}\n")
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "joulebot.sqlite3") as db:
        db.execute("CREATE TABLE exchange (prompt TEXT)")
        db.execute("INSERT INTO exchange VALUES (?)", (f"my bank password is {SECRET}",))
    db.close()
    return tmp_path


def test_the_answer_cannot_reach_redis_on_the_loopback(home, system_redis_url):
    key = f"joulebot-test-sandbox-{uuid.uuid4().hex}"
    body = f"""
    import socket
    with socket.create_connection(("127.0.0.1", 6379), timeout=3) as c:
        c.sendall(b"SELECT 15\\r\\nSET {key} escaped\\r\\n")
        return b"+OK" in c.recv(100)
    """
    client = redis.Redis.from_url(system_redis_url)
    try:
        verdict = score_elsewhere(escape_answer(body), home)
        assert client.get(key) is None, "the answer set a key in Redis"
        assert verdict["correct"] is False
    finally:
        client.delete(key)


def test_the_answer_cannot_write_outside_its_own_temporary_folder(home):
    written = home / "written-by-the-answer"
    verdict = score_elsewhere(escape_answer(f"open({str(written)!r}, 'w').write('x')\nreturn True"), home)
    assert not written.exists()
    assert verdict["correct"] is False


def test_the_answer_writes_at_most_its_own_small_folder(home):
    """64 MiB in 1 MiB files to its folder, /dev/shm and the root: 16 MiB (its /tmp) is all that fits."""
    marker = f"joulebot-fill-{uuid.uuid4().hex}"
    filler = CodeReference(
        prompt="p",
        name="written",
        tests=["assert 0 < written() <= 16 * 2**20"],
        solution="def written():\n    return 1",
    )
    answer = f"""```python
import os
total = 0
for folder in (".", "/dev/shm", "/"):
    for n in range(64):
        try:
            with open(os.path.join(folder, "{marker}-%d" % n), "wb") as f:
                f.write(b"x" * 2**20)
            total += 2**20
        except OSError:
            break

def written():
    return total
```"""
    try:
        verdict = score_elsewhere(answer, home, reference=filler)
        assert verdict["correct"] is True, verdict["note"]
    finally:
        for left in Path("/dev/shm").glob(f"{marker}-*"):
            left.unlink()
        assert not list(Path("/").glob(f"{marker}-*")), "the answer wrote into the host's root"


@pytest.mark.parametrize(
    "where",
    [
        "/proc/{os.getppid()}/environ",
        "/proc/*/environ",  # every process it can see, the scorer's parent included
        "/proc/{os.getppid()}/cwd/.env",
        "/proc/*/cwd/.env",
        "/proc/*/cwd/data/joulebot.sqlite3",  # the history database, through the scorer's folder
        "HOME/data/joulebot.sqlite3",  # … and by its own path
    ],
)
def test_the_answer_reads_no_secret_of_the_scorer(home, where):
    body = f"""
    import glob
    found = b""
    for path in glob.glob(f{where.replace("HOME", str(home))!r}):
        try:
            found += open(path, "rb").read()
        except OSError:
            pass
    return {SECRET.encode()!r} in found
    """
    assert score_elsewhere(escape_answer(body), home)["correct"] is False


def test_the_answer_cannot_kill_the_scorer(home):
    body = """
    import signal
    for pid in (os.getppid(), SCORER_PID):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return True
    """
    verdict = score_elsewhere(escape_answer(body), home)  # asserts that the scorer lived to print it
    assert verdict["correct"] is not None


def _processes_running(argv: list[str]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().split(b"\0")[:-1] == [
                a.encode() for a in argv
            ]:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_setsid_grandchild_neither_holds_the_scoring_nor_outlives_it(home):
    marker = ["sleep", f"{random.randint(40, 59)}.{random.randint(10**5, 10**6)}"]  # bounded, even if it escaped
    body = f"""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/usr/bin/sleep", {marker!r})
        os._exit(0)
    return True
    """
    try:
        verdict = score_elsewhere(escape_answer(body), home, timeout=30)
        assert verdict["correct"] is True, verdict["note"]  # the answer itself is right
        assert _processes_running(marker) == [], "the grandchild outlived the scoring"
    except subprocess.TimeoutExpired:
        pytest.fail("the grandchild held the scoring past its wall clock")
    finally:
        for pid in _processes_running(marker):
            os.kill(pid, signal.SIGKILL)


def test_an_answer_that_outsleeps_the_wall_clock_is_stopped_with_all_it_started(home):
    marker = ["sleep", f"{random.randint(40, 59)}.{random.randint(10**5, 10**6)}"]
    answer = f"""```python
import os, time
if os.fork() == 0:
    os.execv("/usr/bin/sleep", {marker!r})

def reverse_string(s):
    time.sleep(50)
```"""
    try:
        verdict = score_elsewhere(answer, home, timeout=40)
        assert verdict["correct"] is False and verdict["note"].endswith("timed out after 10 s"), verdict["note"]
        assert _processes_running(marker) == [], "a process of the answer outlived the scoring"
    finally:
        for pid in _processes_running(marker):
            os.kill(pid, signal.SIGKILL)


def test_forking_is_bounded_per_sandbox_even_for_a_root_checker(home):
    """A bounded fork loop (5,000 tries, children that sleep, stopping at the first refusal)."""
    forks = CodeReference(
        prompt="p",
        name="forks",
        tests=["assert forks() >= 1", f"assert forks() < {PROCESSES}"],
        solution="def forks():\n    return 1",
    )
    answer = """```python
import os, time
made = 0
for _ in range(5000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    made += 1

def forks():
    return made
```"""
    verdict = score_elsewhere(answer, home, reference=forks)
    assert verdict["correct"] is True, verdict["note"]


def test_without_bwrap_the_code_is_not_run_and_scored_unscored(home, tmp_path):
    written = tmp_path / "ran-unconfined"
    answer = escape_answer(f"open({str(written)!r}, 'w').write('x')\nreturn True")
    verdict = score_elsewhere(answer, home, PATH="/nonexistent")
    assert verdict["correct"] is None
    assert verdict["note"].startswith("unscored: no sandbox here (bwrap not found")
    assert not written.exists(), "the answer's code ran without a sandbox"


def test_with_user_namespaces_refused_the_code_is_not_run_and_scored_unscored(home, tmp_path):
    """Real bwrap, real refusal: the scorer runs in a user namespace whose quota of nested ones is spent."""
    if shutil.which("unshare") is None:
        pytest.skip("util-linux's unshare is not installed")
    written = tmp_path / "ran-unconfined"
    answer = escape_answer(f"open({str(written)!r}, 'w').write('x')\nreturn True")
    scorer_command = shlex.join([sys.executable, "-c", SCORER, REVERSE.model_dump_json()])
    inner = f"exec unshare --user --map-user=1000 --map-group=1000 {scorer_command}"
    outer = f"echo 1 > /proc/sys/user/max_user_namespaces && {inner}"
    scorer = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", outer],
        input=answer,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if scorer.stderr.startswith("unshare: "):  # util-linux's own refusal, before any scorer ran
        pytest.skip(f"nested user namespaces cannot be made here: {scorer.stderr.strip()}")
    assert scorer.returncode == 0, scorer.stderr
    verdict = json.loads(scorer.stdout.splitlines()[-1])
    assert verdict["correct"] is None
    assert verdict["note"].startswith("unscored: no sandbox here (bwrap: ")
    assert not written.exists(), "the answer's code ran without a sandbox"


def test_an_honest_answer_is_still_right_in_process(tmp_path):
    assert check(REVERSE, REVERSE.example_answer()).correct is True
