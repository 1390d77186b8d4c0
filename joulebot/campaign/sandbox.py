"""Running a model's Python against unit tests: in a separate process, never in the worker.

The child is a fresh interpreter in isolated mode (-I: no user site, no PYTHON*
variables), in a temporary directory that is its working and home directory,
with an empty environment, limits on CPU time, address space, file size and open
files (setrlimit, set by the harness itself before it reads the model's code: no
preexec_fn, which is unsafe in a process with threads such as the progress bar),
a wall-clock timeout, and its own process group, killed whole when time is up.
Its verdict comes back on a pipe of its own, so what the model's code prints
cannot forge it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CPU_S = 5
MEMORY_BYTES = 512 * 1024 * 1024
FILE_BYTES = 8 * 1024 * 1024
WALL_S = 10.0

_HARNESS = Path(__file__).with_name("harness.py")


@dataclass(frozen=True)
class RunOutcome:
    passed: int
    total: int
    note: str


def run_tests(blocks: list[str], name: str, kind: str, tests: list[str], wall_s: float = WALL_S) -> RunOutcome:
    """Execute the code blocks in a fresh process, bind `name`, run the tests; count the passes."""
    spec = json.dumps({"blocks": blocks, "name": name, "kind": kind, "tests": tests})
    read_end, write_end = os.pipe()
    with tempfile.TemporaryDirectory(prefix="joulebot-check-") as folder:
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", str(_HARNESS), str(write_end), str(CPU_S), str(MEMORY_BYTES), str(FILE_BYTES)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=folder,
                env=env,
                pass_fds=(write_end,),
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as verdicts:
            try:
                child.communicate(spec.encode(), timeout=wall_s)
            except subprocess.TimeoutExpired:
                return RunOutcome(0, len(tests), f"timed out after {wall_s:g} s")
            finally:
                _kill_group(child)  # anything it left behind in its group
            raw = verdicts.read()
    try:
        verdict = json.loads(raw.decode())
        return RunOutcome(int(verdict["passed"]), len(tests), str(verdict["note"])[:160])
    except (ValueError, KeyError, TypeError):
        if child.returncode and child.returncode < 0:
            why = signal.Signals(-child.returncode).name
            return RunOutcome(0, len(tests), f"killed by {why} (CPU {CPU_S} s, memory {MEMORY_BYTES >> 20} MiB limits)")
        return RunOutcome(0, len(tests), f"the checker's process ended without a verdict (exit {child.returncode})")


def _kill_group(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()
