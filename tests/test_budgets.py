"""Daily energy budgets: what history counts (SQLite and PostgreSQL), the refusal and its reset at the
UTC day's boundary (the clock passed as an argument), the web chat's budget shared by its anonymous
visitors, the Telegram bot refusing in one line (the real bot process, embedded queue and worker,
the Bot API and Ollama stand-ins), and `joulebot budgets`."""

# ruff: noqa: F811 (the fixtures imported from telegram_chat are the tests' parameters)
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from factories import make_result
from telegram_chat import api, bot, ollama  # noqa: F401 (fixtures)
from telegram_process import answered
from testenv import make_settings, run_cli
from waiting import day_start

from joulebot.chat.budgets import BudgetSpent, BudgetUnknown, EnergyBudgets, amount
from joulebot.config import Settings
from joulebot.history import HistoryStore

WH = 3600.0  # J
MIDNIGHT = datetime(2026, 11, 27, tzinfo=UTC)  # a day boundary
RESETS = re.compile(r"it resets at 00:00 UTC \(in (\d+ h )?\d+ min\)")


@pytest.fixture
def store(history_url):
    history = HistoryStore.open(history_url)
    yield history
    history.engine.dispose()


def _answer(
    store: HistoryStore, platform: str, user: str, joules: float | None, at: datetime, measured=False, scope="machine"
) -> int:
    """An answer stored as the worker stores it, started at `at`: measured (at the wall, or by component
    meters: `scope`), or estimated."""
    source = ("mcp39f511n" if scope == "machine" else "rapl") if measured else "estimate"
    result = make_result(platform=platform, user_id=user, total_j=joules, measured=measured, source=source, scope=scope)
    return store.record(result.model_copy(update={"started_at": at}))


def _settings(tmp_path, **budgets: float) -> Settings:
    return make_settings(tmp_path / "data", **budgets)


def test_history_counts_a_users_answers_since_the_days_start_measured_and_estimated_apart(store):
    day = MIDNIGHT
    _answer(store, "telegram", "501", 0.25 * WH, day - timedelta(seconds=1))  # yesterday: not counted
    _answer(store, "telegram", "501", 0.5 * WH, day)  # the day's first instant counts
    _answer(store, "telegram", "501", 0.25 * WH, day + timedelta(hours=5), measured=True)
    _answer(store, "telegram", "501", None, day + timedelta(hours=6))  # every meter failed: no figure
    _answer(store, "telegram", "502", 9 * WH, day + timedelta(hours=1))  # someone else
    _answer(store, "discord", "501", 9 * WH, day + timedelta(hours=1))  # the same id on another platform

    used = store.energy_used(day, "telegram", "501")
    assert used.joules == pytest.approx(0.75 * WH) and used.wh == pytest.approx(0.75)
    assert used.estimated_j == pytest.approx(0.5 * WH) and used.answers == 3 and used.without_figure == 1
    assert (
        amount(used, 1.0)
        == "0.750 of 1.00 Wh (0.500 Wh of it estimated; 1 answer without an energy figure, not counted)"
    )
    assert store.energy_used(day, "telegram", "nobody") == (0.0, 0.0, 0, 0, 0.0)
    everyone = store.energy_used(day, "telegram")
    assert everyone.joules == pytest.approx(9.75 * WH) and everyone.answers == 4

    store.forget("telegram", "502")  # a forgotten answer is no one's, but it was still drawn on the platform
    assert store.energy_used(day, "telegram", "502").answers == 0
    assert store.energy_used(day, "telegram").joules == pytest.approx(9.75 * WH)
    heaviest = store.heaviest_users(day, 2)
    assert [(p, u) for p, u, _ in heaviest] == [("discord", "501"), ("telegram", "501")]


