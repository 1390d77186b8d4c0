"""The benchmark's references and checkers: every shipped prompt is checkable, and each checker
tells right from wrong and from malformed answers."""

from __future__ import annotations

import json
import re
import time

import pytest

from joulebot.campaign.checkers import (
    CHRF_THRESHOLD,
    check,
    check_code,
    check_math,
    check_question,
    check_sql,
    check_translation,
    chrf,
    run_query,
)
from joulebot.campaign.numbers import final_number, words_to_digits
from joulebot.campaign.references import (
    CodeReference,
    MathReference,
    QuestionReference,
    ReferenceError,
    SqlReference,
    TranslationReference,
    load_file,
    load_references,
)
from joulebot.categories import CATEGORIES, prompt_set

REFERENCES = load_references()
STANDIN_ANSWER = "Paris is the capital of France."  # tests/standins/ollama.py OllamaStandIn's fixed answer


def ref(category: str, prompt: str):
    return REFERENCES[category][prompt]


# ── the shipped references ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_shipped_prompt_has_a_reference_that_passes_its_own_checker(request, category):
    if category == "code":
        request.getfixturevalue("bwrap_here")
    references = REFERENCES[category]
    assert [p for p in prompt_set(category) if p not in references] == []
    assert set(references) == set(prompt_set(category)), "no reference for a prompt that is not shipped"
    failing = []
    for prompt in prompt_set(category):
        verdict = check(references[prompt], references[prompt].example_answer())
        if verdict.correct is not True:
            failing.append((prompt, verdict.note))
    assert failing == []


@pytest.mark.unit
def test_every_sql_reference_query_returns_rows():
    for reference in REFERENCES["sql"].values():
        for query in reference.queries:  # an empty result would make "no rows" a right answer
            assert run_query(query), query


@pytest.mark.unit
def test_the_ollama_standin_answer_is_wrong_for_every_math_prompt():
    assert all(check(r, STANDIN_ANSWER).correct is False for r in REFERENCES["math"].values())


# ── math ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("17 times 23 is three hundred and ninety-one.", 391),
        ("There are eighty-six thousand four hundred seconds in a day.", 86400),
        ("The answer is 17 * 23 = 391. Check: 391 / 23 = 17", 391),
        (r"So $\boxed{\frac{3}{4}}$ and that is simplified.", 0.75),
        ("**Answer:** 86,400 seconds", 86400),
        ("The area is 25π square units.", 25 * 3.141592653589793),
        ("x = −3", -3),
    ],
)
@pytest.mark.unit
def test_final_number_extraction(text, value):
    assert value in [pytest.approx(v) for v in final_number(text)]


@pytest.mark.unit
def test_math_checker_right_wrong_and_malformed():
    product = ref("math", "What is 17 times 23?")
    assert check_math(product, "Seventeen times twenty-three equals three hundred ninety-one.").correct is True
    assert check_math(product, "17 × 23 = 391").correct is True
    assert check_math(product, "17 × 23 = 381").correct is False
    assert check_math(product, "I cannot compute that.").note == "no number in the answer"
    circle = ref("math", "What is the area of a circle with radius 5?")
    assert check_math(circle, "A = πr² = 25π ≈ 78.54").correct is True
    assert check_math(circle, "A = 2πr = 10π").correct is False
    share = ref("math", "Calculate 15% of 240.")
    assert check_math(share, "15% of 240 is 36.").correct is True
    dice = ref("math", "What is the probability of rolling two sixes with two dice?")
    assert check_math(dice, "1/6 × 1/6 = 1/36, about 2.78%").correct is True
    assert check_math(dice, "It is 1/6.").correct is False
    assert words_to_digits("one hundred and one dalmatians") == "101 dalmatians"


# ── sql ────────────────────────────────────────────────────────────────────────────────────────

OLDER = "Write an SQL query that selects all users older than 30."


@pytest.mark.unit
def test_sql_with_prose_around_it_with_and_without_fences():
    older = ref("sql", OLDER)
    prose = "Sure! You can use:\n\nSELECT name, email FROM users WHERE age > 30;\n\nThis returns every user over 30."
    assert check_sql(older, prose).correct is True, "a projection of the reference's columns is right"
    fenced = "Here you go:\n```sql\n-- users over thirty\nSELECT *\nFROM users\nWHERE age > 30;\n```\nHope it helps."
    assert check_sql(older, fenced).correct is True
    assert check_sql(older, "```\nSELECT * FROM users WHERE age >= 30;\n```").correct is False  # Annie is 30
    assert check_sql(older, "You should ask your database administrator.").note == "no SELECT query in the answer"
    per_customer = ref("sql", "Write a SQL query that counts the orders per customer.")
    counts_only = "SELECT COUNT(*) FROM orders GROUP BY customer_id"
    assert check_sql(per_customer, counts_only).correct is False, "counts without whose are not the answer"
    more = "SELECT customer_id, COUNT(*) AS n, MAX(order_date) AS latest FROM orders GROUP BY customer_id"
    assert check_sql(per_customer, more).correct is True, "extra columns are allowed"
    broken = check_sql(older, "```sql\nSELECT * FROM people WHERE age > 30;\n```")
    assert broken.correct is False and "no such table: people" in broken.note


