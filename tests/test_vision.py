"""Vision models: the capability from Ollama, the catalog's list, routing, and the images Ollama gets."""

from __future__ import annotations

import base64
import io

import pytest
from fleet_views import box_view
from imagefiles import png
from PIL import Image
from standins import OllamaStandIn
from testenv import make_settings

from joulebot.attachments.images import ImageLimits, read_image
from joulebot.attachments.parts import Attached
from joulebot.chat.asking import InputError, build_request
from joulebot.exchange import Request
from joulebot.models import build_catalog
from joulebot.models.catalog import static_entries
from joulebot.models.ollama_runner import OllamaRunner
from joulebot.queueing.fleet import BoxView
from joulebot.queueing.routing import RoutingRefused, route

LIMITS = ImageLimits(max_images=4, max_bytes=10_000_000, max_pixels=1_048_576)
SERVED = {"llava:7b": "7.2B", "llama3:8b": "8.0B", "bakllava:7b": "7.0B", "llama3.2-vision:11b": "10.7B"}


@pytest.fixture
def ollama():
    server = OllamaStandIn(dict(SERVED))
    server.vision = {"llava:7b", "bakllava:7b", "llama3.2-vision:11b"}
    yield server
    server.close()


@pytest.mark.unit
def test_the_catalog_lists_the_common_small_vision_models_and_smollm2_cannot_see():
    entries = {e.name: e for e in static_entries()}
    for name in ("llava", "moondream", "gemma3-4b", "qwen2.5vl-3b", "qwen2.5vl-7b", "minicpm-v", "llama3.2-vision"):
        assert entries[name].vision and entries[name].runner == "ollama", name
    assert not entries["smollm2-135m"].vision and "cannot see images" in entries["smollm2-135m"].description


def test_vision_comes_from_ollamas_capabilities_and_the_size_limit_still_applies(ollama):
    catalog = build_catalog(9.0, OllamaRunner(ollama.url).inventory())
    offers = {o.entry.name: o for o in catalog.offers}
    assert offers["llava"].entry.vision and offers["llava"].available
    assert offers["bakllava:7b"].entry.vision, "a model the catalog does not know: the server's capability"
    assert not offers["llama3"].entry.vision
    assert not offers["llama3.2-vision"].available and "up to 9B" in offers["llama3.2-vision"].reason


def test_a_model_that_cannot_see_gets_one_line_naming_the_vision_models_here(ollama, tmp_path):
    settings = make_settings(tmp_path)
    image = read_image("cat.png", png(), LIMITS)
    seen = Attached(images=[image])
    catalog = build_catalog(9.0, OllamaRunner(ollama.url).inventory())
    with pytest.raises(InputError) as refused:
        build_request(
            settings, catalog, platform="cli", user_id="u", prompt="What is this?", model="smollm2", attached=seen
        )
    assert (
        str(refused.value)
        == "smollm2-135m cannot see images; the models here that can: llava, bakllava:7b (/model NAME)"
    )
    blind_fleet = build_catalog(9.0, [])
    with pytest.raises(InputError) as none_here:
        build_request(
            settings, blind_fleet, platform="cli", user_id="u", prompt="What?", model="smollm2", attached=seen
        )
    assert "no model here can (an admin can: joulebot models pull llava)" in str(none_here.value)
    request = build_request(
        settings, catalog, platform="cli", user_id="u", prompt="What?", model="llava", attached=seen
    )
    assert request.images == [image]


def test_the_image_reaches_ollama_as_base64_on_the_users_message(ollama):
    image = read_image("cat.png", png(768, 512), LIMITS)
    request = Request(
        platform="cli", user_id="u", model="llava", prompt="What colour?", system="Be brief.", images=[image]
    )
    llava = next(e for e in static_entries() if e.name == "llava")
    OllamaRunner(ollama.url).generate(llava, request.messages(), max_tokens=16)
    chat = next(body for _, path, body in ollama.requests if path == "/api/chat")
    system, question = chat["messages"]
    assert system["role"] == "system" and "images" not in system, "only the question carries the image"
    assert question["images"] == [image.data]
    [received] = ollama.images_received()[-1:]
    seen = Image.open(io.BytesIO(base64.b64decode(received[0])))
    assert seen.size == (768, 512) and seen.getpixel((10, 10)) == pytest.approx((200, 40, 40), abs=3)


def _box(name: str, g_per_kwh: float, vision: bool) -> BoxView:
    view = box_view(name, g_per_kwh, models=("gemma3-4b",))
    view.profile.models = [m.model_copy(update={"vision": vision}) for m in view.profile.models]
    return view


