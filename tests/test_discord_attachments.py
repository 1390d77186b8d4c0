"""Images and files on Discord: an attachment in a mention (gateway) and the /ask `image` option
(an interaction's resolved attachment), fetched from the stand-in's CDN path, answered by a vision
model on the Ollama stand-in, which decodes the image it got."""

from __future__ import annotations

import base64
import io

import pytest
from discord_chat import answer_to, api, chats, footer, ollama, original, start, wait  # noqa: F401
from imagefiles import animated_gif, png
from PIL import Image

from joulebot.chat.discord_views import RETRY_ID

pytestmark = pytest.mark.e2e


def received(standin) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(chats(standin)[-1][-1]["images"][0])))


def test_a_mention_with_an_image_and_the_ask_image_option_reach_the_vision_model(start, api, ollama):  # noqa: F811
    ollama.models["llava:7b"], ollama.vision = "7.2B", {"llava:7b"}
    start(default_model="llava", discord_threads=False)
    asked = api.say(601, "", mention=True, attachments=[("cat.png", "image/png", png(768, 512))])
    answer = answer_to(api, asked)
    assert "🖼 1 image, 768×512" in footer(answer)
    assert chats(ollama)[-1][-1]["content"] == "Describe this image."
    assert received(ollama).size == (768, 512)

    token = api.command(602, "ask", prompt="What colour?", image=("red.png", "image/png", png(64, 64, (250, 0, 0))))
    reply = original(api, token)
    assert "🖼 1 image, 64×64" in footer(reply)
    assert chats(ollama)[-1][-1]["content"] == "What colour?"
    assert received(ollama).getpixel((3, 3)) == pytest.approx((250, 0, 0), abs=4)

    notes = api.say(603, "Which hour?", mention=True, attachments=[("meter.csv", "text/csv", b"kWh,hour\n1.5,12\n")])
    answer_to(api, notes)
    assert chats(ollama)[-1][-1]["content"] == 'Which hour?\n\n<file name="meter.csv">\nkWh,hour\n1.5,12\n</file>'


def test_a_hostile_attachment_gets_one_line_and_nothing_is_queued(start, api, ollama):  # noqa: F811
    ollama.models["llava:7b"], ollama.vision = "7.2B", {"llava:7b"}
    start(default_model="llava", discord_threads=False)
    before = len(chats(ollama))
    asked = api.say(604, "look", mention=True, attachments=[("moving.gif", "image/gif", animated_gif())])
    wait(lambda: api.replies_to(asked["id"]))
    [refusal] = api.replies_to(asked["id"])
    assert refusal["content"] == "moving.gif is animated (3 frames): send a single still image"
    assert len(chats(ollama)) == before, "nothing reached the model"


def test_retry_asks_again_with_the_kept_image_and_without_it_says_so(start, api, ollama):  # noqa: F811
    ollama.models["llava:7b"], ollama.vision = "7.2B", {"llava:7b"}
    runner = start(default_model="llava", discord_threads=False, keep_images=True)
    asked = api.say(611, "What is it?", mention=True, attachments=[("cat.png", "image/png", png(96, 64))])
    answer = answer_to(api, asked)
    sent = chats(ollama)[-1][-1]["images"]
    api.press(611, answer["id"], RETRY_ID)
    again = answer_to(api, answer)
    assert again["id"] != answer["id"] and "🖼 1 image, 96×64" in footer(again)
    assert chats(ollama)[-1][-1] == {"role": "user", "content": "What is it?", "images": sent}, "the same image"

    runner.stop()
    start(default_model="llava", discord_threads=False)  # KEEP_IMAGES off: what was kept is not looked at
    asked = len(chats(ollama))
    token = api.press(611, answer["id"], RETRY_ID)
    api.wait_for(lambda m, p, b: token in p and "cannot be shown again" in b.get("content", ""))
    assert len(chats(ollama)) == asked, "nothing was asked"
