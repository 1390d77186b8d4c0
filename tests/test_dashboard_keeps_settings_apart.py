"""The dashboard's own queries keep a model's answers made with different generation settings apart, as
the statistics do: the table (and its JSON and CSV), /metrics, a model's charts, /v1/models' means and
the means routing expects of a box — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from factories import make_result
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from testenv import make_settings

from joulebot.history import HistoryStore
from joulebot.web.app import create_app
from joulebot.web.history_view import HistoryView

GREEDY, SAMPLED = "temperature=0 repeat_penalty=1.1", "temperature=0.8 top_p=0.95"
MEANS = {GREEDY: 11.0, SAMPLED: 101.0}  # 10, 11, 12 J and 100, 101, 102 J: pooled, 56 J, which neither made


@pytest.fixture
def history(served_history_url):
    store = HistoryStore.open(served_history_url)
    for i in range(3):
        for settings, mean in MEANS.items():
            store.record(make_result(total_j=mean - 1 + i, generation_settings=settings, prompt=f"q{i}"))
    yield store
    store.engine.dispose()


@pytest.fixture
def client(tmp_path, history, served_history_url, system_redis_url):
    settings = make_settings(tmp_path / "data", database_url=served_history_url, redis_url=system_redis_url)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_table_has_a_row_per_settings_named_by_them(client):
    rows = client.get("/api/table.json?metric=j_answer").json()["rows"]
    assert {r["generation_settings"]: r["mean"] for r in rows} == pytest.approx(MEANS)
    assert {(r["model"], r["n"]) for r in rows} == {("smollm2-135m", 3)}
    exported = list(csv.DictReader(io.StringIO(client.get("/api/table.csv?metric=j_answer").text)))
    assert {r["generation_settings"] for r in exported} == set(MEANS)
    html = client.get("/?metric=j_answer").text
    assert f"smollm2-135m ({GREEDY})" in html and f"smollm2-135m ({SAMPLED})" in html
    assert html.count('<td class="cell"') == 2


def test_metrics_count_each_settings_apart(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    answers = {s.labels["generation_settings"]: s.value for s in families["joulebot_answers"].samples}
    assert answers == {GREEDY: 3.0, SAMPLED: 3.0}
    joules = {s.labels["generation_settings"]: s.value for s in families["joulebot_energy_joules"].samples}
    assert joules == pytest.approx({settings: 3 * mean for settings, mean in MEANS.items()})
    per_answer = families["joulebot_energy_per_answer_joules"].samples
    counts = {s.labels["generation_settings"]: s.value for s in per_answer if s.name.endswith("_count")}
    assert counts == {GREEDY: 3.0, SAMPLED: 3.0}
    at_most_25 = {s.labels["generation_settings"]: s.value for s in per_answer if s.labels.get("le") == "25.0"}
    assert at_most_25 == {GREEDY: 3.0, SAMPLED: 0.0}


def test_a_models_charts_are_drawn_per_settings(client):
    data = client.get("/api/models/smollm2-135m.json").json()
    values = {d["generation_settings"]: sorted(d["values"]) for d in data["distributions"] if d["metric"] == "j_answer"}
    assert values == {GREEDY: [10.0, 11.0, 12.0], SAMPLED: [100.0, 101.0, 102.0]}
    days = {d["generation_settings"]: [day["mean"] for day in d["days"]] for d in data["daily"]}
    assert days == {GREEDY: [pytest.approx(11.0)], SAMPLED: [pytest.approx(101.0)]}
    assert f'<span class="settings">{SAMPLED}</span>' in client.get("/models/smollm2-135m").text


def test_the_apis_model_means_and_routings_box_means_keep_settings_apart(history, served_history_url):
    view = HistoryView(served_history_url)
    try:
        means = view.model_means()[("smollm2-135m", "testbox")]
    finally:
        view.close()
    assert {settings: mean.mean for _, settings, mean in means} == pytest.approx(MEANS)
    for settings, mean in MEANS.items():  # what a box expects of the model: its answers with its settings now
        (expected,) = history.box_means("testbox", {"smollm2-135m": settings})
        assert expected["answers"] == 3 and expected["mean_total_j"] == pytest.approx(mean)
    assert history.box_means("testbox", {"tinyllama": GREEDY}) == [], "a model not offered now"