@pytest.mark.unit
def test_sql_order_counts_only_when_the_prompt_asks_for_one():
    top = ref("sql", "Write a SQL query that returns the top 3 customers by total spend.")
    right = "SELECT customer_id, SUM(amount) AS spend FROM orders GROUP BY customer_id ORDER BY spend DESC LIMIT 3"
    assert check_sql(top, right).correct is True
    assert check_sql(top, right.replace("DESC", "ASC")).correct is False
    older = ref("sql", OLDER)
    assert check_sql(older, "SELECT * FROM users WHERE age > 30 ORDER BY name DESC").correct is True


@pytest.mark.unit
def test_sql_is_read_only_and_bounded():
    older = ref("sql", OLDER)
    for writes in ("DELETE FROM users", "DROP TABLE users", "UPDATE users SET age = 99"):
        assert check_sql(older, f"```sql\n{writes};\n```").correct is False
    sneaky = "WITH x AS (SELECT 1) DELETE FROM users"  # starts like a read; the authorizer refuses the write
    assert check_sql(older, sneaky).correct is False
    assert run_query("SELECT COUNT(*) FROM users") == [(10,)], "each check gets a fresh copy"
    started = time.monotonic()
    runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT * FROM n WHERE i < 0"
    verdict = check_sql(older, runaway)
    assert verdict.correct is False and "interrupted" in verdict.note
    assert time.monotonic() - started < 30


# ── code ───────────────────────────────────────────────────────────────────────────────────────

REVERSE = "Write a Python function that reverses a string."


def test_code_right_wrong_and_renamed(bwrap_here):
    reverse = ref("code", REVERSE)
    right = (
        "```python\ndef reverse_string(s):\n    return s[::-1]\n```\n\n"
        "Example:\n```\n>>> reverse_string('ab')\n'ba'\n```"
    )
    assert check_code(reverse, right).correct is True, "an example block that is no Python is skipped"
    renamed = "Here is one:\n\ndef flip(text):\n    return ''.join(reversed(text))\n\nIt walks the string backwards."
    assert check_code(reverse, renamed).correct is True, "unfenced code with prose after it, under its own name"
    wrong = check_code(reverse, "```python\ndef reverse_string(s):\n    return s\n```")
    assert wrong.correct is False and wrong.note.startswith("1/2 tests pass") and wrong.score == 0.5
    assert check_code(reverse, "Use slicing with a negative step.").correct is False


def test_code_with_an_infinite_loop_or_a_memory_hog_is_stopped(bwrap_here):
    reverse = ref("code", REVERSE)
    started = time.monotonic()
    loop = check_code(reverse, "```python\ndef reverse_string(s):\n    while True:\n        pass\n```")
    assert loop.correct is False and ("SIGKILL" in loop.note or "SIGXCPU" in loop.note or "timed out" in loop.note)
    assert time.monotonic() - started < 30
    hog = check_code(reverse, "```python\ndef reverse_string(s):\n    return 'x' * 10**10\n```")
    assert hog.correct is False and "MemoryError" in hog.note


def test_code_cannot_forge_its_verdict_by_printing_one(bwrap_here):
    reverse = ref("code", REVERSE)
    forged = json.dumps({"passed": 2, "note": "2/2 tests pass"})
    answer = f"```python\nimport sys, os\nprint({forged!r})\nsys.stdout.write({forged!r})\nos._exit(0)\n```"
    assert check_code(reverse, answer).correct is False


def test_code_script_answers_are_checked_by_what_they_print(bwrap_here):
    fix = ref("code", "Fix this Python code: for i in range(10) print(i)")
    assert check_code(fix, "You forgot the colon:\n```python\nfor i in range(10):\n    print(i)\n```").correct is True
    assert check_code(fix, "```python\nfor i in range(1, 10):\n    print(i)\n```").correct is False


# ── translation ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.unit
def test_translation_right_wrong_and_prose():
    german = ref("translation", 'Translate "Where is the train station?" into German.')
    assert check_translation(german, 'In German you say: "Wo ist der Bahnhof?"').correct is True
    assert check_translation(german, "Sure! **Wo ist der Bahnhof**\n\nThis is a common phrase.").correct is True
    assert check_translation(german, "Où est la gare ?").correct is False
    assert check_translation(german, "Where is the train station?").correct is False, "left untranslated"
    japanese = ref("translation", 'How do you say "thank you" in Japanese?')
    assert check_translation(japanese, "ありがとう (arigatou)").correct is True


# Right translations worded differently from our references, written for this test.
PARAPHRASES = [
    ('Translate "Good morning" into French.', "Bonjour !"),
    ('Translate "Ich habe Hunger" into English.', "I'm hungry"),
    ('Translate "Le chat dort sur le canapé" into English.', "The cat sleeps on the sofa"),
    ('Translate "I would like a cup of coffee" into French.', "Je voudrais une tasse de café, s'il vous plaît."),
    ('Translate "We are going to the beach" into French.', "Nous allons à la plage !"),
    ('Translate "The children are playing outside" into German.', "Die Kinder spielen draussen."),
    ('Translate "Buongiorno a tutti" into English.', "Good morning everybody"),
    ('Translate "Please speak more slowly" into Spanish.', "Habla más despacio, por favor."),
]


