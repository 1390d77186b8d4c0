"""Prefill and decode energy: an answer window split where the first token came (metering/phases.py).

The split is checked against a truth only a simulator knows (a wall meter whose load steps at the
first token), through the real Ollama client against the stand-in's reported durations, and with the
real SmolLM2 model, whose long context must cost a larger share to read than a short question.
"""

from __future__ import annotations

import itertools
import math
import time

import pytest
from factories import make_result
from standins import OllamaStandIn

from joulebot.chat.footer import footer
from joulebot.exchange import Request, Turn
from joulebot.metering.answer_energy import MeasurementBox
from joulebot.metering.counters import CounterWindow
from joulebot.metering.estimate import EstimateMeter
from joulebot.metering.mcp39f511n import McpMeter
from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N, Steps
from joulebot.metering.phases import CannotSplit, PhaseTiming, phases, place
from joulebot.metering.reading import Phases
from joulebot.metering.sampling import BlockAverages, SampledWindow
from joulebot.worker.phases import FIRST_TOKEN, OLLAMA

IDLE_W, PREFILL_W, DECODE_W = 60.0, 200.0, 120.0


@pytest.fixture
def ollama():
    server = OllamaStandIn()
    yield server
    server.close()


def step_at_first_token(sim: SimulatedMCP39F511N, meter: McpMeter, seconds: float, first_token_s: float):
    """Idle, then reading the prompt at PREFILL_W from the window's start, generating at DECODE_W from
    the first token to the window's end, idle again. Returns the window and where the step really was."""
    begin = sim.now() + 3 * sim.interval_s + 0.1
    sim.loads[1].profile = Steps(
        IDLE_W, [(begin + 0.005, PREFILL_W), (begin + first_token_s, DECODE_W), (begin + seconds, IDLE_W)]
    )
    time.sleep(max(0.0, begin - sim.now()))
    window = meter.start()
    time.sleep(max(0.0, seconds - (time.perf_counter() - window.start)))
    window.stop()
    return window, begin + first_token_s - sim.sim_time(window.start)


@pytest.mark.parametrize(
    ("seconds", "first_token_s", "timing_off_s", "accumulation_n"),
    [(1.0, 0.3, 0.0, 1), (2.0, 1.2, 0.0, 1), (0.5, 0.25, 0.01, 1), (2.0, 0.8, 0.0, None)],
)
@pytest.mark.unit
def test_a_power_step_at_the_first_token_is_split_within_its_band(seconds, first_token_s, timing_off_s, accumulation_n):
    """The wall meter averages over 40 ms (N = 1, set) or 320 ms (N = 4, as found): each phase's figure
    lies within its stated band of the simulator's exact energy, also where the runner's timing is off
    by 10 ms and says so with its band."""
    with SimulatedMCP39F511N(power_w=IDLE_W, seed=int(seconds * 10 + first_token_s * 100)) as sim:
        meter = McpMeter(sim.port, timeout_s=0.3, accumulation_n=accumulation_n)
        window, true_at_s = step_at_first_token(sim, meter, seconds, first_token_s)
        split = window.split(true_at_s + timing_off_s, 2 * timing_off_s)
        prefill_truth = sim.true_energy(window.start, window.start + true_at_s)
        decode_truth = sim.true_energy(window.start + true_at_s, window.end)
    assert abs(split.prefill_j - prefill_truth) <= split.prefill_uncertainty_j, (split, prefill_truth)
    assert abs(split.decode_j - decode_truth) <= split.decode_uncertainty_j, (split, decode_truth)


