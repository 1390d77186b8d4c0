"""Is an answer stuck in a loop? Asked by the runners while the answer grows, so a loop is cut
before it spends the rest of MAX_TOKENS.

A loop is the end of the text made of the same piece over and over, character for character:
"la Révéraire, la Révéraire, la Révéraire, …", or a sentence said again and again. It counts once
it is at least MIN_REPEATS copies long and covers at least MIN_SPAN_CHARS. Text that repeats a
little is left alone: a list's items differ, counting changes its numbers, a table's separator row
or a line printed three times is shorter than the span. What is cut: over MIN_SPAN_CHARS of text
repeated exactly, three times or more in a row (a long literal of identical rows would be too).
"""

from __future__ import annotations

MIN_REPEATS = 3
MIN_SPAN_CHARS = 120
MAX_UNIT_CHARS = 400  # a longer piece said three times would be over MAX_TOKENS anyway


def looping(text: str) -> bool:
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