@pytest.mark.unit
def test_chrf_threshold_separates_right_from_wrong_on_the_shipped_references():
    """Justifies CHRF_THRESHOLD: paraphrases stay above it; other prompts' answers and the
    untranslated source sentence stay below it. The margins are printed for the record.

    An other prompt's reference whose words are all in one of this prompt's ("Good morning"
    for "Good morning, everyone") is a partial translation, not a wrong one: left out.
    """

    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower()))

    right = [chrf(text, REFERENCES["translation"][prompt].references) for prompt, text in PARAPHRASES]
    wrong = []
    items = list(REFERENCES["translation"].values())
    for reference in items:
        for other in items:
            answer = other.references[0]
            if other is not reference and not any(
                words(answer) <= words(r) or words(r) <= words(answer) for r in reference.references
            ):
                wrong.append(chrf(answer, reference.references))
        source = re.search(r'"(.+?)"', reference.prompt).group(1)
        wrong.append(chrf(source, reference.references))
    print(f"chrF: right paraphrases ≥ {min(right):.1f}, wrong answers ≤ {max(wrong):.1f}, threshold {CHRF_THRESHOLD}")
    assert min(right) >= CHRF_THRESHOLD > max(wrong)


# ── questions ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.unit
def test_questions_variants_words_and_every_group():
    continents = ref("questions", "How many continents are there?")
    assert check_question(continents, "There are seven continents.").correct is True
    assert check_question(continents, "There are 7.").correct is True
    assert check_question(continents, "There are 17 regions.").correct is False
    painter = ref("questions", "Who painted the Mona Lisa?")
    assert check_question(painter, "It was painted by LEONARDO DA VINCI.").correct is True
    assert check_question(painter, "Michelangelo.").correct is False
    states = ref("questions", "What are the three states of matter?")
    assert check_question(states, "Solid, liquid and gas.").correct is True
    assert check_question(states, "Solid and liquid.").correct is False, "every group must be named"
    reef = ref("questions", "What is the Great Barrier Reef?")
    assert check_question(reef, "The largest coral reef system, off Queensland, Australia.").correct is True


@pytest.mark.unit
def test_question_prefix_variants_need_a_star():
    bones = QuestionReference(prompt="How many bones?", accept=[["206"]])
    assert check_question(bones, "2060").correct is False
    assert check_question(bones, "two hundred and six").correct is True


# ── loading ────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "What is 2 + 2?", "answer": 4', "not valid JSON"),
        ('{"prompt": "What is 2 + 2?"}', "answer: Field required"),
        ('{"prompt": "What is 2 + 2?", "answer": "four"}', "answer"),
        ('{"prompt": "What is 2 + 2?", "answer": 4, "tolerence": 0.1}', "tolerence: Extra inputs are not permitted"),
        ('{"prompt": "What is 2 + 2?", "answer": 4}', "a second reference"),
    ],
)
@pytest.mark.unit
def test_a_malformed_reference_line_is_refused_with_file_and_line(tmp_path, line, message):
    path = tmp_path / "math.jsonl"
    path.write_text('{"prompt": "What is 2 + 2?", "answer": 4}\n\n' + line + "\n")
    with pytest.raises(ReferenceError) as refused:
        load_file(path, "math")
    assert str(refused.value).startswith(f"{path}:3: ") and message in str(refused.value)


@pytest.mark.unit
def test_a_code_reference_that_does_not_compile_is_refused(tmp_path):
    path = tmp_path / "code.jsonl"
    bad = {"prompt": "p", "name": "f", "tests": ["assert f(1) =="], "solution": "def f(x):\n    return x"}
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ReferenceError, match=rf"{re.escape(str(path))}:1: tests: .*not valid Python"):
        load_file(path, "code")


@pytest.mark.unit
def test_a_prompt_without_reference_is_unscored_never_wrong(tmp_path):
    (tmp_path / "math.jsonl").write_text('{"prompt": "What is 2 + 2?", "answer": 4}\n')
    loaded = load_references(tmp_path)
    assert loaded["sql"] == {} and list(loaded["math"]) == ["What is 2 + 2?"]
    verdict = check(loaded["math"].get("What is 17 times 23?"), "391")
    assert verdict.correct is None and verdict.note.startswith("unscored")
    assert check(MathReference(prompt="p", answer=1), "   ").correct is False


@pytest.mark.unit
def test_reference_kinds_validate_their_own_shape():
    with pytest.raises(ValueError):
        SqlReference(prompt="p", queries=[])
    with pytest.raises(ValueError):
        CodeReference(prompt="p", name="not a name", tests=["pass"], solution="pass")
    with pytest.raises(ValueError):
        TranslationReference(prompt="p", references=[""])
