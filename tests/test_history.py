import pytest
from factories import make_result
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from joulebot.exchange import Result
from joulebot.history import HistoryStore
from joulebot.history.tables import Exchange, User


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.unit), "postgresql"])
def store(request, tmp_path) -> HistoryStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'history.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = HistoryStore.open(url)
    yield store
    store.engine.dispose()


def test_record_keeps_every_figure_and_the_whole_result(store):
    result = make_result(total_j=41.2, seconds=6.1, idle_w=4.74)
    row = store.get(store.record(result))
    assert row.prompt == result.request.prompt and row.answer == "Paris."
    assert row.energy_total_j == pytest.approx(41.2)
    assert row.energy_attributable_j == pytest.approx(41.2 - 4.74 * 6.1)
    assert row.energy_source == "estimate" and row.energy_measured is False
    assert row.intensity_zone == "DE" and row.intensity_provenance == "static"
    assert row.sci_g == pytest.approx(result.carbon.sci_g)
    assert Result.model_validate(row.result) == result


def test_users_see_only_their_own_history_newest_first(store):
    for i in range(3):
        store.record(make_result(user_id="alice", prompt=f"alice {i}"))
    store.record(make_result(user_id="bob", prompt="bob's secret"))
    store.record(make_result(user_id="alice", platform="telegram", prompt="same id, other platform"))

    alice = store.recent("cli", "alice", limit=10)
    assert [row.prompt for row in alice] == ["alice 2", "alice 1", "alice 0"]
    assert [row.prompt for row in store.recent("cli", "bob")] == ["bob's secret"]
    assert [row.prompt for row in store.recent("cli", "alice", limit=2)] == ["alice 2", "alice 1"]
    assert [row.prompt for row in store.recent("cli", "alice", limit=2, offset=2)] == ["alice 0"]
    assert store.recent("cli", "carol") == []


def test_a_users_first_answer_is_known_whoever_else_asked_before(store):
    """A user who only set a preference before has no answer yet; another user's answers do not count;
    another store (another box) that never asked about a user finds their earlier answers."""
    store.set_preferences("telegram", "7", model="smollm2-135m")
    asked = [("cli", "bob"), ("cli", "alice"), ("cli", "alice"), ("telegram", "7")]
    ids = [store.record(make_result(platform=p, user_id=u, prompt=f"{u} {i}")) for i, (p, u) in enumerate(asked)]
    firsts = [store.is_first_answer(i, p, u) for i, (p, u) in zip(ids, asked, strict=True)]
    assert firsts == [True, True, False, True]
    other = HistoryStore(store.engine.url.render_as_string(hide_password=False))
    later = other.record(make_result(user_id="bob", prompt="bob again"))
    assert not other.is_first_answer(later, "cli", "bob")
    other.engine.dispose()


def test_a_request_is_recorded_once(store):
    result = make_result()
    store.record(result)
    with pytest.raises(IntegrityError):
        store.record(result)
    assert len(store.recent("cli", "alice")) == 1


def test_a_new_user_is_made_once_whichever_process_makes_it_first(store):
    other = HistoryStore(store.engine.url.render_as_string(hide_password=False))  # another bot or box
    store.set_preferences("telegram", "7", model="tinyllama")  # the row made by a preference
    other.record(make_result(user_id="7", platform="telegram", prompt="first answer"))
    other.record(make_result(user_id="8", platform="telegram", prompt="made by the worker"))
    store.record(make_result(user_id="8", platform="telegram", prompt="then by another"))
    with Session(store.engine) as session:
        users = session.exec(select(User.platform_user_id, User.id)).all()
    assert sorted(name for name, _ in users) == ["7", "8"]
    assert [row.prompt for row in store.recent("telegram", "8")] == ["then by another", "made by the worker"]
    assert store.preferences("telegram", "7")[0] == "tinyllama"
    assert [row.prompt for row in store.recent("telegram", "7")] == ["first answer"]
    other.engine.dispose()


