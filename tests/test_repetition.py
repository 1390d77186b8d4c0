"""The loop detector the runners ask while an answer grows (joulebot/models/repetition.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulebot.models.repetition import MIN_SPAN_CHARS, looping

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket

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


# the same model with its shipped settings, told to repeat "la France, la France, la France," forever:
# the repeat penalty varies the copies, so no piece repeats exactly for long
VARIED_LOOP = (
    "La France, la France, la France,\n"
    "L'Allema, La Lumière, La Lumière,\n"
    "Le Coeur de la France, Le Coeur de la Lumière,\n"
    "La Lumière, La Lumière,\n"
    "La Lumière, La Lumière,\n"
    "La Lumière, La Lumière,\n"
    "L'Allema, La Lumière, La Lumière,\n"
    "Le Coeur de la France, Le Coeur de la Lumière,\n"
    "Le Coeur de la Lumière, Le Coeur de la Lumière,\n"
    "L'Allema, La Lumière, La Lumière,\n"
    "La Lumière, La Lumière,\n"
    "L'Allema, La Lumière, La Lumière,\n"
    "L'Allema, La Lumière, La Lumière,\n"
    "Le Coeur de la France, Le Coût de la Lumière,\n"
    "Le Coût de la Lumière, Le Coût de la Lumière,\n"
    "La Lumière, La Lumière,\n"
    "L'Allema, La Lumière, La Lumi"
)
# the same model with llama.cpp's default settings, asked "Who wrote Pride and Prejudice?": the same
# sentence four times in other words, and scored right; not a loop to cut
SAYS_IT_AGAIN = (
    "The novel Pride and Prejudice by Elizabeth Bennet is often attributed to Jane Austen's writing. However, the"
    " novel was actually written by the author of the same name, but in 1813, Jane was the author of the novel, and"
    " the title is actually Pride and Prejudice.\n\nThe novel was written by the English writer and author of the"
    " same name, but in 1813, Jane was the author of the novel, and the title is actually Pride and Prejudice.\n\n"
    "The original novel was written by the English author of the same name, but in 1813, Jane was the author of the"
    " novel, and the title is actually Pride and Prejudice.\n\nSo, the answer is yes, the novel Pride and Prejudice"
    " was written by the English author of the same name, but in 1813, Jane was the author of the novel, and the"
    " title is actually Pride and Prejudice."
)


def caught_at(text: str) -> int | None:
    """Where a runner, asking at every step as the answer grows, would stop it (None: never)."""
    return next((end for end in range(len(text) + 1) if looping(text[:end])), None)


def test_a_phrase_looping_is_caught_even_cut_mid_word():
    assert looping(FRANCE_LOOP)


def test_a_sentence_said_three_times_is_caught():
    assert looping(SENTENCE_LOOP)


def test_the_loop_is_caught_as_soon_as_it_covers_the_span_not_earlier():
    assert caught_at("The answer:\n" + "la France, " * 20) == len("The answer:\n") + MIN_SPAN_CHARS


def test_a_loop_whose_copies_vary_is_caught_by_its_few_new_phrases():
    where = caught_at(VARIED_LOOP)
    assert where is not None and 300 < where < len(VARIED_LOOP), "once 64 words of it are there"


def test_an_answer_that_says_one_thing_several_times_is_not_a_loop():
    assert caught_at(SAYS_IT_AGAIN) is None


def test_a_list_whose_items_differ_is_not_cut():
    fruit = ["apples", "bananas", "cherries", "dates", "elderberries", "figs", "grapes", "honeydew melons"]
    listed = "Here are some fruits:\n" + "".join(f"{i}. {name} are a fruit.\n" for i, name in enumerate(fruit, 1))
    assert not looping(listed)


def test_counting_is_not_a_loop():
    assert caught_at(", ".join(str(n) for n in range(1, 200))) is None


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
