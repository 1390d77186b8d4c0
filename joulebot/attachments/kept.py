"""Images kept for Retry and the later turns of a conversation (KEEP_IMAGES=true).

History keeps what each image was (name, SHA-256, byte size, dimensions), never the image. With
KEEP_IMAGES on, the front end that received an image also keeps it, as the model got it (re-encoded,
metadata gone), in the private data directory: `images/<user>/<sha256>.jpg|png`, one folder per user
(named by a hash of platform and user id: no user id in a path), 0700 with 0600 files. Together they
stay under KEEP_IMAGES_MAX_MB, the least recently used going first, and no longer than
HISTORY_RETENTION_DAYS where that is set. Forgetting a user deletes their folder, whatever
KEEP_IMAGES says now (it may have been on when they sent them).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from joulebot.attachments.parts import ImageInput
from joulebot.config.files import private_dir, private_umask

FOLDER = "images"
SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png"}  # what joulebot.attachments.images writes
SHA256 = re.compile(r"[0-9a-f]{64}")
DAY_S = 86_400


def kept_folder(data_dir: Path, platform: str, user_id: str) -> Path:
    """Where one user's kept images are."""
    digest = hashlib.sha256(f"{platform}\0{user_id}".encode()).hexdigest()[:32]
    return data_dir / FOLDER / digest


def forget_kept_images(data_dir: Path, platform: str, user_id: str) -> int:
    """Delete every image kept for this user; returns how many there were."""
    folder = kept_folder(data_dir, platform, user_id)
    if not folder.is_dir():
        return 0
    count = sum(1 for path in folder.iterdir() if path.suffix in SUFFIXES.values())
    shutil.rmtree(folder)
    return count


class _KeepSettings(Protocol):
    data_dir: Path
    keep_images: bool
    keep_images_max_mb: float
    history_retention_days: float


class KeptImages:
    """The kept images of every user of this data directory, bounded in bytes and age."""

    def __init__(self, data_dir: Path, max_bytes: int, max_age_s: float | None = None) -> None:
        self.root, self.max_bytes, self.max_age_s = data_dir / FOLDER, max_bytes, max_age_s
        self.data_dir = data_dir

    @classmethod
    def of(cls, settings: _KeepSettings) -> KeptImages | None:
        """The store KEEP_IMAGES asks for (None: images are not kept)."""
        if not settings.keep_images:
            return None
        days = settings.history_retention_days
        return cls(settings.data_dir, int(settings.keep_images_max_mb * 1_000_000), days * DAY_S if days else None)

    def keep(self, platform: str, user_id: str, images: Iterable[ImageInput]) -> None:
        """Keep each image (once per user: its name is its hash), then the oldest beyond the bounds go."""
        images = [image for image in images if image.data and image.media_type in SUFFIXES]
        if not images:
            return
        private_dir(self.root)
        folder = private_dir(kept_folder(self.data_dir, platform, user_id))
        for image in images:
            path = folder / (image.sha256 + SUFFIXES[image.media_type])
            if path.exists():
                os.utime(path)  # used again: the last to go
                continue
            partial = path.with_suffix(".part")
            with private_umask():
                partial.write_bytes(base64.b64decode(image.data))
            partial.replace(path)
        self._bound()

    def load(self, platform: str, user_id: str, shown: Iterable[ImageInput]) -> list[ImageInput]:
        """Those of `shown` (what history says the images were) still kept for this user, with their pixels."""
        folder = kept_folder(self.data_dir, platform, user_id)
        found = []
        for image in shown:
            if not SHA256.fullmatch(image.sha256) or image.media_type not in SUFFIXES:
                continue
            path = folder / (image.sha256 + SUFFIXES[image.media_type])
            try:
                raw = path.read_bytes()
            except OSError:
                continue  # never kept, bounded away or forgotten
            if hashlib.sha256(raw).hexdigest() != image.sha256 or self._expired(path):
                continue
            os.utime(path)
            found.append(image.model_copy(update={"data": base64.b64encode(raw).decode("ascii")}))
        return found

    def _expired(self, path: Path) -> bool:
        return self.max_age_s is not None and time.time() - path.stat().st_mtime > self.max_age_s

    def _bound(self) -> None:
        """Delete what is older than HISTORY_RETENTION_DAYS, then the least recently used beyond the bytes."""
        files = []
        for path in self.root.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):  # another process bounding at the same time
                stat = path.stat()
                files.append((stat.st_mtime, stat.st_size, path))
        files.sort()
        total = sum(size for _, size, _ in files)
        for mtime, size, path in files:  # oldest first: once one may stay, so may every later one
            if total <= self.max_bytes and (self.max_age_s is None or time.time() - mtime <= self.max_age_s):
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