def test_a_failed_write_leaves_no_user_id_behind(store):
    """The user row made by a write that is rolled back is gone: its id must not be reused."""
    taken = make_result(user_id="alice")
    store.record(taken)
    again = make_result(user_id="dave")
    again.request.id = taken.request.id  # the write fails (one row per request) after making dave
    with pytest.raises(IntegrityError):
        store.record(again)
    store.record(make_result(user_id="dave", prompt="dave's question"))
    assert [row.prompt for row in store.recent("cli", "dave")] == ["dave's question"]


def test_unknown_energy_is_stored_as_null_not_zero(store):
    row = store.get(store.record(make_result(total_j=None)))
    assert row.energy_total_j is None and row.sci_g is None and row.operational_g is None


def test_preferences_persist_per_user(store):
    assert store.preferences("telegram", "42") == (None, None, None)
    store.set_preferences("telegram", "42", model="tinyllama")
    store.set_preferences("telegram", "42", units="watts")
    assert store.preferences("telegram", "42") == ("tinyllama", "watts", None)
    store.set_preferences("telegram", "42", box="box-fr")
    assert store.preferences("telegram", "42") == ("tinyllama", "watts", "box-fr")
    store.set_preferences("telegram", "42", box="")  # /box auto
    assert store.preferences("telegram", "42")[2] is None
    assert store.preferences("discord", "42") == (None, None, None)


def test_what_a_question_needs_is_one_read_with_the_groups_prompt_in_a_group(store):
    assert store.asking("telegram", "42", "-100") == (None, None, None, None)  # no user row, no chat row
    store.set_system_prompt("telegram", "42", "Answer in French.")
    store.set_system_prompt("telegram", "7", "Answer briefly.", chat_id="-100")  # another member set the group's
    store.set_preferences("telegram", "42", model="tinyllama", box="box-fr")
    assert store.asking("telegram", "42") == ("tinyllama", None, "box-fr", "Answer in French.")
    assert store.asking("telegram", "42", "-100") == ("tinyllama", None, "box-fr", "Answer briefly.")
    assert store.asking("telegram", "43", "-100") == (None, None, None, "Answer briefly.")  # a new member
    assert store.asking("discord", "42", "-100") == (None, None, None, None)  # platforms apart


def test_forget_scrubs_prompts_and_answers_but_keeps_anonymous_measurements(store):
    store.record(make_result(user_id="alice", prompt="my secret", answer="secret answer", total_j=10.0))
    store.record(make_result(user_id="alice", prompt="another", total_j=30.0))
    store.record(make_result(user_id="bob", prompt="bob's", total_j=20.0))
    store.set_preferences("cli", "alice", model="smollm2-135m")
    before = {s.model: s for s in store.model_stats()}

    assert len(store.forget("cli", "alice")) == 2
    assert store.recent("cli", "alice") == []
    assert store.preferences("cli", "alice") == (None, None, None)
    assert [r.prompt for r in store.recent("cli", "bob")] == ["bob's"]
    after = {s.model: s for s in store.model_stats()}
    assert after == before, "statistics keep the measurements"
    with Session(store.engine) as session:
        texts = " ".join(f"{row.prompt} {row.answer} {row.result}" for row in session.exec(select(Exchange)).all())
    assert "secret" not in texts and "another" not in texts


def test_model_stats_averages(store):
    store.record(make_result(model="a", total_j=10.0, tokens=10, idle_w=None))
    store.record(make_result(model="a", total_j=30.0, tokens=30, idle_w=None))
    store.record(make_result(model="b", total_j=5.0, tokens=50, idle_w=None))
    store.record(make_result(model="b", total_j=None))
    stats = store.model_stats()
    assert [s.model for s in stats] == ["b", "a"], "greenest first"
    a = stats[1]
    assert a.answers == 2 and a.mean_total_j == pytest.approx(20.0) and a.j_per_token == pytest.approx(1.0)
    assert stats[0].answers == 1 and stats[0].j_per_token == pytest.approx(0.1)