@pytest.mark.unit
def test_a_question_with_images_is_routed_only_to_boxes_where_the_model_sees():
    clean_blind, dirty_seeing = _box("clean", 20, vision=False), _box("dirty", 400, vision=True)
    assert route([clean_blind, dirty_seeing], "gemma3-4b", None, "greenest").box == "clean"
    assert route([clean_blind, dirty_seeing], "gemma3-4b", None, "greenest", vision=True).box == "dirty"
    with pytest.raises(RoutingRefused) as refused:
        route([clean_blind], "gemma3-4b", None, "greenest", vision=True)
    assert "no live box offers gemma3-4b with images" in str(refused.value)


@pytest.mark.unit
def test_the_footer_says_what_was_looked_at():
    from factories import make_result

    from joulebot.chat.footer import footer

    plain = make_result()
    assert "🖼" not in footer(plain)
    image = read_image("cat.png", png(768, 512), LIMITS)
    seen = plain.model_copy(update={"request": plain.request.model_copy(update={"images": [image, image]})})
    assert "🖼 2 images, 768×512, 768×512" in footer(seen).splitlines()


def test_a_vision_answer_says_what_reading_the_image_and_the_prompt_cost(ollama, settings):
    """Through the station and the real Ollama client, the stand-in taking its reported durations for
    real: the footer's image line carries the prefill's share of the answer's energy."""
    from joulebot.chat.footer import footer
    from joulebot.number_format import plus_minus, sig
    from joulebot.worker.station import Station

    station = Station(settings.model_copy(update={"ollama_host": ollama.url, "meters": "estimate"}))
    ollama.timed, ollama.prompt_eval_ns, ollama.eval_ns = True, 400_000_000, 300_000_000
    image = read_image("cat.png", png(768, 512), LIMITS)
    result = station.run(Request(platform="cli", user_id="u", model="llava", prompt="What colour?", images=[image]))
    phases = result.energy.phases
    assert phases.error is None and phases.prefill_j > 0 and phases.decode_j > 0
    cost = f"{sig(phases.prefill_j, 2)}{plus_minus(phases.prefill_uncertainty_j)} J"
    (line,) = [line for line in footer(result).splitlines() if line.startswith("🖼")]
    share = f"{phases.prefill_share * 100:.0f} %"
    assert line == f"🖼 1 image, 768×512 · reading the image and the prompt: {cost} ({share})"


def test_a_later_turn_that_read_images_says_the_cost_once_on_the_images_line():
    from factories import make_result

    from joulebot.chat.footer import footer
    from joulebot.metering.reading import Phases

    result = make_result(total_j=7.5)
    result.request.turn, result.prompt_tokens, result.context_images = 3, 1210, 2
    result.energy.phases = Phases(timing="t", split_s=2.0, prefill_j=3.1, prefill_uncertainty_j=0.42, decode_j=4.4)
    lines = footer(result).splitlines()
    assert "🖼 2 earlier images of this conversation · reading the images and the prompt: 3.1 ± 0.42 J (41 %)" in lines
    assert "🧵 turn 3 · 1,210 context tokens" in lines, "said once, on the images' line"
    result.request.images = [read_image("cat.png", png(768, 512), LIMITS)]
    assert "🖼 1 image, 768×512 + 2 earlier images of this conversation · reading the images" in footer(result)


def test_history_keeps_each_images_hash_size_and_dimensions_and_stats_keep_them_apart(history_url):
    from factories import make_result

    from joulebot.history import HistoryStore

    store = HistoryStore.open(history_url)
    image = read_image("cat.png", png(768, 512), LIMITS)
    text_only = make_result(total_j=40.0)
    looked = make_result(total_j=400.0)
    looked = looked.model_copy(
        update={"request": looked.request.model_copy(update={"images": [image]}).without_pixels()}
    )
    store.record(text_only)
    exchange_id = store.record(looked)
    (only,) = store.category_stats()
    assert only.answers == 1 and only.mean_total_j == pytest.approx(40.0), "never averaged with the image answer"
    row = store.get(exchange_id)
    assert row.images == [
        {
            "name": "cat.png",
            "media_type": "image/jpeg",
            "width": 768,
            "height": 512,
            "size_bytes": image.size_bytes,
            "sha256": image.sha256,
            "source_format": "PNG",
            "downscaled": False,
        }
    ]
    assert image.data[:40] not in str(row.result), "the image itself is not kept"
