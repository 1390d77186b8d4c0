"""Images in conversations: what an image takes of the context window (checked before queueing, and
when the worker fits a conversation), a later turn showing the earlier images again (KEEP_IMAGES),
and what the footer says when it cannot. `joulebot ask` with the embedded Redis and worker and the
Ollama stand-in as the vision model."""

# ruff: noqa: F811 (the fixtures imported from vision_ollama are the tests' parameters)
from __future__ import annotations

import pytest
from imagefiles import png
from testenv import make_settings, run_cli
from vision_ollama import ollama  # noqa: F401 (fixtures)

from joulebot.attachments.images import ImageLimits, read_image
from joulebot.attachments.parts import Attached
from joulebot.chat.asking import InputError, build_request
from joulebot.exchange import Request, Result, Turn
from joulebot.models import build_catalog
from joulebot.models.catalog import ModelEntry, static_entries
from joulebot.models.ollama_runner import OllamaRunner
from joulebot.models.tokens import DEFAULT_IMAGE_TOKENS, image_tokens
from joulebot.worker.context import fit

LIMITS = ImageLimits(max_images=4, max_bytes=10_000_000, max_pixels=1_048_576)
CATALOG = {entry.name: entry for entry in static_entries()}


def test_each_vision_model_counts_an_image_as_its_encoder_does():
    assert image_tokens(CATALOG["llava"], 768, 512) == 2880  # LLaVA 1.6: an overview and four tiles of 576
    assert image_tokens(CATALOG["gemma3-4b"], 4000, 3000) == 260  # 256, whatever the size, and 4 around them
    assert image_tokens(CATALOG["moondream"], 10, 10) == 729
    assert image_tokens(CATALOG["llama3.2-vision"], 768, 512) == 1  # cross-attention: no context positions
    qwen = CATALOG["qwen2.5vl-7b"]
    assert image_tokens(qwen, 1024, 1024) == 37 * 37 + 2  # one per 28×28 px of Ollama's resize
    assert image_tokens(qwen, 768, 512) == 27 * 18 + 2
    assert image_tokens(qwen, 4000, 3000) == 59 * 44 + 2, "Ollama resizes to at most 2 Mi pixels"
    assert image_tokens(qwen, 20, 20) == 2 * 2 + 2, "and to at least 56×56"
    unknown = ModelEntry(name="bakllava:7b", runner="ollama", family="", parameters_b=7.0, vision=True)
    assert image_tokens(unknown, 768, 512) == DEFAULT_IMAGE_TOKENS


def test_a_question_whose_images_do_not_fit_is_refused_before_queueing(ollama, tmp_path):
    settings = make_settings(tmp_path)
    catalog = build_catalog(9.0, OllamaRunner(ollama.url).inventory())
    one = read_image("a.png", png(64, 64), LIMITS)
    request = build_request(
        settings, catalog, platform="cli", user_id="u", prompt="What?", model="llava", attached=Attached(images=[one])
    )
    assert request.images == [one], "one image of 2,880 tokens fits llava's 4,096 with the answer"
    with pytest.raises(InputError) as refused:
        build_request(
            settings, catalog, platform="cli", user_id="u", prompt="What?", model="llava",
            attached=Attached(images=[one, one]),
        )  # fmt: skip
    assert str(refused.value) == (
        "the prompt is 2 tokens (estimated) and its 2 images 5,760; llava has a context of 4096 tokens, which"
        " leaves 3800 for the prompt after 256 for the answer: send fewer images or a shorter prompt"
    )


