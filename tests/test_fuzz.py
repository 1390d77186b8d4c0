"""Hostile input through the chat's asking and the reply renderers: a clear refusal or a valid reply, never a crash."""

from __future__ import annotations

import pytest
from factories import make_result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testenv import make_settings

from joulebot.chat.asking import InputError
from joulebot.chat.discord_bot import render_reply
from joulebot.chat.reply import make_reply
from joulebot.chat.service import ChatService
from joulebot.chat.telegram_format import split_html, to_html, visible_text

HOSTILE = st.one_of(
    st.text(max_size=500),
    st.text(alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zl", "Zp", "So")), max_size=200),
    st.sampled_from(
        [
            "<b>bold</b>",
            "<script>alert(1)</script>",
            "*_`[x](y)",
            "@everyone",
            "\x00\x00",
            "```",
            "/compare",
            "&amp;&lt;",
            "\u202e\u202d",
            "x" * 5000,
            "🤖" * 3000,
        ]
    ),
)


@pytest.fixture
def chat(tmp_path, system_redis_url):
    settings = make_settings(tmp_path / "data", redis_url=system_redis_url, max_prompts_per_minute=10**6)
    return ChatService(settings, "fuzz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=HOSTILE, model=st.one_of(st.none(), HOSTILE))
def test_any_message_is_a_request_or_a_clear_refusal(chat, prompt, model):
    try:
        requests = chat.asking.prepare("fuzzer", "1", prompt, [model])
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip() and "Traceback" not in message
    else:
        assert len(requests) == 1 and requests[0].prompt and len(requests[0].prompt) <= chat.settings.max_prompt_chars


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(answer=HOSTILE)
def test_any_model_output_renders_for_both_platforms(answer):
    reply = make_reply([make_result(answer=answer), make_result(answer=answer[::-1])], "joules")
    pieces = split_html("\n\n".join(to_html(t) if m else t for t, m in reply.parts()))
    assert all(len(p) <= 4096 for p in pieces)
    assert "<script>" not in "".join(pieces)  # model output is escaped, never live markup
    assert visible_text("".join(pieces))
    messages = render_reply(reply)
    assert sum(1 for m in messages for e in m.embeds if e.footer) == 2
