"""Which kind of task a prompt is: code, math, questions, sql or translation.

A small, explainable classifier: each category has weighted patterns; the
prompt goes to the category with the highest score, ties to the more specific
one, and to "questions" when nothing matches. Its accuracy on the shipped
prompt sets is measured by the tests and reported by `joulebot stats`.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

CATEGORIES = ("code", "math", "questions", "sql", "translation")
_LANGUAGES = (
    "english|french|german|spanish|italian|portuguese|dutch|polish|russian|japanese|chinese|korean|arabic|"
    "turkish|greek|swedish|norwegian|danish|finnish|czech|hindi|ukrainian|hungarian|romanian"
)
# (pattern, weight) per category, most specific category first (ties go to the earlier one).
RULES: dict[str, list[tuple[str, int]]] = {
    "translation": [
        (r"\btranslat\w*", 3),
        (rf"\b(?:into|in|to) (?:{_LANGUAGES})\b", 2),
        (r"\bhow do you say\b", 3),
    ],
    "sql": [
        (r"\bsql\b|\bpostgres\w*|\bmysql\b|\bsqlite\b", 3),
        (r"\b(?:select|insert|update|delete|join|group by|having|where|distinct|index|view|cte)\b", 1),
        (r"\b(?:table|tables|column|query|queries|database|primary key|foreign key|normali[sz]ation|rows?)\b", 1),
    ],
    "code": [
        (r"\b(?:python|javascript|typescript|java|kotlin|swift|rust|go|c\+\+|c|php|bash|shell|react|docker\w*)\b", 2),
        (
            r"\b(?:function|class|script|program|code|implement|regex|regular expression|compile|debug|"
            r"refactor|decorator|closure|generator|async|array|loop|list comprehension|unit test|pytest|"
            r"virtual environment|exception|algorithm|stack|queue|linked list|sort)\b",
            1,
        ),
        (r"\bdef |\(\)|\bprint\(|==|=>|\bfor \w+ in\b", 2),
    ],
    "math": [
        (r"\d\s*[-+*/^×÷]\s*\d|\d+\s*%|\bpercent\b", 2),
        (
            r"\b(?:solve|calculate|compute|equation|derivative|integral|limit|probability|factorial|prime|"
            r"square root|cube root|sum|mean|median|average|standard deviation|fraction|divisible|"
            r"multiply|divided|area|volume|perimeter|hypotenuse|slope|log|sequence|interest|"
            r"common multiple|common divisor|binomial|angles?|pi)\b",
            1,
        ),
        (r"\bwhat is \d|\bhow many ways\b", 2),
    ],
}


@cache
def _compiled() -> dict[str, list[tuple[re.Pattern[str], int]]]:
    """Compiled on first use: a front end that never classifies (`joulebot ask`) never pays for it."""
    return {c: [(re.compile(p, re.IGNORECASE), w) for p, w in rules] for c, rules in RULES.items()}


def scores(prompt: str) -> dict[str, int]:
    return {c: sum(w * len(p.findall(prompt)) for p, w in rules) for c, rules in _compiled().items()}


def classify(prompt: str) -> str:
    found = scores(prompt)
    best = max(found.values())
    if best == 0:
        return "questions"
    return next(c for c in RULES if found[c] == best)


@cache
def prompt_set(category: str) -> tuple[str, ...]:
    """The shipped prompts of a category (config/data/prompts/<category>.txt)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    text = (resources.files("joulebot.config") / "data" / "prompts" / f"{category}.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def accuracy() -> tuple[float, dict[str, float]]:
    """Share of the shipped prompts classified as their own category: overall and per category."""
    per = {c: sum(classify(p) == c for p in prompt_set(c)) / len(prompt_set(c)) for c in CATEGORIES}
    total = sum(len(prompt_set(c)) for c in CATEGORIES)
    return sum(per[c] * len(prompt_set(c)) for c in CATEGORIES) / total, per
