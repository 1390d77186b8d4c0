import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulebot.chat.asking import InputError, build_request
from joulebot.config import Settings
from joulebot.models import build_catalog

SETTINGS = Settings(_env_file=None, max_prompt_chars=100)
CATALOG = build_catalog(9.0)


def test_builds_a_request_with_defaults():
    request = build_request(SETTINGS, CATALOG, platform="cli", user_id="alice", prompt="  What is RAPL?  ")
    assert request.prompt == "What is RAPL?"
    assert request.model == "smollm2-135m"
    assert request.units == "joules"
    assert request.max_tokens == SETTINGS.max_tokens
    assert len(request.id) == 32


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
def test_bad_input_is_refused_with_a_clear_message(prompt, model, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        build_request(SETTINGS, CATALOG, platform="cli", user_id="a", prompt=prompt, model=model)


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
    for bad in ("", "x" * 5000, " \u200b "):
        with pytest.raises(InputError, match="the prompt"):
            chat.asking.prepare("u1", "u1", bad, [None])
    assert chat.asking.prepare("u1", "u1", "first?", [None]) and chat.asking.prepare("u1", "u1", "second?", [None])
    with pytest.raises(InputError, match="more than 2 prompts in a minute"):
        chat.asking.prepare("u1", "u1", "third?", [None])
    with pytest.raises(InputError, match="unknown model"):  # refused for what it is, not for the limit
        chat.asking.prepare("u1", "u1", "fourth?", ["gpt-17"])
