import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waiting import minute_start

from joulebot.chat.asking import InputError, build_request
from joulebot.config import Settings
from joulebot.models import build_catalog

SETTINGS = Settings(_env_file=None, max_prompt_chars=100)
CATALOG = build_catalog(9.0)


@pytest.mark.unit
def test_builds_a_request_with_defaults():
    request = build_request(SETTINGS, CATALOG, platform="cli", user_id="alice", prompt="  What is RAPL?  ")
    assert request.prompt == "What is RAPL?"
    assert request.model == "smollm2-135m"
    assert request.units == "joules"
    assert request.max_tokens == SETTINGS.max_tokens
    assert len(request.id) == 32


@pytest.mark.unit
def test_model_aliases_resolve_to_the_catalog_name():
    request = build_request(SETTINGS, CATALOG, platform="cli", user_id="a", prompt="hi", model="SmolLM2")
    assert request.model == "smollm2-135m"


@pytest.mark.parametrize(
    ("prompt", "model", "message"),
    [
        ("", None, "the prompt is empty"),
        (" \n\t\x00 ", None, "the prompt is empty"),
        ("x" * 101, None, "the prompt has 101 characters; the maximum is 100"),
        ("hi", "gpt-17", "unknown model 'gpt-17'; available: smollm2-135m"),
        ("hi", "llama3", "llama3 is not available here: OLLAMA_HOST is not set"),
    ],
)
@pytest.mark.unit
def test_bad_input_is_refused_with_a_clear_message(prompt, model, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        build_request(SETTINGS, CATALOG, platform="cli", user_id="a", prompt=prompt, model=model)


@pytest.mark.unit
@given(st.text(max_size=300))
def test_any_text_is_either_a_request_or_a_clear_refusal(text):
    try:
        request = build_request(SETTINGS, CATALOG, platform="cli", user_id="a", prompt=text)
    except InputError as exc:
        assert str(exc).startswith("the prompt")
    else:
        assert 0 < len(request.prompt) <= 100
        assert "\x00" not in request.prompt


def test_only_questions_taken_count_against_the_rate_limit(tmp_path, system_redis_url):
    from testenv import make_settings

    from joulebot.chat.service import ChatService

    chat = ChatService(make_settings(tmp_path / "data", redis_url=system_redis_url, max_prompts_per_minute=2), "rl")
    user = f"u-{uuid.uuid4().hex[:8]}"  # the counters live on in the shared Redis for a while after a run
    minute_start()
    for bad in ("", "x" * 5000, " \u200b "):
        with pytest.raises(InputError, match="the prompt"):
            chat.asking.prepare(user, user, bad, [None])
    assert chat.asking.prepare(user, user, "first?", [None]) and chat.asking.prepare(user, user, "second?", [None])
    with pytest.raises(InputError, match="more than 2 prompts in a minute"):
        chat.asking.prepare(user, user, "third?", [None])
    with pytest.raises(InputError, match="unknown model"):  # refused for what it is, not for the limit
        chat.asking.prepare(user, user, "fourth?", ["gpt-17"])
