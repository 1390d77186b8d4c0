"""The one statistics module: Student's t, the Wilson interval and a cell's ± 95 % against values
computed independently (published tables, Newcombe's worked examples, the GUM's Welch–Satterthwaite)."""

from __future__ import annotations

import csv
import io
import math
import statistics

import pytest

from joulebot.history.aggregates import METRICS
from joulebot.history.intervals import Basis, Mean, t95, wilson

# Two-sided 95 % quantiles of Student's t as printed in statistics tables (e.g. the NIST/SEMATECH
# e-Handbook of Statistical Methods, table 1.3.6.7.2), to the printed digit
PRINTED_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 11: 2.201, 12: 2.179, 30: 2.042, 100: 1.984}


@pytest.mark.unit
def test_t_quantile_matches_the_printed_table():
    for df, printed in PRINTED_T95.items():
        assert round(t95(df), 3) == printed, df
    assert t95(1000) == pytest.approx(1.962, abs=0.001) and t95(60) == pytest.approx(2.000, abs=0.002)
    with pytest.raises(ValueError):
        t95(0)


@pytest.mark.unit
def test_wilson_interval():
    assert wilson(0, 5) == (0.0, pytest.approx(0.4345, abs=1e-4))
    assert wilson(5, 5) == (pytest.approx(0.5655, abs=1e-4), 1.0)
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.unit
def test_wilson_interval_matches_newcombes_worked_examples():
    """Newcombe (1998), Statistics in Medicine 17:857, table II, method 3 (score, no continuity correction)."""
    examples = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (correct, n), (low, high) in examples.items():
        got = wilson(correct, n)
        assert (round(got[0], 4), round(got[1], 4)) == (low, high), (correct, n)


@pytest.mark.unit
def test_wilson_interval_agrees_with_scipys_binomial_test():
    from scipy.stats import binomtest

    for n in (1, 2, 5, 10, 37, 200):
        for correct in range(n + 1):
            expected = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
            low, high = wilson(correct, n)
            assert (low, high) == (pytest.approx(expected.low, abs=1e-12), pytest.approx(expected.high, abs=1e-12))


@pytest.mark.unit
def test_mean_and_interval_from_sums_match_the_textbook():
    values = [40.0, 42.0, 47.0, 41.0, 39.5, 44.0]
    mean = Mean.from_sums(len(values), sum(values), sum(v * v for v in values))
    assert mean.mean == pytest.approx(statistics.fmean(values))
    # Student's t to its printed digits
    assert mean.ci95 == pytest.approx(2.571 * statistics.stdev(values) / math.sqrt(6), rel=2e-4)
    assert Mean.from_sums(1, 5.0, 25.0).ci95 is None


@pytest.mark.unit
def test_the_meters_systematic_part_adds_root_sum_square_and_does_not_shrink_with_n():
    values = [40.0, 42.0, 47.0, 41.0, 39.5, 44.0]
    scatter = 2.571 * statistics.stdev(values) / math.sqrt(6)
    mean = Mean.from_sums(6, sum(values), sum(v * v for v in values), systematic_part=2.0)
    assert mean.ci95 == pytest.approx(math.sqrt(scatter**2 + 2.0**2), rel=2e-4)
    # a thousand identical answers: no scatter left, the meter's part stays whole
    assert Mean.from_sums(1000, 1000 * 50.0, 1000 * 2500.0, systematic_part=0.5).ci95 == pytest.approx(0.5)