def chip_reads(period: float, phase: float, steps: list[tuple[float, float]], read_at: list[float]) -> list:
    """What a chip averaging over `period` shows at each read time, for a load of (from time, watts) steps."""

    def watts(t: float) -> float:
        return [w for at, w in steps if at <= t][-1]

    def energy(t0: float, t1: float) -> float:
        edges = sorted({t0, t1, *(at for at, _ in steps if t0 < at < t1)})
        return sum(watts((a + b) / 2) * (b - a) for a, b in itertools.pairwise(edges))

    def shown(t: float) -> float:
        begin = phase + (math.floor((t - phase) / period) - 1) * period  # the last completed interval
        return round(energy(begin, begin + period) / period, 2)

    return [(t, shown(t)) for t in read_at]


@pytest.mark.unit
def test_the_split_band_is_tight_where_the_meter_was_read_on_time():
    """Reads every 10 ms of a 40 ms average (what the sampler does when nothing holds it up): the split
    point is attributed like an edge, so each phase is within a few percent and its band stays narrow."""
    period, start, at, stop = 0.04, 1.0, 1.5, 2.2
    steps = [(0.0, IDLE_W), (start, PREFILL_W), (at, DECODE_W), (stop, IDLE_W)]
    reads = [start + 0.001 + 0.01 * k for k in range(130)]
    window = SampledWindow(lambda: 0.0, 0.01, "mcp39f511n", "machine", BlockAverages(period), accuracy=0.005)
    window.stop()
    window.samples, window.start, window.end = chip_reads(period, 0.013, steps, reads), start, stop
    split = window.split(at - start, 0.0)
    prefill_truth, decode_truth = PREFILL_W * (at - start), DECODE_W * (stop - at)
    assert abs(split.prefill_j - prefill_truth) <= split.prefill_uncertainty_j < 0.12 * prefill_truth
    assert abs(split.decode_j - decode_truth) <= split.decode_uncertainty_j < 0.12 * decode_truth
    assert abs(split.prefill_j - prefill_truth) < 0.01 * prefill_truth, "the step at the split point is attributed"


@pytest.mark.unit
def test_the_box_splits_the_machine_figure_by_the_runner_timing():
    """Through MeasurementBox: the wall meter's figure is split (not the estimate beside it), decode put at
    the window's end, the runner's unaccounted time as the split point's band, both parts adding up."""
    with SimulatedMCP39F511N(power_w=IDLE_W) as sim:
        box = MeasurementBox([McpMeter(sim.port, timeout_s=0.3), EstimateMeter.configured(5.0, 10.0)])
        sim.loads[1].profile = Steps(IDLE_W, [(sim.now() + 0.3, PREFILL_W), (sim.now() + 0.7, DECODE_W)])
        timing = PhaseTiming(prefill_s=0.35, decode_s=0.6, source="a test runner")
        _, energy = box.measure(lambda: time.sleep(1.0), timing=lambda _: timing)
    p = energy.phases
    assert p is not None and p.error is None and p.timing == "a test runner"
    assert energy.machine.source == "mcp39f511n"
    assert p.split_s == pytest.approx(energy.seconds - 0.6)
    assert p.split_band_s == pytest.approx(energy.seconds - 0.95)
    assert p.prefill_j + p.decode_j == pytest.approx(energy.total_j, abs=p.prefill_uncertainty_j)
    assert 0 < p.prefill_share < 1


@pytest.mark.unit
def test_a_window_too_short_to_split_says_so():
    with SimulatedMCP39F511N(power_w=IDLE_W) as sim:
        box = MeasurementBox([McpMeter(sim.port, timeout_s=0.3), EstimateMeter.configured(5.0, 10.0)])
        _, energy = box.measure(lambda: time.sleep(0.03), timing=lambda _: PhaseTiming(0.01, 0.02, "a test runner"))
    assert energy.total_j is not None, "the window still has its figure"
    assert energy.phases.prefill_j is None and energy.phases.decode_j is None
    assert energy.phases.error.startswith("too short to split:") and "mcp39f511n's 40 ms updates" in energy.phases.error


