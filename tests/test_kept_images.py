"""KEEP_IMAGES: the images kept for Retry and later turns, private, bounded, and gone after a forget.

Real files in a data directory; the forget runs through `joulebot ask --image` and `joulebot history
--forget` with the embedded Redis and worker and the Ollama stand-in as the vision model.
"""

# ruff: noqa: F811 (the fixtures imported from vision_ollama are the tests' parameters)
from __future__ import annotations

import base64
import os
import stat
import time

from imagefiles import png
from test_forget_means_forgotten import holding, holding_on_disk
from testenv import make_settings, run_cli
from vision_ollama import ollama  # noqa: F401 (fixtures)

from joulebot.attachments.images import ImageLimits, read_image
from joulebot.attachments.kept import KeptImages, kept_folder
from joulebot.queueing import connection as conn

LIMITS = ImageLimits(max_images=4, max_bytes=10_000_000, max_pixels=1_048_576)


def _image(red: int, side: int = 256):
    return read_image(f"p{red}.png", png(side, side, (red, 90, 30)), LIMITS)


def _shown(image):
    """What history says an image was: everything but its pixels."""
    return image.model_copy(update={"data": ""})


def test_kept_images_are_private_found_by_their_hash_and_the_least_recently_used_go_first(tmp_path):
    first, second, third = _image(10), _image(120), _image(240)
    size = len(base64.b64decode(first.data))
    kept = KeptImages(tmp_path, max_bytes=int(2.5 * size))
    kept.keep("telegram", "42", [first, second])
    folder = kept_folder(tmp_path, "telegram", "42")
    assert "42" not in str(folder.relative_to(tmp_path)), "no user id in a path"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE((tmp_path / "images").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in folder.iterdir())
    assert kept.load("telegram", "42", [_shown(second), _shown(first)]) == [second, first], "the same pixels"
    assert kept.load("telegram", "7", [_shown(first)]) == [], "another user's images are not theirs"

    old = time.time() - 100
    os.utime(folder / f"{second.sha256}.jpg", (old, old))  # `second` was used longest ago
    kept.keep("telegram", "42", [third])  # beyond the bytes: the least recently used goes
    assert kept.load("telegram", "42", [_shown(first), _shown(second), _shown(third)]) == [first, third]

    (folder / f"{first.sha256}.jpg").write_bytes(b"not the image it was")
    assert kept.load("telegram", "42", [_shown(first)]) == [], "a file that is not the image is not shown"


def test_kept_images_last_no_longer_than_history_retention(tmp_path):
    settings = make_settings(tmp_path, keep_images=True, history_retention_days=1)
    kept = KeptImages.of(settings)
    assert kept is not None and KeptImages.of(make_settings(tmp_path)) is None, "off unless KEEP_IMAGES"
    old, new = _image(10), _image(200)
    kept.keep("cli", "u", [old])
    path = kept_folder(tmp_path, "cli", "u") / f"{old.sha256}.jpg"
    two_days_ago = time.time() - 2 * 86_400
    os.utime(path, (two_days_ago, two_days_ago))
    assert kept.load("cli", "u", [_shown(old)]) == []
    kept.keep("cli", "u", [new])
    assert not path.exists() and kept.load("cli", "u", [_shown(new)]) == [new]


def test_forget_deletes_the_kept_images_and_no_byte_of_them_stays(embedded, ollama, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(640, 480, (17, 201, 99)))
    as_sent = read_image("photo.png", photo.read_bytes(), LIMITS)  # what the model gets, and what is kept
    raw = base64.b64decode(as_sent.data)
    pieces = [raw[200:264], raw[-64:], as_sent.data[400:464].encode(), as_sent.sha256.encode()]
    env = {"OLLAMA_HOST": ollama.url, "KEEP_IMAGES": "true"}
    asked = run_cli(embedded, "ask", "What colour?", "-m", "llava", "--image", str(photo), **env)
    assert asked.returncode == 0, asked.stderr
    kept = [p for p in (embedded.data_dir / "images").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [raw], "kept as the model got it"
    client, snapshot, base64_piece = conn.connect(embedded), embedded.data_dir / "redis.rdb", as_sent.data[400:464]
    client.save()
    assert any(key.startswith("rq:job:") for key in holding(client, base64_piece)), "the job's Request carries it"
    assert holding_on_disk(snapshot, tmp_path, base64_piece)

    stored = [p for p in embedded.data_dir.rglob("*") if p.is_file() and as_sent.sha256.encode() in p.read_bytes()]
    assert stored, "history keeps the image's hash (its name, size and dimensions) until a forget"
    forgot = run_cli(embedded, "history", "--forget", f"cli:{os.getuid()}", **env)
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot 1 exchange and 1 kept image of cli:" in forgot.stdout
    files = [
        str(path.relative_to(embedded.data_dir))
        for path in embedded.data_dir.rglob("*")
        if path.is_file() and any(piece in path.read_bytes() for piece in pieces)
    ]
    assert files == [], "no file of the data directory (kept images, history, its WAL) holds a piece"
    assert holding(client, base64_piece) == [] and holding_on_disk(snapshot, tmp_path, base64_piece) == []
    assert holding(client, as_sent.sha256) == [], "nor any Redis key its hash"