@pytest.mark.unit
def test_the_interval_is_never_narrower_than_the_gums_welch_satterthwaite():
    """GUM G.4: u_c = √(u_A² + u_B²) expanded with t at the effective degrees of freedom. Adding the two
    expanded halves root-sum-square (type B at k = 1.96) is never narrower, for any n or mix."""
    from scipy.stats import norm, t

    z = norm.ppf(0.975)
    for n in (2, 3, 4, 6, 10, 30, 100):
        for scatter_s in (0.01, 0.3, 1.0, 3.0, 100.0):  # sample stdev, the meter's ± 95 % being 1
            values = [50.0 - scatter_s / 2, 50.0 + scatter_s / 2] * (n // 2) + [50.0] * (n % 2)
            s = statistics.stdev(values)
            ours = Mean.from_sums(n, sum(values), sum(v * v for v in values), systematic_part=1.0).ci95
            u_a, u_b = s / math.sqrt(n), 1.0 / z
            u_c = math.hypot(u_a, u_b)
            effective = (n - 1) * u_c**4 / u_a**4
            assert ours is not None and ours >= t.ppf(0.975, effective) * u_c * (1 - 1e-9), (n, scatter_s)


@pytest.mark.unit
def test_a_cells_systematic_part_scales_with_what_the_meter_read():
    """SCI: only its E × I scales with the meter's band, not the embodied M; energy: all of it."""
    sums = {
        "answers": 2,
        "total_j": 30.0,
        "total_j_squares": 10.0**2 + 20.0**2,
        "band_j": 3.0,  # ±10 % on average
        "sci_n": 2,
        "sci_g": 0.006,
        "sci_g_squares": 0.002**2 + 0.004**2,
        "operational_n": 2,
        "operational_g": 0.005,
    }
    energy, sci = METRICS["j_answer"].mean(sums), METRICS["sci"].mean(sums)
    assert energy.ci95 == pytest.approx(
        math.hypot(12.706 * statistics.stdev([10.0, 20.0]) / math.sqrt(2), 1.5), rel=1e-4
    )
    sci_scatter = 12.706 * statistics.stdev([0.002, 0.004]) / math.sqrt(2)
    assert sci.mean == pytest.approx(0.003)
    assert sci.ci95 == pytest.approx(math.hypot(sci_scatter, 0.1 * 0.0025), rel=1e-4)


@pytest.mark.unit
def test_a_basis_says_what_it_is():
    assert Basis("b1", "estimate", False).label() == "b1 · estimate (estimated, not a measurement)"
    assert Basis("b1", "mcp39f511n", True).slug == "b1 · mcp39f511n"


# -- every surface prints the same interval for the same cell ---------------------------------------------


def _fill_for_agreement(store) -> None:
    """Six answers of one model to six questions at the wall, four estimates of a sum, one lone answer."""
    from factories import make_result

    wall = [(0.0263, 0.0004), (0.0301, 0.0005), (0.0229, 0.0004), (0.0412, 0.0006), (0.0277, 0.0004), (0.0339, 0.0005)]
    for joules, band in wall:
        store.record(make_result(total_j=joules, measured=True, source="mcp39f511n", uncertainty_j=band))
    for joules in (40.0, 42.0, 47.0, 41.0):
        store.record(make_result(total_j=joules, model="tinyllama", seconds=3.0))
    store.record(make_result(total_j=7.5, model="phi", measured=True, source="rapl+nvml", scope="components"))


def test_stats_csv_and_the_table_api_print_the_same_interval_for_a_cell(tmp_path, served_history_url, system_redis_url):
    """`joulebot stats --csv` (a real process) and `/api/table.json` (the real web app) over one history:
    every cell's mean and ± 95 %, energy and SCI, agree to the printed digit; `joulebot stats`' own table
    shows the same figures rounded."""
    from starlette.testclient import TestClient
    from testenv import make_settings, run_cli

    from joulebot.history import HistoryStore
    from joulebot.number_format import sig
    from joulebot.web.app import create_app

    settings = make_settings(tmp_path / "data", database_url=served_history_url, redis_url=system_redis_url)
    store = HistoryStore.open(served_history_url)
    _fill_for_agreement(store)
    store.engine.dispose()

    proc = run_cli(settings, "stats", "--csv")
    assert proc.returncode == 0, proc.stderr
    printed = list(csv.DictReader(io.StringIO(proc.stdout)))
    text = run_cli(settings, "stats").stdout
    with TestClient(create_app(settings)) as client:
        api = {key: client.get(f"/api/table.json?metric={key}").json()["rows"] for key in ("j_answer", "sci")}
    assert len(printed) == 3 and all(len(rows) == 3 for rows in api.values())

    def shown(value: float | None) -> str:  # as each surface prints it: Python's shortest repr, or nothing
        return "" if value is None else repr(value)

    intervals = 0
    for row in printed:
        key = (row["box"], row["energy_source"], row["model"], row["category"])
        for metric, mean, ci95 in (("j_answer", "mean_total_j", "ci95_total_j"), ("sci", "mean_sci_g", "ci95_sci_g")):
            (cell,) = [r for r in api[metric] if (r["box"], r["source"], r["model"], r["category"]) == key]
            assert cell["n"] == int(row["answers"]), (key, metric)
            assert (row[mean], row[ci95]) == (shown(cell["mean"]), shown(cell["ci95"])), (key, metric)
            intervals += cell["ci95"] is not None
        energy = next(r for r in api["j_answer"] if (r["box"], r["source"], r["model"], r["category"]) == key)
        if energy["ci95"] is not None:
            assert f"{sig(energy['mean'])} ± {sig(energy['ci95'], 2)} ({energy['n']})" in text
    assert intervals == 4, "two cells of several answers, each with an energy and an SCI interval"