@pytest.mark.unit
def test_what_cannot_be_split_says_why_instead_of_guessing():
    counter = CounterWindow(lambda: [0.0], [None], "rapl", "cpu", "package-0", accuracy=0.1, update_s=0.001)
    counter.stop()
    with pytest.raises(CannotSplit, match="reads only at the window's edges"):
        counter.split(0.1, 0.0)
    unsplit = phases(PhaseTiming(0.1, 0.2, "a test runner"), 0.5, counter.split)
    assert unsplit.prefill_j is None and "reads only at the window's edges" in unsplit.error
    assert place(PhaseTiming(0.1, 0.2, "r"), 0.5) == pytest.approx((0.3, 0.2))
    with pytest.raises(CannotSplit, match=r"the runner's timings \(0.761 s\) do not fit the 0.010 s window"):
        place(PhaseTiming(0.061, 0.7, "r"), 0.01)
    with pytest.raises(CannotSplit, match="no token was generated"):
        place(PhaseTiming(0.2, 0.0, "r"), 0.5)


@pytest.mark.unit
def test_a_later_turn_footer_says_what_reading_the_context_cost():
    result = make_result(total_j=7.5)
    result.request.turn, result.prompt_tokens = 4, 1210
    result.energy.phases = Phases(
        timing=OLLAMA, split_s=2.0, prefill_j=3.1, prefill_uncertainty_j=0.42, decode_j=4.4, decode_uncertainty_j=0.5
    )
    assert "🧵 turn 4 · 1,210 context tokens · reading the context: 3.1 ± 0.42 J (41 %)" in footer(result)
    result.energy.phases = Phases(timing=OLLAMA, error="too short to split: 60 ms is under two of x's 40 ms updates")
    assert "reading the context: not split (too short to split: 60 ms" in footer(result)
    result.request.turn = 1
    assert "reading the context" not in footer(result), "a first question has no context to read"


def test_ollama_durations_place_the_split_and_a_misfit_is_said(ollama, settings):
    """The station with the real Ollama client against the stand-in, taking its reported durations for
    real: the split sits where Ollama says decoding began; durations that cannot be this window's are said."""
    from joulebot.worker.station import Station

    station = Station(settings.model_copy(update={"ollama_host": ollama.url, "meters": "estimate"}))
    ask = lambda turn=1: station.run(  # noqa: E731
        Request(platform="cli", user_id="u", model="llama3", prompt="Capital?", turn=turn, turns=[])
    )
    untimed = ask()  # the stand-in answers at once but reports 61 ms + 700 ms
    assert untimed.energy.phases.timing == OLLAMA
    assert "do not fit" in untimed.energy.phases.error and untimed.energy.phases.prefill_j is None

    ollama.timed, ollama.prompt_eval_ns, ollama.eval_ns = True, 300_000_000, 600_000_000
    timed = ask(turn=2)
    p, seconds = timed.energy.phases, timed.energy.seconds
    assert p.error is None and p.timing == OLLAMA
    assert p.split_s == pytest.approx(seconds - 0.6)
    assert p.split_band_s == pytest.approx(seconds - 0.6 - 0.3 - timed.runner_stats["load_duration"])
    assert seconds >= 0.9 and p.prefill_j > 0 and p.decode_j > 0
    assert "reading the context: " in footer(timed) and " %)" in footer(timed)
    row = station.history.get(timed.exchange_id)
    assert row.prefill_j == pytest.approx(p.prefill_j) and row.decode_j == pytest.approx(p.decode_j)
    assert row.result["energy"]["phases"]["split_s"] == pytest.approx(p.split_s)


