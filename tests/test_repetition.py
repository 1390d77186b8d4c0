"""The loop detector the runners ask while an answer grows (joulebot/models/repetition.py)."""

from hypothesis import given
from hypothesis import strategies as st

from joulebot.models.repetition import MIN_SPAN_CHARS, looping

# SmolLM2-135M with llama.cpp's default sampling, asked "What is the capital of France?"
FRANCE_LOOP = (
    "L'Étoile, la Marseillaise, la Cité, la Bretagne, la République, la Réunion, la Réunion des Réserves, "
    "la Réunion des Réserves, la Réunion des Rêveres, la Révéra, la Révéraire, la Révéra, "
    + "la Révéraire, " * 10
    + "la Rév"
)
# the same model, on "What is the square root of 144?": a sentence said again and again
SENTENCE_LOOP = (
    "To find the square root of 144, we can use the Babylonian method.\n\n"
    + (
        "The Babylonian method is not a reliable method for finding square roots of large numbers because it "
        "involves a complex calculation involving multiple steps.\n\n"
    )
    * 3
)


def test_a_phrase_looping_is_caught_even_cut_mid_word():
    assert looping(FRANCE_LOOP)


def test_a_sentence_said_three_times_is_caught():
    assert looping(SENTENCE_LOOP)


def test_the_loop_is_caught_as_soon_as_it_covers_the_span_not_earlier():
    text = "The answer:\n" + "la France, " * 20
    first = next(n for n in range(len(text) + 1) if looping(text[:n]))
    assert first == len("The answer:\n") + MIN_SPAN_CHARS
    assert not looping(text[: first - 1])


def test_a_list_whose_items_differ_is_not_cut():
    fruit = ["apples", "bananas", "cherries", "dates", "elderberries", "figs", "grapes", "honeydew melons"]
    listed = "Here are some fruits:\n" + "".join(f"{i}. {name} are a fruit.\n" for i, name in enumerate(fruit, 1))
    assert not looping(listed)


def test_counting_is_not_a_loop():
    assert not looping(", ".join(str(n) for n in range(1, 200)))


def test_text_that_repeats_a_little_is_not_cut():
    table = "| model | J | CO2e | SCI |\n|---|---|---|---|\n| smollm2 | 5.4 | 0.57 | 0.90 |\n"
    code = '```python\nfor _ in range(3):\n    print("hello")\n```\nprints:\nhello\nhello\nhello\n'
    song = "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, life is but a dream."
    laugh = "Ha ha ha ha! That is a good one."
    assert not any(looping(text) for text in (table, code, song, laugh))


def test_short_texts_are_never_loops():
    assert not looping("")
    assert not looping("no " * (MIN_SPAN_CHARS // 3 - 1))


@given(st.text(max_size=200), st.text(min_size=1, max_size=60))
def test_any_piece_repeated_to_the_span_is_caught_whatever_came_before(before, piece):
    copies = max(3, -(-MIN_SPAN_CHARS // len(piece)))  # enough copies to cover the span
    assert looping(before + piece * copies)
