"""Private files: the data directory holds every prompt and answer, so only its owner may read it.

The directory is 0700 and what joulebot creates in it 0600 (SQLite history and its
journals, the RDB snapshot, logs, pid and lock files). Files are created under a
0077 umask at the points that create them; child processes (the embedded Redis
and worker) get the same umask. An existing directory from an older version
(0755, files 0644) is tightened when it is next used.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (0700; parents as usual) or tighten it and the files directly in it."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR_MODE)
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                _tighten(Path(entry.path), PRIVATE_FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.lstat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
            path.chmod(stat.S_IMODE(info.st_mode) & mode)
    except FileNotFoundError:
        pass  # removed meanwhile (a socket, a pid file)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside are 0600 (directories 0700), whatever the caller's umask."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if missing (e.g. before SQLite opens it), else tighten it."""
    if not path.parent.exists():
        private_dir(path.parent)
    with private_umask():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    _tighten(path, PRIVATE_FILE_MODE)
    return path
