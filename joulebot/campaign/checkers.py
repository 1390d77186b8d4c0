"""One checker per category: is this answer right, given the prompt's reference?

A Verdict is correct (True), wrong (False) or unscored (None: no reference, or
nothing left to check). Checkers run on the front-end side after the answers
were measured, never in the worker and never inside a measured window.
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

from joulebot.campaign.numbers import final_number, words_to_digits
from joulebot.campaign.references import (
    CodeReference,
    MathReference,
    QuestionReference,
    Reference,
    SqlReference,
    TranslationReference,
)
from joulebot.campaign.sandbox import run_tests

# chrF (character 6-grams, β = 2, lowercased) an answer must reach against one of the accepted
# translations. Chosen on the shipped references (tests/test_checkers.py measures both sides):
# right translations worded differently from ours score 62–96 ("Good morning everybody" for
# "Good morning, everyone" is the lowest), while wrong ones — every other prompt's reference,
# and the source sentence left untranslated — score at most 53. Recall-weighted chrF does give
# a partial translation much credit ("Good morning" for "Buongiorno a tutti": 72); that
# counts as right here, as a reader would likely count it.
CHRF_THRESHOLD = 60.0
SQL_MAX_STEPS = 5_000_000  # SQLite virtual-machine steps before a query is called runaway


@dataclass(frozen=True)
class Verdict:
    correct: bool | None
    score: float | None  # 1/0, a share of tests passed, or the chrF
    note: str

    @classmethod
    def unscored(cls, why: str) -> Verdict:
        return cls(None, None, f"unscored: {why}")


def check(reference: Reference | None, answer: str) -> Verdict:
    if reference is None:
        return Verdict.unscored("no reference for this prompt")
    if not answer.strip():
        return Verdict(False, 0.0, "empty answer")
    match reference:
        case MathReference():
            return check_math(reference, answer)
        case SqlReference():
            return check_sql(reference, answer)
        case CodeReference():
            return check_code(reference, answer)
        case TranslationReference():
            return check_translation(reference, answer)
        case QuestionReference():
            return check_question(reference, answer)
    raise TypeError(type(reference).__name__)


# ── math ──────────────────────────────────────────────────────────────────────────────────────


def check_math(reference: MathReference, answer: str) -> Verdict:
    found = final_number(answer)
    if found is None:
        return Verdict(False, 0.0, "no number in the answer")
    for value in found:
        for expected in reference.answer:
            if math.isclose(value, expected, rel_tol=1e-9, abs_tol=reference.tolerance):
                return Verdict(True, 1.0, f"final number {value:g}")
    return Verdict(False, 0.0, f"final number {found[0]:g}, expected {reference.answer[0]:g}")


# ── sql ───────────────────────────────────────────────────────────────────────────────────────

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_SQL_START = re.compile(r"^\s*(?:select|with)\b", re.IGNORECASE)
_INLINE_SQL = re.compile(r"\b(?:SELECT|WITH)\b.*?(?:;|\n\s*\n|\Z)", re.DOTALL)


def fenced_blocks(answer: str, languages: set[str]) -> list[str]:
    """The fenced code blocks of a markdown answer in one of these languages ("" = no language given)."""
    return [body for lang, body in _FENCE.findall(answer) if lang.lower() in languages]


def sql_statements(answer: str) -> list[str]:
    """The statements the model wrote: from ```sql blocks, else any fenced block, else SELECT … in the prose."""
    sources = fenced_blocks(answer, {"sql", "sqlite", "postgresql", "postgres", "mysql"})
    sources = sources or fenced_blocks(answer, {""}) or [m.group(0) for m in _INLINE_SQL.finditer(answer)]
    statements = []
    for source in sources:
        pending = ""
        for line in source.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                statements.append(pending.strip())
                pending = ""
        if pending.strip():
            statements.append(pending.strip())
    return [s for s in statements if _SQL_START.match(_strip_comments(s))]


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.DOTALL)


@cache
def _schema() -> str:
    return (resources.files("joulebot.config") / "data" / "references" / "shop.sql").read_text(encoding="utf-8")


_READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, getattr(sqlite3, "SQLITE_RECURSIVE", 33)}


def run_query(sql: str) -> list[tuple]:
    """The rows of a query on a fresh in-memory copy of the shipped database, read-only and bounded."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_schema())
        db.create_function("concat", -1, lambda *parts: "".join("" if p is None else str(p) for p in parts))
        db.execute("PRAGMA query_only = ON")
        db.set_authorizer(lambda action, *_: sqlite3.SQLITE_OK if action in _READS else sqlite3.SQLITE_DENY)
        steps = iter(range(SQL_MAX_STEPS // 1000))
        db.set_progress_handler(lambda: next(steps, None) is None, 1000)  # non-zero return interrupts
        return db.execute(sql).fetchmany(10_000)
    finally:
        db.close()


def _cell(value: object) -> object:
    if isinstance(value, bool | int | float):
        return round(float(value), 2) + 0.0  # 10 and 10.0 agree; -0.0 is 0.0
    return value.strip() if isinstance(value, str) else value


def _key(value: object) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def rows_match(got: list[tuple], want: list[tuple], ordered: bool, fewer_columns_ok: bool = False) -> bool:
    """Same rows (in order when asked); the answer may have more columns than the reference.

    The model cannot know which columns the reference selects: its result matches when
    the reference's columns are a projection of it, values compared after rounding to 2
    decimals. Where the reference selects whole rows (`SELECT *`), the answer may also
    select fewer columns (a projection the other way), as long as the rows are the same.
    """
    if len(got) != len(want) or not got:
        return not got and not want
    got = [tuple(map(_cell, r)) for r in got]
    want = [tuple(map(_cell, r)) for r in want]
    if len(got[0]) < len(want[0]) and not fewer_columns_ok:
        return False
    narrow, wide = (got, want) if len(got[0]) < len(want[0]) else (want, got)

    def column(rows: list[tuple], i: int) -> Counter:
        return Counter(_key(r[i]) for r in rows)

    candidates = [
        [j for j in range(len(wide[0])) if column(wide, j) == column(narrow, i)] for i in range(len(narrow[0]))
    ]
    for choice in itertools.islice(itertools.product(*candidates), 2000):
        if len(set(choice)) < len(choice):
            continue
        projected = [tuple(r[j] for j in choice) for r in wide]
        if ordered and projected == narrow:
            return True
        if not ordered and Counter(map(_key, projected)) == Counter(map(_key, narrow)):
            return True
    return False


_WHOLE_ROWS = re.compile(r"^\s*(?:WITH\b.*\))?\s*SELECT\s+(?:\w+\.)?\*", re.IGNORECASE | re.DOTALL)


def check_sql(reference: SqlReference, answer: str) -> Verdict:
    statements = sql_statements(answer)
    if not statements:
        return Verdict(False, 0.0, "no SELECT query in the answer")
    errors = []
    for statement in statements:  # the first one that runs is the answer
        try:
            got = run_query(statement)
        except sqlite3.Error as exc:
            errors.append(str(exc)[:80])
            continue
        for query in reference.queries:
            if rows_match(got, run_query(query), reference.ordered, bool(_WHOLE_ROWS.match(query))):
                return Verdict(True, 1.0, f"{len(got)} rows as expected")
        return Verdict(False, 0.0, f"{len(got)} rows, not the expected ones")
    return Verdict(False, 0.0, f"the query does not run on the shipped SQLite database: {errors[0]}")


# ── code ──────────────────────────────────────────────────────────────────────────────────────

_CODE_START = re.compile(r"^(?:def |class |import |from |@|async def )", re.MULTILINE)


def python_blocks(answer: str) -> list[str]:
    """The Python the model wrote: fenced python (or unlabelled) blocks, else the code-looking tail of the text."""
    blocks = fenced_blocks(answer, {"python", "py", "python3", ""})
    if blocks:
        return blocks
    start = _CODE_START.search(answer)
    if start is None:
        return [answer]
    lines = answer[start.start() :].splitlines()
    while lines:  # trailing prose after unfenced code: drop lines until it compiles
        try:
            compile("\n".join(lines), "<answer>", "exec")
            break
        except SyntaxError:
            lines.pop()
    return ["\n".join(lines)] if lines else [answer]


def check_code(reference: CodeReference, answer: str) -> Verdict:
    outcome = run_tests(python_blocks(answer), reference.name, reference.kind, reference.tests)
    correct = outcome.passed == outcome.total
    return Verdict(correct, outcome.passed / outcome.total, outcome.note)


# ── translation ───────────────────────────────────────────────────────────────────────────────

_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|«\s*([^»\n]+?)\s*»|„([^“"\n]+)[“"]|「([^」\n]+)」|\*\*([^*\n]+)\*\*')


def translation_candidates(answer: str) -> list[str]:
    """The parts of an answer that may be the translation: quotes, bold, lines, text after a colon."""
    found = [answer]
    for line in answer.splitlines():
        line = line.strip().strip("*-•> ").strip()
        if line:
            found.append(line)
            if ":" in line:
                found.append(line.rsplit(":", 1)[1].strip())
    found += [next(g for g in m.groups() if g) for m in _QUOTED.finditer(answer)]
    return [c.strip(" \"'“”«»") for c in found if c.strip(" \"'“”«»")]


@cache
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF(lowercase=True)


def chrf(hypothesis: str, references: list[str]) -> float:
    scorer = _chrf()
    return max(scorer.sentence_score(hypothesis, [r]).score for r in references)


def check_translation(reference: TranslationReference, answer: str) -> Verdict:
    best = max(chrf(c, reference.references) for c in translation_candidates(answer))
    correct = best >= CHRF_THRESHOLD
    return Verdict(correct, round(best, 1), f"chrF {best:.1f} {'≥' if correct else '<'} {CHRF_THRESHOLD:g}")


# ── questions ─────────────────────────────────────────────────────────────────────────────────


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).split())


def _variant_pattern(variant: str) -> re.Pattern[str]:
    prefix = variant.endswith("*")
    body = re.escape(_fold(variant.rstrip("*"))).replace(r"\ ", r"[\s-]+")
    return re.compile(rf"(?<!\w){body}" + ("" if prefix else r"(?!\w)"))


def check_question(reference: QuestionReference, answer: str) -> Verdict:
    texts = (_fold(answer), _fold(words_to_digits(answer)))
    missing = [
        group for group in reference.accept if not any(_variant_pattern(v).search(t) for v in group for t in texts)
    ]
    if missing:
        return Verdict(False, 0.0, f"does not say {missing[0][0].rstrip('*')!r} (or a variant)")
    return Verdict(True, 1.0, "names " + ", ".join(g[0].rstrip("*") for g in reference.accept))
