"""Running a model's Python inside bubblewrap, never in the worker and never unconfined.

`bwrap` gives the answer's code namespaces of its own: no network (only a loopback of its
own), no view of any other process (its own /proc; it is PID 2, under bwrap's PID 1, so it
can signal nothing outside), the system's /usr read-only and nothing else of the host's files
(no data directory, no home, no /etc, no working directory of ours), a 16 MiB /tmp of its
own as working and home directory and the only place it can write, an empty environment,
and no further user namespaces.
Inside, the harness limits itself before it reads the code: CPU time, address space, file
size and processes. Processes are bounded because the sandbox never runs as root: as root,
the kernel ignores RLIMIT_NPROC, so a root checker starts bwrap as `nobody`; the count is kept
per user namespace, so each sandbox has its own. When PID 1 of the namespace ends, the kernel
kills whatever the code left (a forked, setsid() grandchild included) before bwrap returns.

No pipe connects the sandbox to the checker: its input and its output are unlinked temporary
files (the output capped by the file-size limit), so nothing the code leaves behind can hold
the checker, and what comes out is data that probes.py judges (see there).

Without a working bwrap (not installed, user namespaces off) nothing runs: SandboxUnavailable.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from joulebot.campaign.probes import parse_records

CPU_S = 5
MEMORY_BYTES = 512 * 1024 * 1024
FILE_BYTES = 8 * 1024 * 1024
PROCESSES = 8  # bwrap's PID 1, the harness and what it forks or threads: at most 8 × MEMORY_BYTES in all
TMP_BYTES = 16 * 1024 * 1024
WALL_S = 10.0
NOBODY = 65534  # who the sandbox runs as when the checker runs as root
INTERPRETERS = ("/usr/bin/python3", "/usr/local/bin/python3")  # under /usr: the only host folder inside

_HARNESS = Path(__file__).with_name("harness.py")
_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


class SandboxUnavailable(Exception):
    """No confinement here (the message says why): the code is not run at all."""


@dataclass(frozen=True)
class SandboxRun:
    records: list[dict]  # what the harness (or the code) wrote: data for probes.py
    stopped: str  # why it ended early, in words ("" when it ended by itself)


def run_sandboxed(spec: dict, wall_s: float = WALL_S) -> SandboxRun:
    """Run the harness on `spec` in a fresh sandbox; its records, and why it stopped if it did not end."""
    command = sandbox_command()
    limits = [str(n) for n in (CPU_S, MEMORY_BYTES, FILE_BYTES, PROCESSES)]
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as trace:
        given.write(json.dumps(spec).encode())
        given.seek(0)
        child = _start([*command, "-c", _HARNESS.read_text(), str(trace.fileno()), *limits], given, trace)
        stopped = ""
        try:
            child.wait(timeout=wall_s)
        except subprocess.TimeoutExpired:
            stopped = f"timed out after {wall_s:g} s"
        finally:
            _stop(child)
        if not stopped and child.returncode > 128:  # bwrap's status for a child killed by a signal
            why = _signal_name(child.returncode - 128)
            stopped = f"killed by {why} (CPU {CPU_S} s, memory {MEMORY_BYTES >> 20} MiB limits)"
        trace.seek(0)
        return SandboxRun(parse_records(trace.read(FILE_BYTES)), stopped)


def sandbox_command() -> list[str]:
    """bwrap's command line up to the interpreter's arguments; SandboxUnavailable where it cannot work."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bwrap not found on PATH (Debian's bubblewrap)")
    python = next((p for p in INTERPRETERS if os.access(p, os.X_OK)), None)
    if python is None:
        raise SandboxUnavailable(f"no python3 under /usr ({', '.join(INTERPRETERS)})")
    command = [bwrap, *_confinement(), python, "-I"]
    failure = _fails(tuple(command))
    if failure:
        raise SandboxUnavailable(failure)
    return command


def _confinement() -> list[str]:
    system = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64"):
        host = Path("/", top)
        if host.is_symlink():  # merged /usr: /bin -> usr/bin
            system += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            system += ["--ro-bind", str(host), str(host)]
    environment = [arg for name, value in _ENV.items() for arg in ("--setenv", name, value)]
    return [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        *system,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",  # bwrap's own root and /dev are unbounded tmpfs: only the sized /tmp stays writable
        "--chdir",
        "/tmp",
        "--clearenv",
        *environment,
        "--",
    ]


@functools.cache
def _fails(command: tuple[str, ...]) -> str:
    """Why this sandbox cannot start here ("" when it can): bwrap's own first line, once per process."""
    try:
        probe = subprocess.run(
            [*command, "-c", "pass"], capture_output=True, timeout=WALL_S, cwd="/", env=_ENV, **_identity()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap does not start ({exc})"
    if probe.returncode == 0:
        return ""
    lines = probe.stderr.decode(errors="replace").strip().splitlines()
    return (lines[0] if lines else f"bwrap exits with status {probe.returncode}")[:200]


def _identity() -> dict:
    """Not root: RLIMIT_NPROC does not hold for root, so a root checker runs bwrap as nobody."""
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}


def _start(command: list[str], given, trace) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        stdin=given,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(trace.fileno(),),
        cwd="/",
        env=_ENV,
        start_new_session=True,
        **_identity(),
    )


def _stop(child: subprocess.Popen) -> None:
    """End the sandbox and return only once none of its processes is left.

    bwrap returns only after its namespace's PID 1 is gone, and the kernel ends that PID 1 only
    after every other process of the namespace: so bwrap ended by itself leaves nothing, and one
    still running is ended by killing that PID 1 (bwrap's child) and waiting for bwrap.
    """
    if child.returncode is not None:
        return
    with contextlib.suppress(OSError):
        for pid in Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
    try:
        child.wait(timeout=WALL_S)
    except subprocess.TimeoutExpired:  # no PID 1 found (not started yet): bwrap's group, still unreaped
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
