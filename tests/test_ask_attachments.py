"""`joulebot ask --image/--file` through the real queue and worker to the Ollama stand-in, and the
hostile files it refuses in one line with nothing queued."""

from __future__ import annotations

import base64
import io

import pytest
from conftest import run_cli
from imagefiles import animated_gif, jpeg_with_gps, png, png_bomb, truncated_jpeg
from PIL import Image
from standins import OllamaStandIn

from joulebot.exchange import Result
from joulebot.queueing.embedded import embedded_worker_alive


@pytest.fixture
def ollama():
    server = OllamaStandIn({"llava:7b": "7.2B", "llama3:8b": "8.0B"})
    server.vision = {"llava:7b"}
    yield server
    server.close()


def test_ask_with_an_image_and_a_file_reaches_the_vision_model(embedded, ollama, tmp_path):
    photo, notes = tmp_path / "photo.jpg", tmp_path / "notes.md"
    photo.write_bytes(jpeg_with_gps(1600, 1200))
    notes.write_text("solar at noon\n", encoding="utf-8")
    env = {"OLLAMA_HOST": ollama.url, "MAX_IMAGE_PIXELS": "786432"}
    listing = run_cli(embedded, "models", **env)
    assert "llava · 7.2B · LLaVA · 🖼 sees images" in listing.stdout, listing.stdout

    proc = run_cli(
        embedded, "ask", "What is this?", "-m", "llava", "--image", str(photo), "--file", str(notes), "--json", **env
    )
    assert proc.returncode == 0, proc.stderr
    result = Result.model_validate_json(proc.stdout)
    [image] = result.request.images
    assert (image.width, image.height) == (1024, 768) and image.downscaled
    assert image.data == "" and len(image.sha256) == 64, "the Result keeps what the image was, not the image"
    [[sent]] = [images for images in ollama.images_received() if images]
    seen = Image.open(io.BytesIO(base64.b64decode(sent)))
    assert seen.size == (1024, 768) and not seen.getexif(), "downscaled, and the GPS position never left"
    question = [body for _, path, body in ollama.requests if path == "/api/chat"][-1]["messages"][-1]
    assert question["content"] == 'What is this?\n\n<file name="notes.md">\nsolar at noon\n</file>'

    blind = run_cli(embedded, "ask", "What is this?", "-m", "llama3", "--image", str(photo), **env)
    assert blind.returncode == 2
    assert blind.stderr.strip().endswith("llama3 cannot see images; the models here that can: llava (/model NAME)")


HOSTILE = {
    "bomb.png": (png_bomb(), "would decode to too many pixels"),
    "strip.png": (png(1, 100_000), "1:20 aspect ratio"),
    "cut.jpg": (truncated_jpeg(), "not a complete image"),
    "moving.gif": (animated_gif(), "is animated (3 frames)"),
    "text.png": (b"hello, I am text\n" * 50, "not an image"),
}


@pytest.mark.parametrize("name", [*HOSTILE, "twenty", "document.txt", "huge.jpg"])
def test_hostile_attachments_are_one_line_and_nothing_is_queued(embedded, ollama, tmp_path, name):
    if name == "twenty":
        (tmp_path / "a.png").write_bytes(png(8, 8))
        args, says = [a for _ in range(20) for a in ("--image", str(tmp_path / "a.png"))], "at most 4 images"
    elif name in ("document.txt", "huge.jpg"):
        with open(tmp_path / name, "wb") as big:
            big.truncate(50_000_000)  # 50 MB, sparse: refused from its size, never read
        option = "--file" if name.endswith(".txt") else "--image"
        args, says = [option, str(tmp_path / name)], "50,000,000 bytes" if option == "--file" else "50.0 MB"
    else:
        raw, says = HOSTILE[name]
        (tmp_path / name).write_bytes(raw)
        args = ["--image", str(tmp_path / name)]
    proc = run_cli(embedded, "ask", "Look", "-m", "llava", *args, OLLAMA_HOST=ollama.url)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert says in line and line.endswith("nothing was queued"), line
    assert not [path for _, path, _ in ollama.requests if path == "/api/chat"]
    assert not embedded_worker_alive(embedded), "refused before the queue was even started"