def test_forgetting_does_not_give_a_fresh_budget_the_same_day(store, tmp_path):
    budgets = EnergyBudgets(_settings(tmp_path, daily_energy_budget_wh=1.0), store)
    noon = MIDNIGHT + timedelta(hours=12)
    _answer(store, "telegram", "501", 0.5 * WH, MIDNIGHT - timedelta(hours=1))  # yesterday's
    _answer(store, "telegram", "501", 0.5 * WH, noon - timedelta(hours=2), measured=True)
    store.forget("telegram", "501", MIDNIGHT)
    assert store.recent("telegram", "501") == []
    used = store.energy_used(MIDNIGHT, "telegram", "501")
    assert used.joules == pytest.approx(0.5 * WH) and used.estimated_j == 0 and used.answers == 0
    _answer(store, "telegram", "501", 0.25 * WH, noon - timedelta(hours=1))  # asked again, then forgot again
    store.forget("telegram", "501", MIDNIGHT)
    _answer(store, "telegram", "501", 0.3 * WH, noon - timedelta(minutes=30))
    used = store.energy_used(MIDNIGHT, "telegram", "501")
    assert used.joules == pytest.approx(1.05 * WH) and used.estimated_j == pytest.approx(0.55 * WH)
    with pytest.raises(BudgetSpent, match=r"used: 1\.05 of 1\.00 Wh \(0\.550 Wh of it estimated\)"):
        budgets.check("telegram", "501", now=noon)
    assert store.energy_used(MIDNIGHT, "telegram").joules == pytest.approx(1.05 * WH)  # counted once for the platform

    tomorrow = MIDNIGHT + timedelta(days=1)
    assert store.energy_used(tomorrow, "telegram", "501").joules == 0  # what a forget kept was that day's
    _answer(store, "telegram", "501", 0.1 * WH, tomorrow + timedelta(hours=1))
    store.forget("telegram", "501", tomorrow)  # a forget on a later day keeps that day's only
    assert store.energy_used(tomorrow, "telegram", "501").joules == pytest.approx(0.1 * WH)


def test_the_budget_refuses_once_used_says_how_much_and_resets_at_utc_midnight(store, tmp_path):
    budgets = EnergyBudgets(_settings(tmp_path, daily_energy_budget_wh=1.0), store)
    evening = MIDNIGHT - timedelta(hours=3, minutes=12)
    _answer(store, "telegram", "501", 0.6 * WH, evening - timedelta(hours=1))
    budgets.check("telegram", "501", now=evening)  # 0.6 of 1 Wh: asking works
    _answer(store, "telegram", "501", 0.42 * WH, evening - timedelta(minutes=1))

    with pytest.raises(BudgetSpent) as refused:
        budgets.check("telegram", "501", now=evening)
    text = str(refused.value)
    assert text == "Today's energy budget is used: 1.02 of 1.00 Wh (estimated); it resets at 00:00 UTC (in 3 h 12 min)."
    assert refused.value.use.retry_after_s == 3 * 3600 + 12 * 60
    budgets.check("telegram", "502", now=evening)  # per user: another still asks
    with pytest.raises(BudgetSpent, match=r"in 1 min\)"):
        budgets.check("telegram", "501", now=MIDNIGHT - timedelta(seconds=1))

    budgets.check("telegram", "501", now=MIDNIGHT)  # a new day: the budget begins again
    assert budgets.day_lines("telegram", "501", now=MIDNIGHT + timedelta(minutes=30)) == [
        "🔋 Today: 0 of 1.00 Wh of your energy budget; it resets at 00:00 UTC (in 23 h 30 min)"
    ]
    assert EnergyBudgets(_settings(tmp_path), store).day_lines("telegram", "501") == []  # no budget: no line


def test_a_measured_day_says_which_part_was_estimated(store, tmp_path):
    budgets = EnergyBudgets(_settings(tmp_path, daily_energy_budget_wh=0.5), store)
    noon = MIDNIGHT + timedelta(hours=12)
    _answer(store, "api", "alice", 0.4 * WH, noon - timedelta(hours=1), measured=True)
    assert budgets.day_lines("api", "alice", now=noon)[0].startswith(
        "🔋 Today: 0.400 of 0.500 Wh of your energy budget;"
    )
    _answer(store, "api", "alice", 0.2 * WH, noon - timedelta(minutes=30))
    with pytest.raises(BudgetSpent, match=r"used: 0\.600 of 0\.500 Wh \(0\.200 Wh of it estimated\); "):
        budgets.check("api", "alice", now=noon)
    budgets.check("cli", "alice", now=noon)  # the terminal (and the benchmark) have no budget
    _answer(store, "cli", "1000", 5 * WH, noon - timedelta(minutes=30))
    budgets.check("cli", "1000", now=noon)


