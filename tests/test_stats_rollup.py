"""The statistics' running sums (`stats_rollup`) against the rows they sum, on SQLite and PostgreSQL.

Every statistic reads the rollup; these tests write a varied history through the store (models,
tasks, boxes, meters, measured and estimated, later turns, reloads, answers without a figure,
scores set, cleared and set again, forgotten users, expired words) and check the rollup against
the same sums taken straight from the rows (`rollup.direct`), and the statistics against Python's
own arithmetic over the rows.
"""

from __future__ import annotations

import statistics
import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy
from alembic import command
from factories import NOW, make_result

from joulebot.attachments.parts import ImageInput
from joulebot.history import HistoryStore, rollup
from joulebot.history.engine import alembic_config
from joulebot.history.tables import Exchange

MODELS = ("mistral", "tinyllama", "qwen")
MADE_NOW = dict.fromkeys(MODELS, "")  # each model's generation settings now: those its answers were made with
CATEGORIES = ("code", "math", "translation")
RUN = "bench-r1-"  # one benchmark run's request ids start so


@pytest.fixture
def store(history_url) -> Any:
    opened = HistoryStore.open(history_url)
    yield opened
    opened.engine.dispose()


def _answer(store: HistoryStore, i: int, request_id: str, model: str | None = None, images: bool = True) -> int:
    """The i-th answer of a varied history (every case the statistics tell apart or leave out)."""
    measured = i % 5 == 0
    result = make_result(
        model=model or MODELS[i % 3],
        total_j=None if i % 17 == 16 else 1.0 + (i * 7 % 23) * 1.5,  # no figure: in no statistic
        seconds=0.5 + i % 5,
        idle_w=None if i % 4 == 0 else 2.0,  # no idle baseline: no attributable energy
        measured=measured,
        source="rapl+nvml" if measured else "estimate",
        box="box-a" if i % 2 else "box-b",
        user_id=f"user{i % 4}",
        tokens=10 + i % 9,
    )
    result.category = CATEGORIES[i // 3 % 3]
    result.request.id = request_id
    if i % 6 == 5:  # a later turn of a conversation
        result.request.turn, result.request.conversation_id = 2, f"c{i}"
    if i % 11 == 10:  # the model was loaded again inside the window: not comparable
        result.energy.includes_reload = True
    if i % 13 == 12:  # stored before answers had bands
        result.energy.uncertainty_j = None
    if images and i % 7 == 6:  # the question had an image (and a later turn's conversation carried one more)
        shown = ImageInput(
            name="p.png", data="", media_type="image/png", width=8, height=8, size_bytes=9, sha256="0" * 64,
            source_format="PNG",
        )  # fmt: skip
        result.request.images = [shown]
        result.context_images = 0 if result.request.turn == 1 else 1
    if i % 19 == 18:  # no carbon figures
        result.carbon.operational_g = result.carbon.sci_g = None
    if i % 10 == 3:
        result.started_at = NOW - timedelta(days=400)  # its words expire
    return store.record(result)


def _score(store: HistoryStore, ids: list[int], shift: int = 0) -> None:
    """Right, wrong, and unscored (no reference: a note, no verdict) answers; a third left unchecked."""
    for i, exchange_id in enumerate(ids):
        kind = (i + shift) % 6
        if kind in (0, 1):
            continue
        correct = None if kind == 2 else kind != 5
        store.set_score(exchange_id, correct, None if correct is None else float(correct), "test")


def varied_history(store: HistoryStore, n: int = 96, images: bool = True) -> list[int]:
    ids = [_answer(store, i, f"{RUN}{i:03d}" if i < n // 3 else f"chat-{i:03d}", images=images) for i in range(n)]
    _score(store, ids)
    assert store.clear_scores(RUN) == n // 3  # the run is checked again with changed references
    _score(store, ids[: n // 3], shift=1)
    _score(store, ids[n // 3 : n // 2], shift=2)  # scores set twice
    return ids


def _keyed(store: HistoryStore, query: Any) -> dict[tuple, dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = [rollup.as_numbers(row) for row in connection.execute(query)]
    return {tuple(row[k] for k in rollup.KEYS): {f: row[f] for f in rollup.FIGURES} for row in rows}


def assert_rollup_is_the_rows(store: HistoryStore) -> None:
    """Every rollup row equals the same sums taken from the exchanges (floats up to the order of summing)."""
    kept, recomputed = _keyed(store, sqlalchemy.select(rollup.STATS_ROLLUP)), _keyed(store, rollup.direct())
    assert kept.keys() == recomputed.keys()
    for key, figures in recomputed.items():
        for name, value in figures.items():
            assert kept[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)


def _same_stats(got: list, expected: list) -> None:
    def key(s: Any) -> tuple:
        return (s.model, s.category, s.box, s.energy_source, s.measured, s.with_images)

    got, expected = sorted(got, key=key), sorted(expected, key=key)
    assert [key(s) for s in got] == [key(s) for s in expected]
    for a, b in zip(got, expected, strict=True):
        for name, value in b.model_dump().items():
            same = pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value
            assert getattr(a, name) == same, (key(a), name)


def test_the_rollup_equals_the_sums_over_the_rows_after_every_kind_of_write(store):
    varied_history(store)
    assert_rollup_is_the_rows(store)
    # one statistics definition, two sources: the rollup and the rows themselves
    for by_category, box, continued, images in [
        (True, None, False, False),
        (True, None, True, False),
        (True, "box-a", False, False),
        (False, None, False, False),
        (True, None, False, True),
        (True, None, True, True),
        (False, None, False, None),
    ]:
        _same_stats(
            store._aggregate(None, by_category, box, continued, images=images),
            store._aggregate(None, by_category, box, continued, from_rows=True, images=images),
        )
    before = (store.category_stats(), store.model_stats(), store.box_means("box-a", MADE_NOW))
    assert store.forget("cli", "user1") and store.scrub_older_than(30) > 0  # words go, figures stay
    assert (store.category_stats(), store.model_stats(), store.box_means("box-a", MADE_NOW)) == before
    assert_rollup_is_the_rows(store)


def _rows(store: HistoryStore) -> list[Exchange]:
    with store.engine.connect() as connection:
        return list(connection.execute(sqlalchemy.select(Exchange.__table__)).all())  # type: ignore[attr-defined]


def test_statistics_equal_pythons_arithmetic_over_the_rows(store):
    """The same figures from the rows loaded into Python: what the old per-row code computed."""
    varied_history(store)
    rows = [r for r in _rows(store) if r.energy_total_j is not None]
    assert any(r.image_count and r.turn == 1 for r in rows) and any(r.image_count and r.turn > 1 for r in rows)
    for images in (False, True):  # the answers that read images: a basis of their own
        groups: dict[tuple, list] = {}
        for r in rows:
            if r.turn == 1 and not r.energy_includes_reload and (r.image_count > 0) == images:
                groups.setdefault((r.model, r.category, r.box, r.energy_source, r.energy_measured), []).append(r)
        stats = store.category_stats(images=images)
        assert [(s.model, s.category, s.box, s.energy_source, s.measured) for s in stats] == sorted(groups)
        for s in stats:
            _same_as_python(s, groups[(s.model, s.category, s.box, s.energy_source, s.measured)])
        assert sum(s.answers for s in store.category_stats(continued=True, images=images)) == sum(
            1 for r in rows if r.turn > 1 and not r.energy_includes_reload and (r.image_count > 0) == images
        )
    text = [r for r in rows if not r.image_count]
    groups = {}
    for r in text:
        if r.turn == 1 and not r.energy_includes_reload:
            groups.setdefault((r.model, r.category, r.box, r.energy_source, r.energy_measured), []).append(r)
    means = {(m["model"], m["category"]): m for m in store.box_means("box-b", MADE_NOW)}
    box_rows = [r for r in text if r.box == "box-b"]  # routing: every text answer with a figure, reloads and turns too
    assert means.keys() == {(r.model, r.category) for r in box_rows}
    for (model, category), got in means.items():
        mine = [r for r in box_rows if (r.model, r.category) == (model, category)]
        assert got["answers"] == len(mine)
        assert got["mean_seconds"] == pytest.approx(statistics.fmean(r.seconds for r in mine))
    hint = store._hint_sums_for("code", "box-a", "estimate")
    for (model, _settings), sums in hint.items():  # one set of settings here
        mine = [r for r in groups.get((model, "code", "box-a", "estimate", False), [])]
        assert sums.answers == len(mine) and sums.total_j == pytest.approx(sum(r.energy_total_j for r in mine))
        assert (sums.scored, sums.right) == (
            sum(r.correct is not None for r in mine),
            sum(bool(r.correct) for r in mine),
        )


def _same_as_python(s: Any, group: list) -> None:
    """One statistics row against Python's arithmetic over its answers."""
    energies = [r.energy_total_j for r in group]
    scored = [r for r in group if r.correct is not None]
    right = [r for r in scored if r.correct]
    sci = [r.sci_g for r in group if r.sci_g is not None]
    attributable = [r.energy_attributable_j for r in group if r.energy_attributable_j is not None]
    assert s.answers == len(group) and s.scored == len(scored) and s.correct == len(right)
    assert s.mean_total_j == pytest.approx(statistics.fmean(energies), rel=1e-12)
    assert s.stdev_total_j == pytest.approx(statistics.stdev(energies) if len(energies) > 1 else 0.0, rel=1e-9)
    assert s.mean_sci_g == (pytest.approx(statistics.fmean(sci), rel=1e-12) if sci else None)
    assert s.mean_attributable_j == (pytest.approx(statistics.fmean(attributable)) if attributable else None)
    assert s.j_per_token == pytest.approx(sum(energies) / sum(r.completion_tokens for r in group))
    assert s.j_per_correct == (pytest.approx(sum(r.energy_total_j for r in scored) / len(right)) if right else None)


def test_one_runs_statistics_come_from_its_own_rows_through_an_index(store):
    varied_history(store, n=60)
    run = store.category_stats(RUN)
    assert sum(s.answers for s in run) == sum(
        1
        for r in _rows(store)
        if r.request_id.startswith(RUN)
        and r.energy_total_j is not None
        and r.turn == 1
        and not r.energy_includes_reload
        and not r.image_count
    )
    assert sum(s.answers for s in run) < sum(s.answers for s in store.category_stats())
    unchecked = {r.request_id for r in _rows(store) if r.request_id.startswith(RUN) and r.score_note is None}
    assert unchecked and {t.request_id for t in store.to_score(RUN)} == unchecked  # the same filter
    # a prefix is a prefix: case-sensitive, LIKE's wildcards are plain characters
    for other in ("BENCH-r1-", "bench-r_-", "bench-r%"):
        assert store.category_stats(other) == [] and store.request_ids(other) == set()
    assert len(store.request_ids(RUN)) == 20

    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        sent.append((statement, parameters))

    sqlalchemy.event.listen(store.engine, "before_cursor_execute", capture)
    store.category_stats(RUN)
    sqlalchemy.event.remove(store.engine, "before_cursor_execute", capture)
    ((statement, parameters),) = sent
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            explain = f"EXPLAIN QUERY PLAN {statement}"
        else:  # a table this small is read whole by choice: ask whether an index can serve
            connection.exec_driver_sql("SET enable_seqscan = off")
            explain = f"EXPLAIN {statement}"
        plan = " | ".join(str(row[-1]) for row in connection.exec_driver_sql(explain, parameters).all())
    assert "request_id" in plan and ("USING INDEX" in plan or "Index" in plan), plan
    assert "SCAN exchanges |" not in f"{plan} |" and "Seq Scan on exchanges" not in plan, plan


def test_two_writers_at_once_lose_no_update(store, history_url):
    """Two stores (two workers of a fleet) record and score answers of the same groups at the same time."""
    each = 40
    stores = [store, HistoryStore(history_url)]
    start = threading.Barrier(2)
    shared: list[int] = [_answer(store, 1, f"shared-{i}", model="mistral") for i in range(3)]
    failures: list[BaseException] = []

    def work(number: int) -> None:
        try:
            start.wait()
            mine = [_answer(stores[number], i % 4, f"w{number}-{i}", model="mistral") for i in range(each)]
            _score(stores[number], mine, shift=number)
            for i in range(60):  # both score the same answers again and again: the last verdict stands
                stores[number].set_score(shared[i % len(shared)], (i + number) % 2 == 0, 1.0, "race")
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stores[1].engine.dispose()
    assert not failures, failures
    assert_rollup_is_the_rows(store)
    with store.engine.connect() as connection:
        answers = connection.execute(sqlalchemy.select(sqlalchemy.func.sum(rollup.R.answers))).scalar()
        rows = connection.execute(
            sqlalchemy.select(sqlalchemy.func.count()).where(Exchange.energy_total_j.is_not(None))  # type: ignore[union-attr]
        ).scalar()
    assert int(answers) == rows == 2 * each + len(shared)


def test_the_migration_fills_the_rollup_from_existing_rows_and_goes_back(store, history_url):
    varied_history(store, n=48, images=False)  # going below 0024 forgets which questions had images
    kept = _keyed(store, sqlalchemy.select(rollup.STATS_ROLLUP))
    stats = store.category_stats()
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0020")
    with store.engine.connect() as connection:
        inspector = sqlalchemy.inspect(connection)
        assert "stats_rollup" not in inspector.get_table_names()
        assert "ix_exchanges_stats" in {i["name"] for i in inspector.get_indexes("exchanges")}
    reopened = HistoryStore.open(history_url)
    filled = _keyed(reopened, sqlalchemy.select(rollup.STATS_ROLLUP))
    assert filled.keys() == kept.keys()
    for key, figures in kept.items():
        assert filled[key] == pytest.approx(figures, rel=1e-9, abs=1e-9), key
    _same_stats(reopened.category_stats(), stats)
    reopened.engine.dispose()


@pytest.mark.unit
def test_statistics_read_the_rollup_not_the_rows(tmp_path):
    """`joulebot stats`, /stats, the hint and routing's means read `stats_rollup` only (SQLite's own plans)."""
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    for energy in range(6):
        store.record(make_result(total_j=float(energy + 1)))
    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        sent.append((statement, parameters))

    sqlalchemy.event.listen(store.engine, "before_cursor_execute", capture)
    store.greener_hint("questions", "smollm2-135m", ["tinyllama"], box="testbox", source="estimate")
    store.category_stats()
    store.model_stats()
    store.box_means("testbox", {"smollm2-135m": ""})
    sqlalchemy.event.remove(store.engine, "before_cursor_execute", capture)
    assert len(sent) == 4  # one aggregate each
    with store.engine.connect() as connection:
        for statement, parameters in sent:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            plan = " | ".join(row[-1] for row in rows)
            assert "stats_rollup" in plan and "exchanges" not in plan, plan
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.engine.dispose()


def _per_answer(row: Any, metric: str) -> float | None:
    """One answer's value of a dashboard metric, as Python computes it from the row."""
    total, tokens, prompt = row["energy_total_j"], row["completion_tokens"], row["prompt_tokens"]
    per_token = total / tokens if total is not None and tokens else None
    prefill, decode = row["prefill_j"], row["decode_j"]
    values = {
        "sci": row["sci_g"],
        "j_answer": total,
        "j_above_idle": row["energy_attributable_j"],
        "j_token": per_token,
        "j_prompt_token": prefill / prompt if prefill is not None and total is not None and prompt else None,
        "j_output_token": decode / tokens if decode is not None and total is not None and tokens else None,
    }
    return values[metric]


def test_the_dashboard_and_metrics_read_sums_that_agree_with_the_rows(store, history_url):
    """The dashboard's table (every metric) and /metrics' counters and histogram come from the rollup;
    they equal Python's arithmetic over the rows, and /metrics still counts the answers without a
    total energy (which the rollup leaves out) with their meter failures."""
    from joulebot.history.aggregates import METRICS
    from joulebot.web.history_view import HistoryView

    varied_history(store, n=96)
    with store.engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(Exchange.__table__)).mappings().all()
    assert any(row["energy_total_j"] is None for row in rows), "the history has answers without a figure"
    view = HistoryView(history_url)
    try:
        for metric in METRICS.values():
            expected: dict[tuple, list[float]] = {}
            for row in rows:
                value = _per_answer(row, metric.key)
                if value is not None:
                    basis = (row["box"], row["energy_source"], bool(row["energy_measured"]), row["image_count"] > 0)
                    kind = (row["model"], row["generation_settings"], row["category"])
                    expected.setdefault((*basis, *kind), []).append(value)
            got = {
                (s.basis.box, s.basis.source, s.basis.measured, s.basis.images, row.model, row.settings, category): mean
                for s in view.table(metric)
                for (row, category), mean in s.cells.items()
            }
            assert got.keys() == expected.keys(), metric.key
            for key, values in expected.items():
                assert got[key].n == len(values), (metric.key, key)
                assert got[key].mean == pytest.approx(statistics.fmean(values), rel=1e-9), (metric.key, key)

        counted: dict[tuple, list[float]] = {}
        for row in rows:
            key = (row["model"], row["box"], row["category"], row["energy_source"], bool(row["energy_measured"]))
            figures = counted.setdefault((*key, row["generation_settings"]), [0, 0.0, 0])
            figures[0] += 1
            figures[1] += row["energy_total_j"] or 0.0
            figures[2] += row["meter_failures"]
        totals = {(m, b, c, s, bool(x), g): [n, j, f] for m, b, c, s, x, g, n, j, f in view.totals()}
        assert totals.keys() == counted.keys()
        for key, (n, joules, failures) in counted.items():
            assert totals[key][0] == n and totals[key][2] == failures, key
            assert totals[key][1] == pytest.approx(joules, rel=1e-9, abs=1e-9), key
        assert sum(f for *_, f in view.totals()) > 0, "an answer without a figure had a failed meter"

        for model, box, source, settings, images, *counts in view.energy_buckets():
            *at_most, count, total = counts
            mine = [
                row["energy_total_j"]
                for row in rows
                if (row["model"], row["box"], row["energy_source"], row["generation_settings"], row["image_count"] > 0)
                == (model, box, source, settings, bool(images))
                and row["energy_total_j"] is not None
            ]
            assert int(count) == len(mine) and float(total) == pytest.approx(sum(mine), rel=1e-9)
            assert [int(c) for c in at_most] == [sum(e <= b for e in mine) for b in rollup.ENERGY_BUCKETS]
    finally:
        view.close()


@pytest.mark.unit
def test_the_dashboard_reads_no_exchange_rows_but_the_unmeasured_few(tmp_path):
    """SQLite's own plans: the table and /metrics read `stats_rollup`; the answers without a total
    energy are found through their partial index, a box's latest answer by one index probe: the
    exchanges are never scanned."""
    from joulebot.history.aggregates import METRICS
    from joulebot.web.history_view import HistoryView

    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    store = HistoryStore.open(url)
    for energy in range(6):
        store.record(make_result(total_j=float(energy + 1)))
    store.record(make_result(total_j=None))
    view = HistoryView(url)
    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        sent.append((statement, parameters))

    sqlalchemy.event.listen(view.engine, "before_cursor_execute", capture)
    for metric in METRICS.values():
        view.table(metric)
    view.totals()
    view.energy_buckets()
    summaries = view.box_summaries()
    assert view.boxes() == ["testbox"] and view.models() == ["smollm2-135m"]
    sqlalchemy.event.remove(view.engine, "before_cursor_execute", capture)
    assert summaries["testbox"]["answers_last_hour"] == 0  # the factory's answers are older
    with store.engine.connect() as connection:
        steps = [
            row[-1]
            for statement, parameters in sent
            if statement.lstrip().upper().startswith(("SELECT", "WITH"))
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        ]
    on_rows = [step for step in steps if "exchanges" in step]
    assert on_rows and any("stats_rollup" in step for step in steps)
    for step in on_rows:  # an index probe, or the unmeasured answers' own small index
        assert step.startswith("SEARCH") or "ix_exchanges_no_energy" in step, step
    view.close()
    store.engine.dispose()
