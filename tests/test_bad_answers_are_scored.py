"""No answer stops the scoring: an answer the checker can judge within its limits is wrong, with
why; a checker that fails is "unscored: why" for that answer; `joulebot bench` goes on."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from standins import OllamaStandIn
from testenv import run_cli

from joulebot.campaign.checkers import check
from joulebot.campaign.references import SqlReference, load_references, shipped_directory

REFERENCES = load_references()
REVERSE = REFERENCES["code"]["Write a Python function that reverses a string."]
OLDER = REFERENCES["sql"]["Write an SQL query that selects all users older than 30."]
NESTED = "def reverse_string(s):\n    return " + "-" * 3000 + "1"  # too deep for CPython's compiler


@pytest.fixture
def ollama():
    server = OllamaStandIn()
    yield server
    server.close()


@pytest.mark.parametrize("depth", [3000, 6000])
def test_code_too_deep_to_compile_is_wrong_and_the_scorer_never_parses_it(bwrap_here, depth):
    verdict = check(REVERSE, NESTED.replace("-" * 3000, "-" * depth))
    assert verdict.correct is False
    assert verdict.note.startswith("no function reverse_string found; a block does not compile")


SCORE_UNDER_A_MEMORY_LIMIT = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
from joulebot.campaign.checkers import check
from joulebot.campaign.references import load_references
older = load_references()["sql"]["Write an SQL query that selects all users older than 30."]
verdict = check(older, sys.stdin.read())
print(json.dumps({"correct": verdict.correct, "note": verdict.note}))
"""


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("SELECT randomblob(400000000);", "string or blob too big"),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 5000) "
            "SELECT randomblob(500000) FROM n;",
            "result larger than 16 MiB",
        ),
    ],
    ids=["one-huge-value", "many-large-rows"],
)
def test_a_query_too_large_for_the_checker_is_wrong_not_a_crash(query, why):
    """In a scorer whose address space is bounded (768 MiB), as a small box's would be."""
    scorer = subprocess.run(
        [sys.executable, "-c", SCORE_UNDER_A_MEMORY_LIMIT],
        input=query,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert scorer.returncode == 0, scorer.stderr[-300:]
    verdict = json.loads(scorer.stdout)
    assert verdict["correct"] is False and why in verdict["note"], verdict


@pytest.mark.unit
def test_a_failing_checker_is_unscored_with_its_reason():
    broken = SqlReference(prompt=OLDER.prompt, queries=["SELECT * FROM people WHERE age > 30"])
    verdict = check(broken, "SELECT name FROM users WHERE age > 30;")
    assert verdict.correct is None and verdict.score is None
    assert verdict.note == "unscored: the checker failed (OperationalError: no such table: people)"


def test_bench_goes_on_past_a_bad_answer_and_a_failing_checker(bwrap_here, embedded, ollama, tmp_path):
    references = tmp_path / "references"
    references.mkdir()
    shutil.copy(shipped_directory() / "code.jsonl", references)
    (references / "sql.jsonl").write_text(json.dumps({"prompt": OLDER.prompt, "queries": ["SELECT * FROM people"]}))
    ollama.answer = [NESTED + "\n\nSELECT name FROM users;"]
    out = tmp_path / "out"
    args = ("bench", "--models", "llama3", "--categories", "code,sql", "--n", "1", "--run", "bad")
    run = run_cli(embedded, *args, "--references", str(references), "--out", str(out), OLLAMA_HOST=ollama.url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 answers measured" in run.stdout
    assert "0 correct, 1 wrong, 1 unscored (newly checked)" in run.stdout
    notes = {
        r["request_id"].rsplit("-", 2)[-2]: r["score_note"] for r in csv.DictReader((out / "bad-answers.csv").open())
    }
    assert notes["code"].startswith("no function reverse_string found; a block does not compile")
    assert notes["sql"] == "unscored: the checker failed (OperationalError: no such table: people)"
