"""Photos and files sent to the real Telegram bot through the Bot API stand-in's upload flow (the
update's photo sizes, getFile, the file download path), answered by a vision model on the Ollama
stand-in, which decodes the image it got."""

from __future__ import annotations

import base64
import io

import pytest
from imagefiles import animated_gif, png
from PIL import Image
from standins import OllamaStandIn
from test_ask_attachments import ollama  # noqa: F401  (fixtures)
from test_telegram import TOKEN, answered, api, bot  # noqa: F401

pytestmark = pytest.mark.e2e


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 60)).save(out, format="JPEG")
    return out.getvalue()


def chats(standin: OllamaStandIn) -> list[dict]:
    return [body["messages"][-1] for _, path, body in standin.requests if path == "/api/chat"]


def replied(chat_id: int, text: str):
    return lambda method, p: method == "sendMessage" and str(p.get("chat_id")) == str(chat_id) and text in p["text"]


def test_a_photo_and_a_text_document_are_answered_with_what_was_looked_at(bot, api, ollama):  # noqa: F811
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llava", MAX_IMAGE_PIXELS="307200")
    api.photo(601, [(160, 120, jpeg(160, 120)), (800, 600, jpeg(800, 600))])  # no caption
    _, final = api.wait_for(answered(601))
    assert "🖼 1 image, 640×480" in final["text"]
    assert api.downloads == ["photos/file_1.jpg"], "the largest size, fetched through getFile"
    question = chats(ollama)[-1]  # after the worker's warm-up of the model
    assert question["content"] == "Describe this image."
    seen = Image.open(io.BytesIO(base64.b64decode(question["images"][0])))
    assert seen.size == (640, 480) and seen.getpixel((5, 5)) == pytest.approx((30, 160, 60), abs=4)

    api.document(602, b"kWh,hour\n1.5,12\n", "meter.csv", "text/csv", caption="Which hour?")
    api.wait_for(answered(602))
    assert chats(ollama)[-1]["content"] == 'Which hour?\n\n<file name="meter.csv">\nkWh,hour\n1.5,12\n</file>'
    assert "images" not in chats(ollama)[-1]


def test_hostile_uploads_get_one_line_and_nothing_is_queued(bot, api, ollama):  # noqa: F811
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llava")
    api.document(603, animated_gif(), "moving.gif", "image/gif")
    api.wait_for(replied(603, "moving.gif is animated (3 frames): send a single still image"))
    api.document(603, b"\x00" * 50_000_000, "huge.pdf", "application/pdf")
    api.wait_for(replied(603, "huge.pdf is 50,000,000 bytes; text files are taken up to 20,000 characters"))
    api.document(603, png(8, 8), "notes.txt", "text/plain")
    api.wait_for(replied(603, "notes.txt is a binary file"))
    api.message(603, "/model llama3")
    api.wait_for(replied(603, "llama3"))
    api.photo(603, [(64, 48, jpeg(64, 48))], caption="What is it?")
    api.wait_for(replied(603, "llama3 cannot see images; the models here that can: llava"))
    asked = [c for c in chats(ollama) if c.get("images") or "<file" in c["content"] or "What is it?" in c["content"]]
    assert asked == [], "nothing reached the model (the worker's warm-up aside)"
    assert "documents/huge.pdf" not in api.downloads
