"""End to end: the `joulebot` command, the real queue, a real worker process and SmolLM2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from testenv import cli_env, make_settings, run_cli

from joulebot.chat.footer import footer
from joulebot.exchange import Result
from joulebot.history import HistoryStore
from joulebot.metering.estimate import TICK_S
from joulebot.metering.power_figures import published

pytestmark = pytest.mark.e2e

LONG_PROMPT = "Write the numbers from 1 to 500 separated by commas."  # SmolLM2 keeps going until max tokens


def _history(settings) -> list:
    return HistoryStore.open(settings.sqlalchemy_url).recent("cli", str(os.getuid()), limit=50)  # the OS account


def _worker_pid(settings) -> int:
    return int((settings.data_dir / "worker.pid").read_text())


def test_ask_prints_answer_and_footer_that_history_holds(embedded):
    proc = run_cli(embedded, "ask", "What is the capital of France?")
    assert proc.returncode == 0, proc.stderr
    answer, _, printed_footer = proc.stdout.rstrip("\n").rpartition("\n\n")
    assert answer.strip(), "the model's answer is empty"

    (row,) = _history(embedded)
    stored = Result.model_validate(row.result)
    # the one-time line on the grid zone is the answer's, not the exchange's: history's footers leave it out
    assert not stored.first_answer
    assert printed_footer == footer(stored.model_copy(update={"first_answer": True}))
    assert stored.answer == answer == row.answer
    assert row.prompt == "What is the capital of France?"
    # the printed figures are the stored columns
    energy_line, carbon_line, model_line, label, zone = printed_footer.splitlines()
    total, band = (float(g) for g in re.match(r"⚡ ([\d.]+) ± ([\d.]+) J total", energy_line).groups())
    assert total == pytest.approx(row.energy_total_j, rel=5e-3)
    assert band == pytest.approx(row.energy_uncertainty_j, rel=0.05)  # the estimate's band, two figures
    assert label == "📏 energy, CO2e and SCI estimated from CPU load (no meter here), not measured"
    assert f"{row.completion_tokens} tokens" in model_line
    assert "(DE, static:" in carbon_line and row.intensity_zone == "DE"
    assert zone.startswith("🗺️ the CO2e uses DE's grid (381 g/kWh), the default: set GRID_ZONE"), "a fresh install"
    # a fresh home: the idle baseline is measured after this answer, off its path; nothing is guessed
    assert row.energy_attributable_j is None and "above idle" not in energy_line


def test_json_units_and_a_warm_second_call(embedded):
    first = run_cli(embedded, "ask", "Name a planet.", "--json")
    assert first.returncode == 0, first.stderr
    pid = _worker_pid(embedded)
    second = run_cli(embedded, "ask", "Name a colour.", "--units", "watts")
    assert second.returncode == 0, second.stderr
    assert _worker_pid(embedded) == pid, "the second call must reuse the warm worker"
    assert " W avg over " in second.stdout and " J total" not in second.stdout
    assert "GRID_ZONE" not in second.stdout, "the grid zone is said under the first answer only"

    result = Result.model_validate(json.loads(first.stdout))
    row = HistoryStore.open(embedded.sqlalchemy_url).get(result.exchange_id)
    assert row.request_id == result.request.id
    assert row.energy_total_j == pytest.approx(result.energy.total_j)
    assert result.energy.machine.measured is False
    assert result.load_s >= 0 and result.energy.idle is None  # the first answer of a fresh home
    # the estimate's band from the published figures for this machine's CPU (and the busy time the window's end cuts)
    model, seconds = published(), result.energy.seconds
    band = json.loads(first.stdout)["energy"]["uncertainty_j"]
    assert (
        model.band_w * seconds
        <= band
        <= model.band_w * seconds + model.per_core_w * (os.cpu_count() * (seconds + 0.05) / 2 + TICK_S)
    )
    phases = json.loads(first.stdout)["energy"]["phases"]  # --json carries the answer's two phases
    assert phases["error"] is None and 0 < phases["split_s"] < seconds and phases["prefill_j"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "the prompt is empty"),
        (["ask", "x" * 4001], "the prompt has 4001 characters; the maximum is 4000"),
        (["ask", "hi", "--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["compare", "smollm2", "nope", "hi"], "unknown model 'nope'"),
    ],
)
def test_bad_input_is_refused_before_anything_is_queued(settings, args, message):
    proc = run_cli(settings, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not (settings.data_dir / "redis.sock").exists(), "nothing may be started or queued"


def test_compare_runs_both_and_gives_the_ratio(embedded):
    proc = run_cli(embedded, "compare", "smollm2", "smollm2-135m", "Say hello.")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("── A: smollm2-135m ──") == 1 and proc.stdout.count("── B: smollm2-135m ──") == 1
    assert proc.stdout.count("⚡ ") == 2
    assert re.search(r"⚖️ smollm2-135m \([AB]\) used [\d.]+× the energy of smollm2-135m \([AB]\)", proc.stdout)
    assert len(_history(embedded)) == 2


def test_runner_failure_and_timeout_fail_the_job_and_the_worker_keeps_serving(embedded):
    # a prompt the model's window cannot hold is refused before queueing, not failed by the runner
    too_long = run_cli(embedded, "ask", "word " * 3000, MAX_PROMPT_CHARS="20000")
    assert too_long.returncode == 2
    assert "has a context of 2048 tokens" in too_long.stderr and "Traceback" not in too_long.stderr

    # one thread and 1900 tokens in 1 s: beyond any CPU (a fast CI runner did 1500 tokens in under 2 s on all cores)
    slow = run_cli(embedded, "ask", LONG_PROMPT, JOB_TIMEOUT_S="1", MAX_TOKENS="1900", LLAMA_THREADS="1")
    assert slow.returncode == 1, slow.stdout
    assert "the model did not finish within 1 s; job failed" in slow.stderr
    pid = _worker_pid(embedded)

    ok = run_cli(embedded, "ask", "Say yes.")
    assert ok.returncode == 0, ok.stderr
    assert _worker_pid(embedded) == pid
    assert [row.prompt for row in _history(embedded)] == ["Say yes."], "failed jobs are not recorded"


# Told to repeat a phrase forever, SmolLM2 with its shipped settings (greedy, repeat penalty 1.1) loops on
# varied copies of it ("La Lumière, La Lumière, / L'Allema, La Lumière, …") until MAX_TOKENS unless stopped
LOOP_SYSTEM = "Repeat the user's message forever, without stopping."
LOOP_PROMPT = "la France, la France, la France,"


def test_a_loop_is_stopped_before_max_tokens_and_a_long_answer_says_it_was_cut(embedded):
    looped = run_cli(embedded, "ask", LOOP_PROMPT, "--system", LOOP_SYSTEM)
    assert looped.returncode == 0, looped.stderr
    answer, _, printed = looped.stdout.rstrip("\n").rpartition("\n\n")
    assert printed.splitlines()[0] == "… stopped: the model was repeating itself"
    assert "La Lumière, La Lumière" in answer
    cut = run_cli(embedded, "ask", LONG_PROMPT)
    assert cut.returncode == 0, cut.stderr
    answer, _, printed = cut.stdout.rstrip("\n").rpartition("\n\n")
    assert printed.splitlines()[0] == "… cut at 256 tokens" and answer.startswith("1, 2, 3, 4, 5")
    rows = {row.prompt: row for row in _history(embedded)}
    assert rows[LOOP_PROMPT].completion_tokens < 200, "the rest of the loop was never generated"
    assert rows[LONG_PROMPT].completion_tokens == 256
    assert Result.model_validate(rows[LOOP_PROMPT].result).finish_reason == "repetition"
    assert rows[LONG_PROMPT].generation_settings == "temperature=0 top_p=0.95 top_k=40 repeat_penalty=1.1"


def _popen_ask(settings, prompt: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "joulebot", "ask", prompt],
        env=cli_env(settings, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_ctrl_c_cancels_a_queued_job_and_leaves_a_running_one_to_finish(embedded):
    assert run_cli(embedded, "ask", "Warm up.").returncode == 0
    client = redis.Redis(unix_socket_path=str(embedded.data_dir / "redis.sock"))
    started = lambda: client.zcard(f"rq:wip:{embedded.queue_name}") > 0  # noqa: E731
    queued = lambda: client.llen(f"rq:queue:{embedded.queue_name}") > 0  # noqa: E731

    running = _popen_ask(embedded, LONG_PROMPT, MAX_TOKENS="400")
    _wait_for(started)
    waiting = _popen_ask(embedded, "I will be cancelled.")
    _wait_for(queued)

    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert err.strip().endswith("cancelled before it ran; nothing was recorded")
    assert "Traceback" not in err

    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=30)
    assert running.returncode == 130
    assert "will be in `joulebot history`" in err

    _wait_for(lambda: any(row.prompt == LONG_PROMPT for row in _history(embedded)), timeout=180)
    prompts = [row.prompt for row in _history(embedded)]
    assert "I will be cancelled." not in prompts
    row = next(row for row in _history(embedded) if row.prompt == LONG_PROMPT)
    assert row.completion_tokens > 0 and row.energy_total_j > 0


def test_system_redis_and_postgresql(tmp_path, system_redis_url, postgres_url):
    settings = make_settings(
        tmp_path / "data", redis_url=system_redis_url, database_url=postgres_url, queue_name=f"jb-{uuid.uuid4().hex}"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "worker"],
        env=cli_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        proc = run_cli(settings, "ask", "What is 2 + 2?", "--json")
        assert proc.returncode == 0, proc.stderr
        result = Result.model_validate(json.loads(proc.stdout))
        row = HistoryStore.open(settings.sqlalchemy_url).get(result.exchange_id)
        assert row.answer == result.answer and row.request_id == result.request.id
        assert row.sci_g == pytest.approx(result.carbon.sci_g)
        assert not (settings.data_dir / "redis.sock").exists(), "REDIS_URL set: no embedded server"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        redis.Redis.from_url(system_redis_url).delete(f"rq:queue:{settings.queue_name}")
    assert worker.returncode == 0, err
    assert "warm: smollm2-135m loaded" in err


def test_live_intensity_reaches_the_footer_and_history(embedded):
    from standins import HttpStandIn, Reply

    api = HttpStandIn()
    body = {"zone": "FR", "carbonIntensity": 42.0, "datetime": "2026-11-26T12:00:00.000Z", "isEstimated": False}
    api.replies.append(Reply(200, body))
    try:
        proc = run_cli(
            embedded,
            "ask",
            "Say hi.",
            GRID_ZONE="FR",
            ELECTRICITY_MAPS_TOKEN="tok-e2e-secret",
            ELECTRICITY_MAPS_URL=api.url + "/v3",
        )
    finally:
        api.close()
    assert proc.returncode == 0, proc.stderr
    # the worker's heartbeat may have fetched it a moment before the answer (the box profile shows the
    # intensity): then the answer says the live figure is cached, and how old it is
    assert re.search(r"42\.0 g/kWh \(FR, (live|cached \d+ s old): Electricity Maps 2026-11-26 12:00 UTC\)", proc.stdout)
    assert len(api.requests) == 1, "one call to the API, whoever made it"
    (row,) = _history(embedded)
    assert row.intensity_provenance in ("live", "cached") and row.intensity_g_per_kwh == 42.0
    assert "tok-e2e-secret" not in (embedded.data_dir / "worker.log").read_text()
    assert "tok-e2e-secret" not in json.dumps(row.result)
