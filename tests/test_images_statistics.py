"""Answers that read images are a statistics basis of their own: counted in their own rows and cells on
every surface (the statistics, /stats, `joulebot stats` and its CSV, the dashboard's table, /metrics),
never averaged together with text-only answers; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy
from alembic import command
from factories import make_result
from testenv import make_settings, run_cli

from joulebot.attachments.parts import ImageInput
from joulebot.exchange import Result
from joulebot.history import HistoryStore, rollup
from joulebot.history.engine import alembic_config

TEXT_J, IMAGE_J, LATER_J = 40.0, 400.0, 700.0


def image(name: str = "cat.png") -> ImageInput:
    """An image as a Result keeps it: what it was, never its pixels."""
    return ImageInput(
        name=name, data="", media_type="image/jpeg", width=768, height=512, size_bytes=51_234, sha256="ab" * 32,
        source_format="PNG",
    )  # fmt: skip


def looking(total_j: float, own: int = 1, carried: int = 0, turn: int = 1) -> Result:
    """An answer that read `own` images of its question and `carried` ones of earlier turns."""
    result = make_result(total_j=total_j)
    request = result.request.model_copy(update={"images": [image() for _ in range(own)], "turn": turn})
    return result.model_copy(update={"request": request, "context_images": carried})


@pytest.fixture
def store(history_url):
    opened = HistoryStore.open(history_url)
    for _ in range(3):
        opened.record(make_result(total_j=TEXT_J))
        opened.record(looking(IMAGE_J))
    opened.record(looking(LATER_J, own=0, carried=1, turn=2))  # a follow-up about the photo: it read it again
    yield opened
    opened.engine.dispose()


def test_answers_with_images_are_counted_in_their_own_rows_never_with_text_only_ones(store):
    (text,) = store.category_stats()
    (seen,) = store.category_stats(images=True)
    assert (text.answers, text.mean_total_j, text.with_images) == (3, pytest.approx(TEXT_J), False)
    assert (seen.answers, seen.mean_total_j, seen.with_images) == (3, pytest.approx(IMAGE_J), True)
    assert seen.basis != text.basis and "with images" in seen.basis.label()
    (later,) = store.category_stats(continued=True, images=True)
    assert later.answers == 1 and later.mean_total_j == pytest.approx(LATER_J), "carried images count too"
    assert store.category_stats(continued=True) == [], "no text-only later turn"
    models = sorted(store.model_stats(), key=lambda s: s.with_images)
    assert [(m.with_images, m.answers, m.mean_total_j) for m in models] == [
        (False, 3, pytest.approx(TEXT_J)),
        (True, 3, pytest.approx(IMAGE_J)),
    ]
    (means,) = store.box_means("testbox", {"smollm2-135m": ""})  # its settings now: those of its answers
    assert means["mean_total_j"] == pytest.approx(TEXT_J), "routing's expectation: text answers only"
    with store.engine.connect() as connection:
        counts = connection.execute(sqlalchemy.select(rollup.X.image_count).order_by(rollup.X.id)).scalars().all()
    assert counts == [0, 1, 0, 1, 0, 1, 1]
    _rollup_is_the_rows(store)


def _rollup_is_the_rows(store: HistoryStore) -> None:
    def keyed(query) -> dict:
        with store.engine.connect() as connection:
            rows = [rollup.as_numbers(row) for row in connection.execute(query)]
        return {tuple(row[k] for k in rollup.KEYS): (row["answers"], row["total_j"]) for row in rows}

    kept = keyed(sqlalchemy.select(rollup.STATS_ROLLUP))
    assert kept == keyed(rollup.direct()) and any(key[-1] for key in kept)  # sums of whole joules: exact


def test_the_migration_counts_the_answers_with_images_it_left_out_and_goes_back(store, history_url):
    """Before 0028 the answers with images were in no statistic: going up counts them, in their own rows."""
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0027")
    with store.engine.connect() as connection:
        assert "image_count" not in {c["name"] for c in sqlalchemy.inspect(connection).get_columns("exchanges")}
        answers = connection.execute(sqlalchemy.text("SELECT SUM(answers) FROM stats_rollup")).scalar()
    # the three text answers, and the follow-up whose question had no image of its own: 0027 knew no carried ones
    assert int(answers) == 4, "at 0027 the rollup leaves the questions with images out"
    reopened = HistoryStore.open(history_url)  # migrates up again: image_count from each row's own images
    (seen,) = reopened.category_stats(images=True)
    assert seen.answers == 3 and seen.mean_total_j == pytest.approx(IMAGE_J)
    (text,) = reopened.category_stats()
    assert text.answers == 3 and text.mean_total_j == pytest.approx(TEXT_J)
    _rollup_is_the_rows(reopened)
    reopened.engine.dispose()


def test_stats_show_answers_with_images_in_tables_of_their_own(tmp_path, system_redis_url):
    from joulebot.chat.service import ChatService

    settings = make_settings(tmp_path / "data", redis_url=system_redis_url)
    chat = ChatService(settings, "telegram")
    for _ in range(3):
        chat.history.record(make_result(total_j=TEXT_J))
        chat.history.record(looking(IMAGE_J))
    text = chat.reports.stats_text()
    first, images = text.split("Questions with images")
    assert "smollm2-135m 40.0 ± " in first and "400" not in first
    assert "testbox · estimate · with images (estimated, not a measurement):" in images
    assert "smollm2-135m 400 ± " in images
    printed = run_cli(settings, "stats")
    assert printed.returncode == 0, printed.stderr
    plain, seen = printed.stdout.split("answers that read images (never averaged with text-only ones):")
    assert "40.0 ±" in plain and "400" not in plain and "400 ±" in seen
    rows = list(csv.DictReader(io.StringIO(run_cli(settings, "stats", "--csv").stdout)))
    assert sorted((r["with_images"], r["answers"], r["mean_total_j"]) for r in rows) == [
        ("False", "3", "40.0"),
        ("True", "3", "400.0"),
    ]


def test_the_dashboard_table_and_metrics_keep_answers_with_images_apart(store, history_url, tmp_path):
    from joulebot.history.aggregates import METRICS
    from joulebot.web.history_view import HistoryView, TableRow
    from joulebot.web.metrics import JoulebotCollector
    from joulebot.web.rows import table_rows

    view = HistoryView(history_url)
    try:
        sections = {s.basis.images: s for s in view.table(METRICS["j_answer"])}
        assert sections.keys() == {False, True}
        cell = (TableRow("smollm2-135m", ""), "questions")  # one row: the answers' one set of settings
        assert sections[False].cells[cell].mean == pytest.approx(TEXT_J)
        seen = sections[True].cells[cell]
        assert seen.n == 4 and seen.mean == pytest.approx((3 * IMAGE_J + LATER_J) / 4)  # later turns too, as text
        rows = {r["with_images"]: r["n"] for r in table_rows(view, METRICS["j_answer"], None)}
        assert rows == {False: 3, True: 4}
        assert {b.images for b, _ in view.distribution("smollm2-135m", METRICS["j_answer"])} == {False, True}
        collector = JoulebotCollector(make_settings(tmp_path / "data", database_url=history_url), view)
        (histogram,) = [m for m in collector._history() if m.name == "joulebot_energy_per_answer_joules"]
        counts = {s.labels["images"]: s.value for s in histogram.samples if s.name.endswith("_count")}
        assert counts == {"false": 3.0, "true": 4.0}
    finally:
        view.close()
