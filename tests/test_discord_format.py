import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulebot.chat.discord_format import (
    CONTENT,
    DESCRIPTION,
    EMBED_TOTAL,
    EMBEDS_PER_MESSAGE,
    FOOTER,
    render,
    split_text,
)

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket

answers = st.lists(
    st.tuples(st.text(max_size=300), st.text(max_size=20_000), st.text(min_size=1, max_size=600)),
    min_size=1,
    max_size=2,
)


@given(answers, st.text(max_size=300))
def test_every_limit_holds_nothing_is_lost_and_each_footer_appears_once(items, closing):
    messages = render(items, closing)
    for message in messages:
        assert len(message.content) <= CONTENT
        assert len(message.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(e.size() for e in message.embeds) <= EMBED_TOTAL
        assert all(len(e.description) <= DESCRIPTION and len(e.footer) <= FOOTER for e in message.embeds)
    embeds = [e for m in messages for e in m.embeds]
    text = "".join(e.description for e in embeds)
    assert text == "".join(answer or "(empty answer)" for _, answer, _ in items)
    footers = [e.footer for e in embeds if e.footer]
    assert footers == [footer for _, _, footer in items]
    assert messages[-1].content == closing


@given(st.text(max_size=10_000), st.integers(min_value=50, max_value=4096))
def test_split_text_round_trips(text, limit):
    pieces = split_text(text, limit)
    assert "".join(pieces) == text and all(len(p) <= limit for p in pieces)


def test_paragraph_boundaries_are_preferred():
    text = "\n\n".join(["a" * 1500] * 5)
    pieces = split_text(text, DESCRIPTION)
    assert all(p.endswith("\n\n") for p in pieces[:-1])
