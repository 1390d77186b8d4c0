"""Processes a test starts, ended when the test ends — also when it fails or times out.

Each one starts in a session of its own. At the end, every one still running is killed
with its whole process group (SIGKILL) and reaped, so a failing shutdown test leaves no
worker behind under PID 1 to hold a box lock or eat a core.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], **popen: Any) -> subprocess.Popen:
        process = subprocess.Popen(args, start_new_session=True, **popen)
        self.started.append(process)
        return process

    def end_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                process.communicate(timeout=10)  # reaps it and closes its pipes
        self.started.clear()
