"""Which sampling settings give SmolLM2 the most correct answers per joule: the scored benchmark per candidate.

Each candidate runs `joulebot bench` (the real queue, worker and scoring) with GENERATION_SETTINGS
set to it, in a data directory of its own (its own embedded worker and history), one after the
other; a run already measured is only read again. Prints one markdown row per candidate: accuracy,
energy per answer and per correct answer (the bench's figures), tokens per answer and per correct
answer (which do not depend on what else the machine runs), and how many answers the runner ended
because they looped. Candidates sorted by correct answers per kJ.

    nice -n 10 python bench/generation_settings.py --n 8 --work /tmp/gen-settings
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CANDIDATES = {  # llama-cpp-python's defaults: temperature 0.2, top_p 0.95, top_k 40, repeat_penalty 1
    "A": {},
    "B": {"repeat_penalty": 1.1},
    "C": {"temperature": 0, "repeat_penalty": 1.1},
    "D": {"temperature": 0, "repeat_penalty": 1.15},
    "E": {"repeat_penalty": 1.2},
}


def run(key: str, settings: dict, n: int, work: Path) -> Path:
    """The candidate's benchmark (resumed if it was interrupted); returns its answers' CSV."""
    env = {
        **os.environ,
        "JOULEBOT_DATA_DIR": str(work / f"data-{key}"),
        "GENERATION_SETTINGS": json.dumps({"smollm2-135m": settings}),
    }
    command = [sys.executable, "-m", "joulebot", "bench", "--models", "smollm2", "--n", str(n), "--run", f"gen-{key}"]
    subprocess.run([*command, "--out", str(work / "out")], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "joulebot", "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
    return work / "out" / f"gen-{key}-answers.csv"


def loops(work: Path, key: str) -> int:
    """The run's answers its runner ended because they looped (their finish reason is in the stored Result)."""
    with sqlite3.connect(work / f"data-{key}" / "history.sqlite3") as db:
        query = "SELECT count(*) FROM exchanges WHERE json_extract(result, '$.finish_reason') = 'repetition'"
        return int(db.execute(query).fetchone()[0])


def row(key: str, settings: dict, answers: Path, work: Path) -> tuple[float, str]:
    rows = list(csv.DictReader(answers.open()))
    right = sum(r["correct"] == "True" for r in rows)
    joules = sum(float(r["energy_total_j"]) for r in rows)
    tokens = sum(int(r["completion_tokens"]) for r in rows)
    per_correct = f"{joules / right:.0f}" if right else "—"
    tokens_per_correct = f"{tokens / right:.0f}" if right else "—"
    shown = ", ".join(f"{k} {v:g}" for k, v in settings.items()) or "llama.cpp defaults"
    line = (
        f"| {key} | {shown} | {right}/{len(rows)} ({right / len(rows):.0%}) | {joules / len(rows):.0f} | {per_correct}"
        f" | {tokens / len(rows):.0f} | {tokens_per_correct} | {loops(work, key)} | {1000 * right / joules:.2f} |"
    )
    return right / joules, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="prompts per category (the first N of each shipped set)")
    parser.add_argument("--work", type=Path, default=Path("gen-settings"))
    parser.add_argument("--only", default="".join(CANDIDATES), help="candidate keys to run, e.g. ABD")
    args = parser.parse_args()
    rows = [row(k, s, run(k, s, args.n, args.work), args.work) for k, s in CANDIDATES.items() if k in args.only]
    print(
        "| | settings | correct | J/answer | J/correct | tokens/answer | tokens/correct | loops stopped | correct/kJ |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for _, line in sorted(rows, reverse=True):
        print(line)


if __name__ == "__main__":
    main()