def test_ask_with_images_that_do_not_fit_is_one_line_and_nothing_is_queued(embedded, ollama, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(png(64, 64))
    proc = run_cli(
        embedded, "ask", "Compare", "-m", "llava", "--image", str(photo), "--image", str(photo),
        OLLAMA_HOST=ollama.url,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("send fewer images or a shorter prompt")
    assert not [path for _, path, _ in ollama.requests if path == "/api/chat"], "nothing reached the model"


def _turns(*images: list) -> list[Turn]:
    turns = []
    for number, shown in enumerate(images):
        turns += [Turn(role="user", content=f"question {number}", images=shown), Turn(role="assistant", content="ok")]
    return turns


def test_the_worker_leaves_the_earlier_images_out_first_oldest_first(ollama):
    llava, runner = CATALOG["llava"], OllamaRunner(ollama.url)
    image = read_image("a.png", png(64, 64), LIMITS)
    request = Request(
        platform="cli", user_id="u", model="llava", prompt="And now?", turns=_turns([image], [image]), max_tokens=256
    )
    count = lambda messages: runner.count_tokens(llava, messages)  # noqa: E731
    fitted = fit(request, 4096, count)
    assert (fitted.dropped_images, fitted.context_images, fitted.dropped_turns) == (1, 1, 0)
    first, _, second, _, question = fitted.messages
    assert "images" not in first and second["images"] == [image.data] and "images" not in question
    roomy = fit(request, 8192, count)
    assert (roomy.dropped_images, roomy.context_images) == (0, 2)
    tight = fit(request, 400, count)
    assert (tight.dropped_images, tight.context_images, tight.dropped_turns) == (2, 0, 0), "the text still fits"


def _asked(settings, *args: str, **env: str) -> Result:
    proc = run_cli(settings, "ask", *args, "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return Result.model_validate_json(proc.stdout)


def test_a_follow_up_shows_the_model_the_kept_image_again(embedded, ollama, tmp_path):
    from joulebot.chat.footer import footer
    from joulebot.history import HistoryStore

    photo = tmp_path / "p.png"
    photo.write_bytes(png(320, 240, (250, 200, 10)))
    env = {"OLLAMA_HOST": ollama.url, "KEEP_IMAGES": "true"}
    first = _asked(embedded, "What is it?", "-m", "llava", "--image", str(photo), **env)
    sent = [body for _, path, body in ollama.requests if path == "/api/chat"][-1]["messages"][-1]["images"]
    later = _asked(embedded, "What colour is it?", "-m", "llava", "-c", **env)
    question, answer, follow_up = [body for _, path, body in ollama.requests if path == "/api/chat"][-1]["messages"]
    assert question["content"] == "What is it?" and question["images"] == sent, "the same image, again"
    assert "images" not in answer and "images" not in follow_up
    assert later.context_images == 1 and later.request.turns[0].images[0].data == "", "the Result keeps no pixels"
    assert "🖼 1 earlier image of this conversation" in footer(later)
    store = HistoryStore.open(embedded.sqlalchemy_url)
    assert [store.get(r.exchange_id).image_count for r in (first, later)] == [1, 1]
    (seen,) = store.category_stats(continued=True, images=True)
    assert seen.answers == 1, "the follow-up read an image: counted with the answers that read images"


def test_without_kept_images_a_follow_up_says_once_that_the_image_is_not_shown(embedded, ollama, tmp_path):
    from joulebot.chat.footer import footer

    photo = tmp_path / "p.png"
    photo.write_bytes(png(320, 240))
    env = {"OLLAMA_HOST": ollama.url}
    _asked(embedded, "What is it?", "-m", "llava", "--image", str(photo), **env)
    second = _asked(embedded, "And its colour?", "-m", "llava", "-c", **env)
    assert all("images" not in m for m in [b for _, p, b in ollama.requests if p == "/api/chat"][-1]["messages"])
    assert "🖼 1 earlier image not shown again: not kept (KEEP_IMAGES)" in footer(second).splitlines()
    assert second.image_count == 0
    third = _asked(embedded, "And its size?", "-m", "llava", "-c", **env)
    assert "🖼" not in footer(third), "said once"


def test_a_conversation_moved_on_to_a_blind_model_leaves_the_earlier_image_out_and_says_why(embedded, ollama, tmp_path):
    from joulebot.chat.footer import footer

    photo = tmp_path / "p.png"
    photo.write_bytes(png(320, 240))
    env = {"OLLAMA_HOST": ollama.url, "KEEP_IMAGES": "true"}
    _asked(embedded, "What is it?", "-m", "llava", "--image", str(photo), **env)
    blind = _asked(embedded, "Say it in French", "-m", "llama3", "-c", **env)
    assert all("images" not in m for m in [b for _, p, b in ollama.requests if p == "/api/chat"][-1]["messages"])
    assert (blind.dropped_images, blind.context_images, blind.image_count) == (1, 0, 0)
    assert "🖼 1 earlier image left out: llama3 cannot see images" in footer(blind).splitlines()