def _long_context(tokens: int) -> str:
    """About `tokens` tokens of plain English that no earlier prompt shares (no prompt cache helps)."""
    words = [f"On day {i} the ferry crossed the grey river with {i % 7 + 2} passengers." for i in range(tokens // 14)]
    return " ".join(words)


@pytest.mark.e2e
def test_smollm2_a_long_context_costs_a_larger_share_to_read(settings):
    """The real SmolLM2 model through the station (llama.cpp, the estimate sampled on its thread): a
    later turn carrying a 1,500-token context spends a larger share of its energy reading it than a
    20-token question does."""
    from joulebot.worker.station import Station

    station = Station(settings.model_copy(update={"meters": "estimate"}))
    short = station.run(
        Request(platform="cli", user_id="u", model="smollm2-135m", prompt="What is 2 + 2?", max_tokens=8)
    )
    history = [Turn(role="user", content=_long_context(1500)), Turn(role="assistant", content="I see.")]
    long = station.run(
        Request(
            platform="cli",
            user_id="u",
            model="smollm2-135m",
            prompt="Which river was it?",
            max_tokens=8,
            turns=history,
            turn=2,
            conversation_id="c1",
        )
    )
    assert short.prompt_tokens <= 60 and long.prompt_tokens >= 1400
    for result in (short, long):
        p = result.energy.phases
        assert p is not None and p.error is None and p.timing == FIRST_TOKEN, p
        assert 0 < p.split_s < result.energy.seconds
    short_share, long_share = short.energy.phases.prefill_share, long.energy.phases.prefill_share
    print(
        f"prefill share: {short.prompt_tokens} tokens {short_share:.1%}, {long.prompt_tokens} tokens {long_share:.1%}"
    )
    print("short:", short.energy.phases.model_dump(), "long:", long.energy.phases.model_dump())
    assert long_share > short_share
    assert "reading the context: " in footer(long)
    assert station.history.get(long.exchange_id).prefill_j == pytest.approx(long.energy.phases.prefill_j)


def test_statistics_give_j_per_prompt_token_and_per_output_token_per_model_box_and_meter(history_url):
    """The dashboard's table (and its JSON) over the rollup: J per prompt token read and J per token
    generated, one cell per model and task within each box and meter, its ± 95 % from intervals.Mean;
    answers not split are in neither figure."""
    from joulebot.history import HistoryStore
    from joulebot.history.aggregates import METRICS
    from joulebot.history.intervals import Mean
    from joulebot.web.history_view import HistoryView

    store = HistoryStore.open(history_url)
    expected: dict[tuple, tuple[list[float], list[float]]] = {}
    for i in range(12):
        box, source, measured = ("wallbox", "mcp39f511n", True) if i % 3 == 0 else ("testbox", "estimate", False)
        result = make_result(total_j=10.0 + i, box=box, source=source, measured=measured, tokens=20 + i)
        result.prompt_tokens = 100 + 10 * i
        if i % 4 != 3:  # every fourth answer could not be split
            prefill = 2.0 + 0.5 * i
            result.energy.phases = Phases(
                timing=OLLAMA, split_s=1.0, prefill_j=prefill, prefill_uncertainty_j=0.5,
                decode_j=result.energy.total_j - prefill, decode_uncertainty_j=0.5,
            )  # fmt: skip
            cell = expected.setdefault((box, source, measured), ([], []))
            cell[0].append(prefill / result.prompt_tokens)
            cell[1].append((result.energy.total_j - prefill) / result.completion_tokens)
        else:
            result.energy.phases = Phases(timing=OLLAMA, error="too short to split")
        result.category = "math"
        store.record(result)
    view = HistoryView(history_url)
    try:
        for key, column in (("j_prompt_token", 0), ("j_output_token", 1)):
            got = {
                (s.basis.box, s.basis.source, s.basis.measured): mean
                for s in view.table(METRICS[key])
                for (row, category), mean in s.cells.items()
                if row.model == "smollm2-135m" and category == "math"
            }
            assert got.keys() == expected.keys(), "one cell per box and meter, never averaged across them"
            for basis, values in expected.items():
                mean: Mean = got[basis]
                assert mean.n == len(values[column]) and mean.mean == pytest.approx(sum(values[column]) / mean.n)
                assert mean.ci95 is not None and mean.ci95 > 0
    finally:
        view.close()
        store.engine.dispose()
