"""One checker per category: is this answer right, given the prompt's reference?

A Verdict is correct (True), wrong (False) or unscored (None: no reference, or
nothing left to check). Checkers run on the front-end side after the answers
were measured, never in the worker and never inside a measured window.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from joulebot.campaign.numbers import final_number, words_to_digits
from joulebot.campaign.probes import judge, probed, sandbox_name
from joulebot.campaign.references import (
    CodeReference,
    MathReference,
    QuestionReference,
    Reference,
    SqlReference,
    TranslationReference,
)
from joulebot.campaign.sandbox import SandboxUnavailable, run_sandboxed

# chrF (character 6-grams, β = 2, lowercased) an answer must reach against one of the accepted
# translations. Chosen on the shipped references (tests/test_checkers.py measures both sides):
# right translations worded differently from ours score 62–96 ("Good morning everybody" for
# "Good morning, everyone" is the lowest), while wrong ones — every other prompt's reference,
# and the source sentence left untranslated — score at most 53. Recall-weighted chrF does give
# a partial translation much credit ("Good morning" for "Buongiorno a tutti": 72); that
# counts as right here, as a reader would likely count it.
CHRF_THRESHOLD = 60.0
SQL_MAX_STEPS = 5_000_000  # SQLite virtual-machine steps before a query is called runaway
SQL_MAX_VALUE = 1 << 20  # bytes in one string or blob: the shop's are tens
SQL_MAX_RESULT = 16 << 20  # bytes of text and blobs in one result
SQL_MAX_ROWS = 10_000

log = logging.getLogger(__name__)


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
    try:
        return _checker(reference)(reference, answer)
    except Exception as exc:  # the checker's own failure says nothing about the answer, and ends no run
        log.warning("the %s checker failed: %s", type(reference).__name__, type(exc).__name__)
        return Verdict.unscored(f"the checker failed ({type(exc).__name__}: {str(exc)[:80]})")


def _checker(reference: Reference) -> Callable[[Any, str], Verdict]:
    match reference:
        case MathReference():
            return check_math
        case SqlReference():
            return check_sql
        case CodeReference():
            return check_code
        case TranslationReference():
            return check_translation
        case QuestionReference():
            return check_question
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
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQL_MAX_VALUE)
        steps = iter(range(SQL_MAX_STEPS // 1000))
        db.set_progress_handler(lambda: next(steps, None) is None, 1000)  # non-zero return interrupts
        rows, size = [], 0
        for row in itertools.islice(db.execute(sql), SQL_MAX_ROWS):
            size += sum(len(v) for v in row if isinstance(v, str | bytes))
            if size > SQL_MAX_RESULT:
                raise sqlite3.DataError(f"result larger than {SQL_MAX_RESULT >> 20} MiB")
            rows.append(row)
        return rows
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


@dataclass(frozen=True)
class CodeBlock:
    code: str
    trim: bool = False  # unfenced code: trailing prose is cut (in the sandbox) until it compiles


def python_blocks(answer: str) -> list[CodeBlock]:
    """The Python the model wrote: fenced python (or unlabelled) blocks, else the code-looking tail of the text.

    Nothing is compiled here: the answer's text is parsed only inside the sandbox.
    """
    blocks = fenced_blocks(answer, {"python", "py", "python3", ""})
    if blocks:
        return [CodeBlock(b) for b in blocks]
    start = _CODE_START.search(answer)
    return [CodeBlock(answer)] if start is None else [CodeBlock(answer[start.start() :], trim=True)]


def check_code(reference: CodeReference, answer: str) -> Verdict:
    """Run the answer's code in the sandbox and judge, here, the values it computed for each test."""
    tests = [probed(t) for t in reference.tests]
    spec = {
        "blocks": [{"code": b.code, "trim": b.trim} for b in python_blocks(answer)],
        "name": reference.name,
        "kind": reference.kind,
        "tests": [t.source for t in tests],
    }
    try:
        run = run_sandboxed(spec)
    except SandboxUnavailable as exc:
        return Verdict.unscored(f"no sandbox here ({exc})")
    if any(r.get("missing") == reference.name for r in run.records) and not run.stopped:
        problems = [_block_problem(r) for r in run.records if "block" in r]
        return Verdict(False, 0.0, "; ".join([f"no {reference.kind} {reference.name} found", *problems[:2]]))
    outcomes = [judge(t, [r for r in run.records if r.get("test") == i]) for i, t in enumerate(tests)]
    passed = sum(o.passed for o in outcomes)
    note = f"{passed}/{len(tests)} tests pass"
    failed = next(((t, o) for t, o in zip(tests, outcomes, strict=True) if not o.passed), None)
    if failed:
        note += f"; first failure: {failed[0].first_line}: {run.stopped or failed[1].why}"
    return Verdict(passed == len(tests), passed / len(tests), note[:200])


def _block_problem(record: dict) -> str:
    if "compile" in record:
        return f"a block does not compile ({sandbox_name(record['compile'])})"
    return f"a block raised {sandbox_name(record.get('raised'))}"


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