def test_a_day_measured_by_component_meters_says_it_is_not_the_whole_machine(store, tmp_path):
    budgets = EnergyBudgets(_settings(tmp_path, daily_energy_budget_wh=0.5), store)
    noon = MIDNIGHT + timedelta(hours=12)
    _answer(store, "api", "bob", 0.3 * WH, noon - timedelta(hours=2), measured=True, scope="components")
    assert (
        "0.300 of 0.500 Wh (from component meters, not the whole machine) of"
        in budgets.day_lines("api", "bob", now=noon)[0]
    )
    store.forget("api", "bob", MIDNIGHT)  # the forgotten answers' energy keeps its kind
    _answer(store, "api", "bob", 0.1 * WH, noon - timedelta(hours=1), measured=True)
    _answer(store, "api", "bob", 0.2 * WH, noon - timedelta(minutes=30))
    used = store.energy_used(MIDNIGHT, "api", "bob")
    assert (used.partial_j, used.estimated_j) == (pytest.approx(0.3 * WH), pytest.approx(0.2 * WH))
    with pytest.raises(BudgetSpent) as refused:
        budgets.check("api", "bob", now=noon)
    assert (
        "0.600 of 0.500 Wh (0.200 Wh of it estimated; 0.300 Wh of it from component meters, not the whole machine)"
        in str(refused.value)
    )


def test_the_web_chats_budget_is_shared_by_its_anonymous_visitors(store, tmp_path):
    budgets = EnergyBudgets(_settings(tmp_path, web_chat_daily_wh=1.0), store)
    noon = MIDNIGHT + timedelta(hours=12)
    _answer(store, "web", "session-a", 0.6 * WH, noon - timedelta(hours=2))
    budgets.check("web", "session-c", now=noon)
    _answer(store, "web", "session-b", 0.5 * WH, noon - timedelta(hours=1))
    _answer(store, "api", "bob", 50 * WH, noon - timedelta(hours=1))  # a key's user is not a web visitor

    with pytest.raises(BudgetSpent) as refused:
        budgets.check("web", "session-c", now=noon)  # a new visitor, who asked nothing yet
    assert str(refused.value) == (
        "Today's energy budget of the web chat (all visitors together) is used: 1.10 of 1.00 Wh (estimated); "
        "it resets at 00:00 UTC (in 12 h)."
    )
    budgets.check("api", "bob", now=noon)  # only the web chat's visitors share it; no budget per user here
    budgets.check("web", "session-c", now=MIDNIGHT + timedelta(days=1))

    both = EnergyBudgets(_settings(tmp_path, web_chat_daily_wh=5.0, daily_energy_budget_wh=0.5), store)
    with pytest.raises(BudgetSpent, match=r"^Today's energy budget is used: 0\.600 of 0\.500 Wh"):
        both.check("web", "session-a", now=noon)  # their own budget, before the shared one
    assert both.day_lines("web", "session-c", now=noon) == [
        "🔋 Today: 0 of 0.500 Wh of your energy budget; it resets at 00:00 UTC (in 12 h)",
        "🔋 Today: 1.10 of 5.00 Wh (estimated) of the web chat's energy budget; it resets at 00:00 UTC (in 12 h)",
    ]


def test_a_history_that_does_not_answer_refuses_rather_than_guessing(tmp_path):
    store = HistoryStore("postgresql+psycopg://nobody@127.0.0.1:9/none", timeout_s=2)  # nothing listens on 9
    budgets = EnergyBudgets(_settings(tmp_path, daily_energy_budget_wh=1.0), store)
    with pytest.raises(BudgetUnknown, match="history database is unavailable right now"):
        budgets.check("telegram", "501")
    assert budgets.day_lines("telegram", "501") == ["🔋 Your energy budget cannot be read now: history is unavailable"]
    assert EnergyBudgets(_settings(tmp_path), store).day_lines("telegram", "501") == []  # no budget: nothing read


def test_the_days_query_goes_through_the_budget_indexes(store):
    """One query per question asked: a range over the day's rows of one user (or platform), not a walk."""
    dialect = store.engine.dialect.name
    user_sql = "SELECT sum(energy_total_j) FROM exchanges WHERE user_id = 1 AND started_at >= '2026-11-27'"
    web_sql = "SELECT sum(energy_total_j) FROM exchanges WHERE platform = 'web' AND started_at >= '2026-11-27'"
    with store.engine.connect() as connection:
        if dialect == "sqlite":
            explain = "EXPLAIN QUERY PLAN "
        else:
            connection.execute(sqlalchemy.text("SET enable_seqscan = off"))  # an empty table would be scanned
            explain = "EXPLAIN "
        plans = [
            " ".join(str(v) for row in connection.execute(sqlalchemy.text(explain + sql)) for v in row)
            for sql in (user_sql, web_sql)
        ]
    assert "ix_exchanges_user_started" in plans[0] and "ix_exchanges_platform_started" in plans[1], plans


