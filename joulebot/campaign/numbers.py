"""Reading the final number of a model's answer: digits, fractions, percents, π, and numbers in words."""

from __future__ import annotations

import math
import re

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 10 * (i + 2) for i, w in enumerate(_TENS)}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = "|".join([*_WORD_VALUES, *_SCALES])
# "three hundred and ninety-one", "eighty six thousand four hundred"; "a" alone is not a number
_WORD_RUN = re.compile(rf"\b(?:{_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_WORD}))*\b", re.IGNORECASE)

_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_TOKEN = re.compile(
    rf"\\frac\{{\s*(?P<fn>{_NUMBER})\s*\}}\{{\s*(?P<fd>{_NUMBER})\s*\}}"  # LaTeX \frac{3}{4}
    rf"|(?P<num>{_NUMBER})(?:\s*/\s*(?P<den>{_NUMBER}))?"  # 391, 86,400, 0.75, 3/4
    r"(?:\s*(?P<pct>%|percent\b)|\s*(?P<pi>π|\\pi\b|pi\b))?",  # 36%, 25π
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
# "the answer is 17 * 23 = 391." → the sentence after it (a period ends it only before a space or the end)
_ANSWER_IS = re.compile(r"(?:answer|result)\W{0,4}(?:is\b|:|=)(.*?)(?:\.(?:\s|$)|\n|$)", re.IGNORECASE)


def words_to_digits(text: str) -> str:
    """'three hundred and ninety-one' → '391' (runs of English number words become digits)."""

    def convert(match: re.Match[str]) -> str:
        words = [w for w in re.split(r"[\s-]+", match.group(0).lower()) if w != "and"]
        total = current = 0
        for word in words:
            if word in _WORD_VALUES:
                current += _WORD_VALUES[word]
            elif word == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[word]
                current = 0
        return str(total + current)

    return _WORD_RUN.sub(convert, text)


def _value(match: re.Match[str]) -> list[float]:
    """The values a number token may mean: 36% is 36 or 0.36 (the checker accepts either reading)."""

    def parse(text: str) -> float:
        return float(text.replace(",", ""))

    if match.group("fn") is not None:
        denominator = parse(match.group("fd"))
        return [parse(match.group("fn")) / denominator] if denominator else []
    value = parse(match.group("num"))
    if match.group("den") is not None:
        denominator = parse(match.group("den"))
        if not denominator:
            return []
        value /= denominator
    if match.group("pi"):
        return [value * math.pi]
    if match.group("pct"):
        return [value, value / 100]
    return [value]


def numbers(text: str) -> list[list[float]]:
    """Every number of the text in order, each as the values it may mean."""
    found = [_value(m) for m in _TOKEN.finditer(words_to_digits(text))]
    return [v for v in found if v]


def final_number(text: str) -> list[float] | None:
    """The answer's final number: inside the last \\boxed{}, else after the last "answer is", else the last one."""
    text = text.replace("\u2212", "-").replace("×", "*")
    for source in (_BOXED.findall(text), [m.group(1) for m in _ANSWER_IS.finditer(text)]):
        for candidate in reversed(source):
            found = numbers(candidate)
            if found:
                return found[-1]
    found = numbers(text)
    return found[-1] if found else None
