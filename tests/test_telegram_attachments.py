"""Photos and files sent to the real Telegram bot through the Bot API stand-in's upload flow (the
update's photo sizes, getFile, the file download path), answered by a vision model on the Ollama
stand-in, which decodes the image it got."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from imagefiles import animated_gif, png
from PIL import Image
from standins import OllamaStandIn
from telegram_process import TOKEN, answered, api, bot  # noqa: F401 (fixtures)
from vision_ollama import ollama  # noqa: F401 (fixtures)

from joulebot.chat.telegram_questions import ALBUM_WAIT_S

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


def conversations(standin: OllamaStandIn) -> list[list[dict]]:
    return [body["messages"] for _, path, body in standin.requests if path == "/api/chat"]


def final_with(chat_id: int, text: str):
    return lambda method, p: answered(chat_id)(method, p) and text in p["text"]


def retry_of(final: dict) -> str:
    return json.loads(final["reply_markup"])["inline_keyboard"][0][0]["callback_data"]


def test_a_follow_up_and_retry_show_the_model_the_kept_photo_again(bot, api, ollama):  # noqa: F811
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llava", KEEP_IMAGES="true")
    api.photo(611, [(320, 240, jpeg(320, 240))], caption="What is it?")
    _, first = api.wait_for(answered(611))
    sent = chats(ollama)[-1]["images"]
    api.message(611, "What colour is it?")
    api.wait_for(final_with(611, "🖼 1 earlier image of this conversation"))
    question, _, follow_up = conversations(ollama)[-1]
    assert question == {"role": "user", "content": "What is it?", "images": sent} and "images" not in follow_up

    api.press(611, first["message_id"], retry_of(first))
    api.wait_for(lambda m, p: final_with(611, "🖼 1 image, 320×240")(m, p) and p["message_id"] != first["message_id"])
    assert conversations(ollama)[-1] == [{"role": "user", "content": "What is it?", "images": sent}]


def test_without_kept_images_retry_and_follow_ups_say_the_photo_is_not_shown(bot, api, ollama):  # noqa: F811
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llava")
    api.photo(612, [(320, 240, jpeg(320, 240))], caption="What is it?")
    _, first = api.wait_for(answered(612))
    asked = len(conversations(ollama))
    api.press(612, first["message_id"], retry_of(first))
    api.wait_for(lambda m, p: m == "answerCallbackQuery" and "cannot be shown again" in p.get("text", ""))
    assert len(conversations(ollama)) == asked, "nothing was asked"
    api.message(612, "What colour is it?")
    api.wait_for(final_with(612, "🖼 1 earlier image not shown again: not kept (KEEP_IMAGES)"))
    assert all("images" not in m for m in conversations(ollama)[-1])


def test_a_retried_file_question_is_asked_again_whole_though_longer_than_max_prompt_chars(bot, api, ollama):  # noqa: F811
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llava", MAX_PROMPT_CHARS="40")
    table = "".join(f"{hour},{hour / 10:.1f}\n" for hour in range(24)).encode()  # ~170 characters
    api.document(613, table, "day.csv", "text/csv", caption="Which hour used most?")
    _, first = api.wait_for(answered(613))
    asked = chats(ollama)[-1]["content"]
    assert len(asked) > 40 and asked.startswith('Which hour used most?\n\n<file name="day.csv">')
    api.press(613, first["message_id"], retry_of(first))
    api.wait_for(lambda m, p: answered(613)(m, p) and p["message_id"] != first["message_id"])
    assert chats(ollama)[-1]["content"] == asked


def test_an_album_is_one_question_with_all_its_photos(bot, api, ollama):  # noqa: F811
    """Telegram sends an album as messages sharing a media_group_id, the caption on the first: one
    question with every photo, answered once; its photos count together against MAX_IMAGES."""
    ollama.models["gemma3:4b"] = "4.3B"  # 260 tokens an image: three fit its window (llava's 2,880 would not)
    ollama.vision.add("gemma3:4b")
    bot(OLLAMA_HOST=ollama.url, DEFAULT_MODEL="gemma3-4b")
    sizes = [(64, 48), (80, 60), (96, 72)]
    api.album(621, [[(w, h, jpeg(w, h))] for w, h in sizes], caption="Which is largest?")
    _, final = api.wait_for(answered(621))
    assert "🖼 3 images, 64×48, 80×60, 96×72" in final["text"]
    question = chats(ollama)[-1]
    assert question["content"] == "Which is largest?"
    assert [Image.open(io.BytesIO(base64.b64decode(i))).size for i in question["images"]] == sizes, "in order"
    time.sleep(2 * ALBUM_WAIT_S)  # a photo answered on its own would have been by now
    assert len([c for c in chats(ollama) if c.get("images")]) == 1
    assert [m for m, _ in api.to_chat(621)].count("sendMessage") == 1, "one status message: one question"

    fetched = len(api.downloads)
    api.album(622, [[(32, 24, jpeg(32, 24))] for _ in range(5)])
    api.wait_for(replied(622, "at most 4 images per message (this one has 5)"))
    assert len(api.downloads) == fetched, "refused before a photo was downloaded"

    api.album(623, [[(40, 30, jpeg(40, 30))], [(40, 30, jpeg(40, 30))]], chat_id=-6001, chat_type="group")
    two = [[(50, 40, jpeg(50, 40))], [(60, 40, jpeg(60, 40))]]
    api.album(623, two, "@joulebot_test_bot Same?", chat_id=-6002, chat_type="group")  # the mention's entity too
    _, group = api.wait_for(answered(-6002))
    assert "🖼 2 images, 50×40, 60×40" in group["text"] and chats(ollama)[-1]["content"] == "Same?"
    assert not api.to_chat(-6001), "an album in a group that does not mention the bot is not for it"
