"""The scored benchmark end to end: the real CLI, queue, worker and history, answers from the
Ollama stand-in (whose fixed answer names Paris: right for one question, wrong for all math)."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import run_cli
from standins import OllamaStandIn

from joulebot.history import HistoryStore


@pytest.fixture
def ollama():
    server = OllamaStandIn()
    yield server
    server.close()


def _cell(stdout: str, title: str, category: str) -> str:
    """The llama3 cell of one category in the table printed under `title`."""
    block = stdout.split(title, 1)[1].split("\n\n", 1)[0]
    header, _, row = (line for line in block.splitlines() if line.startswith("|"))
    names = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "llama3"
    return cells[names.index(category)]


def test_bench_scores_the_answers_through_the_real_queue_and_worker(bwrap_here, embedded, ollama, tmp_path):
    env = {"OLLAMA_HOST": ollama.url}
    out = tmp_path / "out"
    args = ("bench", "--models", "llama3", "--n", "3", "--run", "standin", "--out", str(out), "--heatmap", "accuracy")
    first = run_cli(embedded, *args, **env)
    assert first.returncode == 0, first.stderr
    assert "15 answers measured, 0 already measured, 0 failed" in first.stdout
    assert "1 correct, 14 wrong, 0 unscored (newly checked)" in first.stdout
    assert _cell(first.stdout, "accuracy (", "math") == "0% (0–56)"
    assert _cell(first.stdout, "accuracy (", "questions") == "33% (6–79)"  # "What is the capital of France?"
    assert _cell(first.stdout, "energy per correct answer", "math") == "—"
    per_correct = float(_cell(first.stdout, "energy per correct answer", "questions"))
    mean_cell = _cell(first.stdout, "mean energy per answer", "questions")  # '0.130 ± 0.34 (3)': mean ± 95 % (n)
    assert mean_cell.endswith(" (3)") and " ± " in mean_cell
    mean = float(mean_cell.split(" ± ")[0])
    assert per_correct == pytest.approx(3 * mean, rel=0.01), "three answers' energy for one correct one"
    assert "energy: estimated (no meter) on" in first.stdout

    answers = list(csv.DictReader((out / "standin-answers.csv").open()))
    assert len(answers) == 15
    by_id = {a["request_id"].removeprefix("bench-standin-llama3-"): a for a in answers}
    assert all(by_id[f"math-{i:02d}"]["correct"] == "False" for i in range(3))
    assert by_id["questions-00"]["correct"] == "True" and by_id["questions-01"]["correct"] == "False"
    assert by_id["code-00"]["score_note"].startswith("no function reverse_string found")
    assert (out / "standin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = {r["category"]: r for r in csv.DictReader((out / "standin.csv").open())}
    assert summary["questions"]["correct"] == "1" and summary["questions"]["scored"] == "3"

    again = run_cli(embedded, *args, **env)
    assert "0 answers measured, 15 already measured" in again.stdout
    assert "0 correct, 0 wrong, 0 unscored (newly checked)" in again.stdout, "a scored answer is not checked twice"
    rescored = run_cli(embedded, *args, "--rescore", **env)
    assert "0 answers measured, 15 already measured" in rescored.stdout
    assert "1 correct, 14 wrong, 0 unscored (newly checked)" in rescored.stdout

    stats = run_cli(embedded, "stats", **env)
    assert stats.returncode == 0, stats.stderr
    assert _cell(stats.stdout, "accuracy (", "math") == "0% (0–56)"
    assert "energy per correct answer" in stats.stdout


def test_bench_refuses_a_malformed_reference_before_queueing_and_leaves_unreferenced_prompts_unscored(
    embedded, ollama, tmp_path
):
    env = {"OLLAMA_HOST": ollama.url}
    references = tmp_path / "references"
    references.mkdir()
    (references / "math.jsonl").write_text('{"prompt": "What is 17 times 23?", "answer": 391}\n{"prompt": 2}\n')
    args = ("bench", "--models", "llama3", "--categories", "math,questions", "--n", "1", "--out", str(tmp_path))
    refused = run_cli(embedded, *args, "--references", str(references), **env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"joulebot: {references / 'math.jsonl'}:2: prompt: Input should be a valid string"
    assert HistoryStore.open(embedded.sqlalchemy_url).request_ids("bench-") == set(), "nothing was queued"

    (references / "math.jsonl").write_text('{"prompt": "What is 17 times 23?", "answer": 391}\n')
    partial = run_cli(embedded, *args, "--run", "partial", "--references", str(references), **env)
    assert partial.returncode == 0, partial.stderr
    assert "0 correct, 1 wrong, 1 unscored" in partial.stdout
    assert _cell(partial.stdout, "accuracy (", "questions") == "unscored"
    assert _cell(partial.stdout, "energy per correct answer", "questions") == ""
    (row,) = [r for r in csv.DictReader((tmp_path / "partial-answers.csv").open()) if "questions" in r["request_id"]]
    assert row["correct"] == "" and row["score_note"] == "unscored: no reference for this prompt"
    assert re.search(r"--heatmap\b", run_cli(embedded, "bench", "--help").stdout)


def test_chat_stats_show_accuracy_beside_energy_where_scored(tmp_path, system_redis_url):
    from conftest import make_settings
    from factories import make_result

    from joulebot.chat.service import ChatService

    chat = ChatService(make_settings(tmp_path / "data", redis_url=system_redis_url), "telegram")
    for right in (True, False, True, True):
        exchange_id = chat.history.record(make_result(model="tinyllama", total_j=5.0))
        chat.history.set_score(exchange_id, right, float(right), "test")
    chat.history.record(make_result(model="mistral", total_j=50.0))
    text = chat.reports.stats_text()
    assert (
        "• questions: tinyllama 5.00 ± 5.0 J (4, 75% right of 4 checked)"
        " · mistral 50.0 J (n = 1, too few for an interval)" in text
    )
