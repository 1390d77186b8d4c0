"""Is an answer stuck in a loop? Asked by the runners while the answer grows, so a loop is cut
before it spends the rest of MAX_TOKENS.

Two signs, either one enough:
- the end of the text is one piece over and over, character for character ("la Révéraire,
  la Révéraire, …", or a sentence said again and again), MIN_REPEATS copies or more covering
  MIN_SPAN_CHARS or more;
- the last WINDOW_WORDS words say almost nothing new: at most MAX_NEW_SHARE of their runs of
  GRAM_WORDS words differ ("La Lumière, La Lumière, / L'Allema, La Lumière, …", a loop whose
  copies vary a little, as a repeat penalty makes them).

Text that repeats a little is left alone: a list's items differ, counting changes its numbers,
a table's separator row or a line printed three times is shorter than the span, and an answer
that says the same sentence four times in other words still has most of its word runs new.
What is cut: over MIN_SPAN_CHARS of text repeated exactly three times or more in a row (a long
literal of identical rows would be too), or 64 words made of a few phrases.
"""

from __future__ import annotations

MIN_REPEATS = 3
MIN_SPAN_CHARS = 120
MAX_UNIT_CHARS = 400  # a longer piece said three times would be over MAX_TOKENS anyway
WINDOW_WORDS = 64
GRAM_WORDS = 4
MAX_NEW_SHARE = 0.3  # answers that did not loop: 59 % or more in 200 benchmark answers; loops: 28–48 %


def looping(text: str) -> bool:
    """Whether `text` ends in a loop (either sign above)."""
    return _periodic_end(text) or _few_new_phrases(text)


def _periodic_end(text: str) -> bool:
    """Whether `text` ends in MIN_REPEATS or more copies of one piece covering MIN_SPAN_CHARS or more."""
    end = len(text)
    for unit in range(1, min(MAX_UNIT_CHARS, end // MIN_REPEATS) + 1):
        need = max(MIN_SPAN_CHARS, MIN_REPEATS * unit)  # characters the periodic end must cover
        if need > end:
            break
        # the end is periodic with this unit as far back as text[i] == text[i - unit]
        i = end - 1
        stop = end - need + unit  # enough once every character from here on matches
        while i >= stop and text[i] == text[i - unit]:
            i -= 1
        if i < stop:
            return True
    return False


def _few_new_phrases(text: str) -> bool:
    """Whether at most MAX_NEW_SHARE of the word runs of the last WINDOW_WORDS words differ."""
    words = text.lower().rsplit(None, WINDOW_WORDS)[-WINDOW_WORDS:]
    if len(words) < WINDOW_WORDS:
        return False
    runs = len(words) - GRAM_WORDS + 1
    different = {tuple(words[i : i + GRAM_WORDS]) for i in range(runs)}
    return len(different) <= MAX_NEW_SHARE * runs