def test_budgets_shows_the_days_use_per_user_and_of_the_web_chat(tmp_path):
    day_start()  # the day the budget counts must not end mid-test
    settings = make_settings(tmp_path / "data")
    store = HistoryStore.open(settings.sqlalchemy_url)
    now = datetime.now(UTC)
    _answer(store, "telegram", "501", 1.5 * WH, now - timedelta(seconds=1))
    _answer(store, "web", "session-a", 0.25 * WH, now - timedelta(seconds=1))
    _answer(store, "cli", "1000", 0.1 * WH, now - timedelta(seconds=1))
    _answer(store, "telegram", "777", 5 * WH, now - timedelta(days=1, seconds=1))  # an earlier day

    shown = run_cli(settings, "budgets", DAILY_ENERGY_BUDGET_WH="1", WEB_CHAT_DAILY_WH="2")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Daily energy budgets: 1.00 Wh per user, 2.00 Wh for the web chat's visitors together;")
    assert lines[1] == "web chat, all visitors: 0.250 of 2.00 Wh (estimated) · 1 answers"
    assert lines[2] == "telegram:501 1.50 of 1.00 Wh (estimated) · 1 answers · used up"
    assert lines[3:] == [
        "web:session-a 0.250 of 1.00 Wh (estimated) · 1 answers",
        "cli:1000 0.100 Wh (estimated) · 1 answers · no budget",
    ]
    unset = run_cli(settings, "budgets", "--top", "1")
    assert unset.stdout.startswith("No daily energy budget is set") and "telegram:501 1.50 Wh" in unset.stdout
    assert "session-a" not in unset.stdout  # --top 1

    for bad in ("0", "-1", "nan", "inf", "lots"):
        refused = run_cli(settings, "budgets", DAILY_ENERGY_BUDGET_WH=bad)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "DAILY_ENERGY_BUDGET_WH" in refused.stderr


def test_a_telegram_user_over_budget_is_refused_in_one_line(bot, api, embedded):
    day_start()  # the day the budget counts must not end mid-test
    bot(DAILY_ENERGY_BUDGET_WH="0.000001")  # 3.6 mJ: the first answer (its 0 J used) goes, then nothing
    api.message(701, "What is the capital of France?")
    _, final = api.wait_for(answered(701))
    refusal = lambda m, p: (  # noqa: E731
        m == "sendMessage" and str(p["chat_id"]) == "701" and p["text"].startswith("Today's energy budget is used")
    )
    assert re.search(
        r"🔋 Today: [\d.]+ of 0\.00000100 Wh \(estimated\) of your energy budget; " + RESETS.pattern, final["text"]
    )

    api.message(701, "And of Spain?")
    _, refused = api.wait_for(refusal)
    assert "\n" not in refused["text"] and RESETS.search(refused["text"])
    assert " of 0.00000100 Wh (estimated); " in refused["text"]
    queued = [p for m, p in api.to_chat(701) if m == "sendMessage" and p["text"].startswith("⏳")]
    assert len(queued) == 1, "the refused question was never queued"

    api.message(701, "/stats")
    api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "701" and p["text"].startswith("🔋 Today: "))
    api.message(702, "What is the capital of France?")  # another user's budget is their own
    api.wait_for(answered(702))
    assert len(HistoryStore.open(embedded.sqlalchemy_url).recent("telegram", "701")) == 1

    api.message(701, "/forget")  # forgetting their answers does not give them a fresh budget
    api.wait_for(lambda m, p: m == "sendMessage" and "forget:yes" in p.get("reply_markup", ""))
    api.press(701, 1, "forget:yes")
    api.wait_for(lambda m, p: m == "editMessageText" and p["text"].startswith("Deleted the prompts and answers of 1"))
    api.message(701, "Forgotten: may I ask again?")
    api.wait_for(lambda m, p: refusal(m, p) and sum(refusal(*call) for call in api.to_chat(701)) == 2)
