"""The dashboard over HTTP (Starlette's TestClient, and uvicorn for real), against real histories
on SQLite and PostgreSQL and a real Redis: every page and API route, privacy, bad input, outages."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import redis
import sqlalchemy
from alembic import command
from factories import make_result
from markupsafe import escape
from rq import Queue
from rq.serializers import JSONSerializer
from standins import OllamaStandIn, free_port
from starlette.testclient import TestClient
from testenv import cli_env, make_settings, run_cli
from webdata import SECRET_ANSWER, SECRET_PROMPT, announced_box, fill

from joulebot.chat.footer import footer
from joulebot.history import HistoryStore
from joulebot.history.engine import alembic_config, migrate
from joulebot.keys import JOB_FUNCTION
from joulebot.number_format import sig
from joulebot.web.app import create_app
from joulebot.web.metrics import serve_worker_metrics

PUBLIC_ROUTES = [
    "/",
    "/?metric=j_answer",
    "/?metric=j_token",
    "/?metric=j_above_idle",
    "/?box=testbox",
    "/boxes",
    "/boxes/rows",
    "/answers",
    "/answers?page=2",
    "/models",
    "/models/smollm2-135m",
    "/models/tinyllama",
    "/metrics",
    "/api/table.json",
    "/api/table.json?metric=j_token",
    "/api/table.csv",
    "/api/boxes.json",
    "/api/answers.json",
    "/api/models/tinyllama.json",
    "/static/style.css",
    "/static/refresh.js",
]


@pytest.fixture
def queue_name() -> str:
    return f"webtest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def web_settings(tmp_path, served_history_url, system_redis_url, queue_name):
    return make_settings(
        tmp_path / "data", database_url=served_history_url, redis_url=system_redis_url, queue_name=queue_name
    )


@pytest.fixture
def filled(served_history_url):
    store = HistoryStore.open(served_history_url)
    yield fill(store)
    store.engine.dispose()


@pytest.fixture
def client(web_settings, filled):
    with TestClient(create_app(web_settings)) as test_client:
        yield test_client


@pytest.fixture
def live_queue(web_settings, queue_name):
    """A queue as the worker of box "wallbox" makes it: the box announced (cooling down), one job waiting."""
    connection = redis.Redis.from_url(web_settings.redis_url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    queue.enqueue(JOB_FUNCTION, {"never": "run"})
    with announced_box(connection, "wallbox", queue_name, "cooling down: 61 °C > 55 °C"):
        yield connection
    queue.delete(delete_jobs=True)
    connection.close()


def _cell(html: str, model: str, category: str) -> str:
    match = re.search(rf'data-model="{re.escape(model)}" data-category="{category}">(.*?)</td>', html, re.S)
    assert match, f"no cell for {model} × {category}"
    return " ".join(match.group(1).split())


def test_every_public_route_answers_and_never_shows_a_prompt_or_answer(client, filled, live_queue):
    for route in [*PUBLIC_ROUTES, f"/answers/{filled.measured_id}", f"/api/answers/{filled.measured_id}.json"]:
        response = client.get(route)
        assert response.status_code == 200, (route, response.text[:300])
        for words in (SECRET_PROMPT, SECRET_ANSWER, "7f3c9a", "b41e07", *filled.tokens):
            assert words not in response.text, f"{route} shows {words!r}"
        assert "user0-0" not in response.text  # nor who asked


def test_the_table_shows_means_with_confidence_intervals_per_box_and_source(client, filled):
    html = client.get("/?metric=j_answer").text
    values = filled.energies[("testbox", "estimate", "smollm2-135m", "math")]
    mean = statistics.fmean(values)
    scatter = 3.182 * statistics.stdev(values) / math.sqrt(len(values))  # Student's t for 3 degrees of freedom
    half = math.hypot(scatter, mean)  # and the estimate's ±100 %, the same on every answer
    cell = _cell(html, "smollm2-135m", "math")
    assert f"{mean:.1f} J" in cell and f"± {half:.1f} J" in cell and "n = 4" in cell  # 42.5 ± 42.8
    assert "estimated from CPU load, not a measurement" in html
    assert "measured at the wall by mcp39f511n" in html
    assert "measured by rapl+nvml, not the whole machine" in html
    # the GPU box's tinyllama figures are their own table, never averaged with the estimates
    assert html.count('data-model="tinyllama" data-category="math"') == 2
    assert html.count("<svg") == 3  # one heatmap per basis
    assert "± ? (n = 1)" in html  # the single measured answer has no interval


def test_table_json_and_csv_carry_the_same_figures(client, filled):
    data = client.get("/api/table.json?metric=j_answer").json()
    rows = {(r["box"], r["source"], r["model"], r["category"]): r for r in data["rows"]}
    for key, values in filled.energies.items():
        row = rows[key]
        assert row["n"] == len(values) and row["mean"] == pytest.approx(statistics.fmean(values))
        assert (row["ci95"] is None) == (len(values) == 1)
    assert rows[("gpubox", "rapl+nvml", "tinyllama", "math")]["measured"] is True
    response = client.get("/api/table.csv?metric=j_answer")
    assert response.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert len(parsed) == len(data["rows"])
    assert float(parsed[0]["mean"]) == pytest.approx(data["rows"][0]["mean"])
    per_token = client.get("/api/table.json?metric=j_token").json()["rows"]
    translation = next(r for r in per_token if r["model"] == "smollm2-135m" and r["category"] == "translation")
    assert translation["n"] == 2 and translation["mean"] == pytest.approx((20.0 + 25.0) / 2 / 48)  # not the 0 tokens
    sci = client.get("/api/table.json").json()
    assert sci["metric"] == "sci" and sci["unit"] == "g CO2e" and all(r["mean"] > 0 for r in sci["rows"])


def test_the_answer_page_draws_the_measured_power_trace_and_spells_out_the_arithmetic(client, filled):
    result = filled.measured
    html = client.get(f"/answers/{filled.measured_id}").text
    assert f"{len(result.energy.machine.trace)} samples from mcp39f511n" in html
    assert result.energy.machine.trace and len(result.energy.machine.trace) >= 8
    assert 'class="trace"' in html and 'class="idle"' in html and "window start" in html and "window end" in html
    assert "idle baseline 60" in html  # measured through the driver at the simulated 60 W
    assert "above idle" in html and "SCI = (E × I + M) per R" in html
    assert "÷ 3 600 000 J/kWh" in html and "TiR" in html
    data = client.get(f"/api/answers/{filled.measured_id}.json").json()
    assert data["energy_total_j"] == pytest.approx(result.energy.total_j)
    watts = [w for _, w in data["trace"]]
    assert min(watts) == pytest.approx(60.0, abs=0.5) and max(watts) == pytest.approx(140.0, abs=0.5)
    assert "prompt" not in data and "answer" not in data and "share_token" not in data


def test_the_answer_page_draws_reading_the_prompt_and_generating_on_the_trace(client, filled):
    phases = filled.measured.energy.phases
    assert phases.error is None and phases.timing == "a test runner"
    html = client.get(f"/answers/{filled.measured_id}").text
    assert 'class="energy prefill"' in html and 'class="energy decode"' in html and 'class="first-token"' in html
    assert "reading the prompt (prefill)" in html and "generating (decode)" in html
    assert f"{sig(phases.prefill_j)} J ± {sig(phases.prefill_uncertainty_j)} J" in html
    assert f"the first token, {sig(phases.split_s)} s" in html and "by a test runner" in html
    data = client.get(f"/api/answers/{filled.measured_id}.json").json()
    assert data["phases"]["prefill_j"] == pytest.approx(phases.prefill_j)
    assert data["phases"]["decode_j"] == pytest.approx(phases.decode_j)
    # 60 W until the work starts half a second in, 140 W for its 0.3 s: the simulator's own figures
    assert phases.prefill_j == pytest.approx(60.0 * phases.split_s, abs=phases.prefill_uncertainty_j)
    assert phases.decode_j == pytest.approx(
        140.0 * (filled.measured.energy.seconds - phases.split_s), abs=phases.decode_uncertainty_j
    )
    unsplit = client.get("/answers/2").text  # an estimated answer stored without phases
    assert 'class="energy prefill"' not in unsplit and "reading the prompt (prefill)" not in unsplit


def test_the_model_page_draws_distributions_and_days_per_box_and_source(client, filled):
    html = client.get("/models/tinyllama").text
    counts = [int(n) for n in re.findall(r'class="bar"[^>]*><title>(\d+)</title>', html)]
    assert sum(counts) == 4 * 3  # J/answer and J/token, on two bases of three answers each
    assert html.count('class="box"') == 4 and 'class="day"' in html
    assert "measured by rapl+nvml, not the whole machine" in html and "estimated from CPU load" in html
    assert "estimated by estimate" not in html
    data = client.get("/api/models/tinyllama.json").json()
    j_answer = [d for d in data["distributions"] if d["metric"] == "j_answer"]
    per_answer = {(d["box"], d["source"]): sorted(d["values"]) for d in j_answer}
    assert per_answer == {
        ("gpubox", "rapl+nvml"): sorted(filled.energies[("gpubox", "rapl+nvml", "tinyllama", "math")]),
        ("testbox", "estimate"): sorted(filled.energies[("testbox", "estimate", "tinyllama", "math")]),
    }
    (gpu_day,) = [d["days"] for d in data["daily"] if d["box"] == "gpubox"]
    assert gpu_day[0]["date"] == "2026-11-26" and gpu_day[0]["n"] == 3 and gpu_day[0]["mean"] == pytest.approx(310.0)


def test_the_private_link_shows_the_words_until_forget(client, filled, served_history_url):
    token = filled.measured.share_token
    html = client.get(f"/a/{token}").text
    assert SECRET_PROMPT in html and SECRET_ANSWER in html and 'class="trace"' in html
    assert client.get(f"/a/{token}").headers["referrer-policy"] == "no-referrer"
    for wrong in ("/a/", "/a", f"/a/{token[:-1]}", f"/a/{token}x", f"/answers/{filled.measured_id}/{token}"):
        response = client.get(wrong)
        assert response.status_code == 404, wrong
        assert SECRET_PROMPT not in response.text
    filled.store.forget("cli", "alice")
    html = client.get(f"/a/{token}").text
    assert SECRET_PROMPT not in html and SECRET_ANSWER not in html and "were deleted" in html


def test_boxes_show_queue_state_length_and_history(client, live_queue, queue_name):
    html = client.get("/boxes").text
    assert queue_name in html and "cooling down: 61 °C &gt; 55 °C" in html
    assert "wallbox" in html and "gpubox" in html and "static: Our World in Data" in html
    data = client.get("/api/boxes.json").json()
    mine = next(b for b in data["boxes"] if b["queue"] == queue_name)
    assert mine["worker_alive"] is True and mine["queued"] == 1 and mine["state"].startswith("cooling down")
    # the live queue and the box's history are one row, joined through the box's announcement
    assert mine["box"] == "wallbox" and [b["box"] for b in data["boxes"]].count("wallbox") == 1
    assert mine["idle_w"] == pytest.approx(60.0, abs=0.5) and mine["intensity"]["zone"] == "DE"
    assert data["missing"] == []


def test_metrics_are_prometheus_exposition_from_history_and_redis(client, filled, live_queue, queue_name):
    text = client.get("/metrics").text
    labels = 'box="testbox",generation_settings="",measured="false",model="smollm2-135m",source="estimate",task="math"'
    assert f"joulebot_answers_total{{{labels}}} 4.0" in text
    assert f"joulebot_energy_joules_total{{{labels}}} 170.0" in text
    gpu = 'box="gpubox",generation_settings="",images="false",{}model="tinyllama",source="rapl+nvml"'
    assert "joulebot_energy_per_answer_joules_bucket{" + gpu.format('le="250.0",') + "} 0.0" in text
    assert "joulebot_energy_per_answer_joules_bucket{" + gpu.format('le="500.0",') + "} 3.0" in text
    assert "joulebot_energy_per_answer_joules_count{" + gpu.format("") + "} 3.0" in text
    assert f'joulebot_queue_length{{queue="{queue_name}"}} 1.0' in text
    assert f'joulebot_box_state{{queue="{queue_name}",state="cooling down"}} 1.0' in text
    assert 'joulebot_grid_intensity_grams_per_kwh{box="wallbox",provenance="static",zone="DE"}' in text
    assert re.search(r'joulebot_idle_power_watts\{box="wallbox"\} 6\d\.', text)
    assert 'joulebot_meter_failures_total{box="testbox"} 0.0' in text
    assert "joulebot_history_up 1.0" in text and "joulebot_redis_up 1.0" in text


def test_the_worker_serves_its_own_box_only(web_settings, filled):
    settings = web_settings.model_copy(update={"box_name": "gpubox"})
    port = free_port()
    server, thread = serve_worker_metrics(settings, port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        thread.join(5)
    assert 'joulebot_answers_total{box="gpubox"' in text
    assert 'box="testbox"' not in text and 'box="wallbox"' not in text


@pytest.mark.parametrize(
    ("route", "status", "sentence"),
    [
        ("/answers/999999", 404, "No answer #999999 in history."),
        ("/answers/abc", 404, "There is no such page here."),
        ("/models/no-such-model", 404, "No model named 'no-such-model' has answers in history."),
        ("/?box=nowhere", 404, "No box named 'nowhere' has answers in history."),
        ("/answers?model=nobody", 404, "No model named 'nobody' has answers in history."),
        (
            "/?metric=watts",
            400,
            "'metric' must be one of sci, j_answer, j_above_idle, j_token, j_prompt_token, j_output_token,"
            " not 'watts'.",
        ),
        ("/answers?page=two", 400, "'page' must be a whole number from 1 to 1000000, not 'two'."),
        ("/answers?page=0", 400, "'page' must be from 1 to 1000000, not 0."),
        ("/?colour=red", 400, "Unknown query parameter 'colour'"),
        ("/api/answers.json?n=100000", 400, "'n' must be from 1 to 500, not 100000."),
        ("/api/answers/999999.json", 404, "No answer #999999 in history."),
        ("/api/models/nope.json", 404, "No model named 'nope' has answers in history."),
        ("/api/table.csv?metric=x", 400, "'metric' must be one of"),
        ("/api/table.json?box=nowhere", 404, "No box named 'nowhere' has answers in history."),
    ],
)
def test_bad_input_is_a_404_or_400_page_with_a_sentence(client, route, status, sentence):
    response = client.get(route)
    assert response.status_code == status
    if route.startswith("/api/"):
        assert sentence in response.json()["error"]
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert sentence.replace("'", "&#39;") in response.text and "Traceback" not in response.text


def test_an_answer_number_beyond_any_row_is_a_404_not_a_server_error(client):
    for number in (2**31, 2**63, 10**30):  # beyond PostgreSQL's INTEGER; SQLite's; any integer
        page = client.get(f"/answers/{number}")
        assert page.status_code == 404 and f"No answer #{number} in history." in page.text
        data = client.get(f"/api/answers/{number}.json")
        assert data.status_code == 404 and data.json()["error"] == f"No answer #{number} in history."
    assert client.get(f"/answers/{2**31 - 1}").status_code == 404  # the largest that can exist: looked up


def test_a_model_name_with_slashes_has_its_pages(client, filled):
    name = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"  # as Ollama names a model pulled from Hugging Face
    filled.store.record(make_result(model=name, total_j=12.5))
    listed = client.get("/models").text
    link = re.search(r'href="(/models/hf\.co[^"]*)"', listed)
    assert link, listed
    page = client.get(link.group(1))
    assert page.status_code == 200 and f"<h1>{name}" in page.text.replace("&#39;", "'")
    data = client.get(f"/api/models/{name}.json")
    assert data.status_code == 200 and data.json()["model"] == name
    assert client.get(f"/answers?model={name}").status_code == 200
    assert client.get("/api/models/hf.co/nobody/nothing.json").status_code == 404
    gone = client.get("/models/", follow_redirects=False)  # still the list, not a model without a name
    assert gone.status_code in (301, 307) and gone.headers["location"].endswith("/models")


SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


def test_every_response_carries_the_browser_security_headers(client, filled, tmp_path):
    token = filled.tokens[0]
    routes = [
        *PUBLIC_ROUTES,
        f"/answers/{filled.measured_id}",
        f"/api/answers/{filled.measured_id}.json",
        f"/a/{token}",
        "/answers/999999",  # 404 page
        "/api/answers/999999.json",  # 404 JSON
        "/?metric=watts",  # 400
        "/no/such/page",
    ]
    for route in routes:
        response = client.get(route)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name, "").startswith(value), (route, name, response.headers.get(name))
    assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    with TestClient(create_app(make_settings(tmp_path / "down", database_url=nowhere))) as down:
        response = down.get("/answers/1")  # 503: the history is down
        assert response.status_code == 503 and response.headers["x-frame-options"] == "DENY"


def test_an_empty_history_says_how_to_get_data(tmp_path, served_history_url, system_redis_url):
    if served_history_url.startswith("postgresql"):
        HistoryStore.open(served_history_url).engine.dispose()  # migrated, no rows
    settings = make_settings(tmp_path / "d", database_url=served_history_url, redis_url=system_redis_url)
    with TestClient(create_app(settings)) as client:
        for route in ("/", "/answers", "/models", "/boxes"):
            response = client.get(route)
            assert response.status_code == 200
            assert "joulebot ask" in response.text and "Traceback" not in response.text
        assert client.get("/api/table.json").json()["rows"] == []
        assert client.get("/api/answers.json").json()["answers"] == []
        assert "joulebot_history_up 1.0" in client.get("/metrics").text
    if served_history_url.startswith("sqlite"):
        assert not (tmp_path / "history.sqlite3").exists()  # read-only: a missing file is not created


def test_the_app_keeps_serving_with_the_database_or_redis_down(tmp_path, filled, served_history_url):
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    settings = make_settings(tmp_path / "d", database_url=nowhere, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        for route in ("/", "/answers", "/boxes", "/models", "/boxes/rows"):
            response = client.get(route)
            assert response.status_code == 200, route
            assert "The history database is not reachable (OperationalError)" in response.text
        assert "Redis is not reachable" in client.get("/boxes").text
        assert client.get("/answers/1").status_code == 503
        assert client.get("/api/answers.json").status_code == 503
        assert "not reachable" in client.get("/api/table.json").json()["error"]
        text = client.get("/metrics").text
        assert "joulebot_history_up 0.0" in text and "joulebot_redis_up 0.0" in text
    settings = make_settings(
        tmp_path / "e", database_url=served_history_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with TestClient(create_app(settings)) as client:  # Redis alone down: history pages whole, boxes with a banner
        assert "Redis" not in client.get("/").text and "n = 4" in client.get("/?metric=j_answer").text
        boxes = client.get("/boxes").text
        assert "Redis is not reachable" in boxes and "wallbox" in boxes
    with TestClient(create_app(make_settings(tmp_path / "f", database_url=served_history_url))) as client:
        assert "The embedded Redis is not running" in client.get("/boxes").text  # and nothing started it
    assert not (tmp_path / "f" / "redis.sock").exists()


def test_the_dashboard_writes_nothing(tmp_path, filled, served_history_url, system_redis_url, queue_name):
    """The PostgreSQL session is read-only; the SQLite file is opened read-only."""
    settings = make_settings(tmp_path / "d", database_url=served_history_url, redis_url=system_redis_url)
    app = create_app(settings)
    with TestClient(app) as client:
        client.get("/")
    from joulebot.web.history_view import HistoryView

    view = HistoryView(served_history_url)
    with pytest.raises(sqlalchemy.exc.DBAPIError), view.engine.begin() as connection:
        connection.execute(sqlalchemy.text("DELETE FROM exchanges"))
    view.close()
    assert HistoryStore(served_history_url).get(filled.measured_id) is not None


def test_an_older_history_is_migrated_and_shown(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = sqlalchemy.create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        row = make_result().model_dump(mode="json")
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO exchanges (request_id, platform, model, category, prompt, answer, prompt_tokens,"
                " completion_tokens, started_at, seconds, load_s, energy_total_j, energy_attributable_j, idle_w,"
                " energy_source, energy_measured, intensity_g_per_kwh, intensity_zone, intensity_provenance,"
                " operational_g, embodied_g, sci_g, box, result, created_at) VALUES ('old', 'cli', 'm', 'math', 'p',"
                " 'a', 1, 2, '2026-01-01 00:00:00', 1.0, 0.1, 10.0, 5.0, 5.0, 'estimate', 0, 380, 'DE', 'static',"
                " 0.001, 0.0001, 0.0011, 'oldbox', :result, '2026-01-01 00:00:00')"
            ),
            {"result": json.dumps(row)},
        )
    migrate(engine)
    settings = make_settings(tmp_path / "d", database_url=url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        html = client.get("/answers/1").text
        assert "No samples: estimate gives one figure per window" in html and "10.0 J" in html
        assert client.get("/api/answers/1.json").json()["meter_failures"] == 0


@pytest.mark.unit
def test_the_footer_links_to_the_private_page_when_public_url_is_set():
    result = make_result().model_copy(update={"share_token": "tok123", "exchange_id": 7})
    assert footer(result, public_url="https://joule.example/").endswith("🔗 https://joule.example/a/tok123")
    assert "🔗" not in footer(result)
    assert "🔗" not in footer(result.model_copy(update={"exchange_id": None}), public_url="https://joule.example")


def test_joulebot_web_serves_over_uvicorn_and_refuses_a_busy_port(
    tmp_path, filled, served_history_url, system_redis_url
):
    settings = make_settings(tmp_path / "d", database_url=served_history_url, redis_url=system_redis_url)
    port = free_port()
    env = cli_env(settings, WEB_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "joulebot", "web"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/?metric=j_answer", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "joulebot web did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and "n = 4" in response.text
        busy = run_cli(settings, "web", "--port", str(port), timeout=60)
        assert busy.returncode == 2
        assert busy.stderr.strip().startswith(f"joulebot: cannot listen on 127.0.0.1:{port}")
        assert len(busy.stderr.strip().splitlines()) == 1
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.e2e
def test_a_prompt_asked_through_the_cli_is_only_on_its_private_link(embedded):
    """Through the real CLI, queue and worker (the model answers through the Ollama stand-in)."""
    prompt = f"Translate 'green pancake {uuid.uuid4().hex[:6]}' into French"
    ollama = OllamaStandIn()
    try:
        asked = run_cli(
            embedded, "ask", prompt, "--model", "llama3", OLLAMA_HOST=ollama.url, PUBLIC_URL="https://joule.example/"
        )
    finally:
        ollama.close()
    assert asked.returncode == 0, asked.stderr
    link = re.search(r"🔗 https://joule\.example/a/(\S+)", asked.stdout)
    assert link, asked.stdout
    token = link.group(1)
    with TestClient(create_app(embedded)) as client:
        answers = client.get("/api/answers.json").json()["answers"]
        assert [a["model"] for a in answers] == ["llama3"]
        exchange_id = answers[0]["id"]
        for route in [*PUBLIC_ROUTES, f"/answers/{exchange_id}", f"/api/answers/{exchange_id}.json", "/models/llama3"]:
            response = client.get(route)
            assert response.status_code in (200, 404), route  # the fixed routes name models and boxes of other tests
            assert prompt not in response.text and str(escape(prompt)) not in response.text, route
            assert "green pancake" not in response.text and token not in response.text, route
        private = client.get(f"/a/{token}").text
        assert str(escape(prompt)) in private and "Paris is the capital of France." in private
        assert client.get(f"/a/{token[:-2]}").status_code == 404
