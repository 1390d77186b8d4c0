from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joulebot.chat.telegram_format import LIMIT, partial_pieces, split_html, to_html, utf16_len, visible_text

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


class Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        self.ok = self.ok and bool(self.stack) and self.stack.pop() == tag


def balanced(markup: str) -> bool:
    parser = Balance()
    parser.feed(markup)
    parser.close()
    return parser.ok and not parser.stack


def test_escaping_and_code_blocks():
    text = "Use <b> & 'x'\n```python\nif a < b and c > d:\n    print('&')\n```\nor `a<b`."
    assert to_html(text) == (
        "Use &lt;b&gt; &amp; 'x'\n"
        "<pre><code class=\"language-python\">if a &lt; b and c &gt; d:\n    print('&amp;')</code></pre>"
        "\nor <code>a&lt;b</code>."
    )


def test_long_answer_splits_on_paragraphs():
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
    pieces = split_html(to_html("\n\n".join(paragraphs)))
    assert len(pieces) > 1 and all(len(p) <= LIMIT for p in pieces)
    assert all(p.rstrip().endswith("word") for p in pieces[:-1]), "cut after a paragraph or line"
    assert "".join(visible_text(p) for p in pieces) == "\n\n".join(paragraphs)


def test_a_huge_code_block_is_closed_and_reopened():
    code = "\n".join(f"line_{i} = {i} < {i + 1}" for i in range(900))
    pieces = split_html(to_html(f"Here:\n```py\n{code}\n```\nDone."))
    assert len(pieces) >= 3
    assert all(balanced(p) and len(p) <= LIMIT for p in pieces)
    assert pieces[1].startswith('<pre><code class="language-py">')
    assert "".join(visible_text(p) for p in pieces) == f"Here:\n{code}\nDone."


markdownish = st.lists(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(["```", "```js\n", "`", "<", ">", "&", "&amp;", "\n\n", "\n", "🙂" * 40, "𝔘𝔫𝔦"]),
    ),
    max_size=60,
)


def test_emoji_count_twice_as_telegram_counts_them():
    """Telegram's 4096 is in UTF-16 code units: a message of 3,000 emoji is 6,000 long and refused."""
    answer = "🙂" * 3000 + " done"
    pieces = split_html(to_html(answer))
    assert len(pieces) == 2 and all(utf16_len(visible_text(p)) <= LIMIT for p in pieces)
    assert "".join(visible_text(p) for p in pieces) == answer
    growing = partial_pieces("🙂" * 2500, "✍️ generating…")
    assert all(utf16_len(visible_text(p)) <= LIMIT for p in growing)


@settings(max_examples=300, deadline=None)
@given(markdownish, st.integers(min_value=200, max_value=LIMIT))
def test_any_output_splits_into_valid_pieces_that_keep_every_character(parts, limit):
    text = "".join(parts)
    markup = to_html(text)
    pieces = split_html(markup, limit)
    assert all(utf16_len(p) <= limit for p in pieces)
    assert all(balanced(p) for p in pieces)
    assert "".join(visible_text(p) for p in pieces) == visible_text(markup)


@given(st.text(alphabet=st.characters(blacklist_characters="`"), max_size=3000))
def test_without_code_marks_the_visible_text_is_exactly_the_answer(text):
    assert "".join(visible_text(p) for p in split_html(to_html(text), 500)) == text


@settings(max_examples=200, deadline=None)
@given(markdownish, st.integers(min_value=1, max_value=18_000), st.data())
def test_every_streamed_message_is_valid_and_no_word_is_lost_or_shown_twice(parts, length, data):
    """`partial_pieces` of any prefix of any answer: each message fits and parses, the words of the full
    ones and the growing one read as the start of the answer so far, and the status line ends the last."""
    text = ("".join(parts) * (1 + length // max(1, len("".join(parts)))))[:length]
    cut = data.draw(st.integers(min_value=1, max_value=max(1, len(text))))
    pieces = partial_pieces(text[:cut], "✍️ generating…")
    assert all(len(p) <= LIMIT and balanced(p) for p in pieces)
    assert pieces[-1].endswith("\n\n✍️ generating…") and not any("✍️" in p for p in pieces[:-1])
    words = "".join(visible_text(p) for p in pieces[:-1])
    growing = visible_text(pieces[-1]).removesuffix("\n\n✍️ generating…").removesuffix("\n…")
    assert visible_text(to_html(text[:cut])).startswith(words + growing)
