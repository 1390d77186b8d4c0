import pytest
from factories import make_result
from sqlalchemy.exc import IntegrityError

from joulebot.history import HistoryStore
from joulebot.queue_worker.contract import Result


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> HistoryStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'history.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = HistoryStore(url)
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
    assert store.recent("cli", "carol") == []


def test_a_request_is_recorded_once(store):
    result = make_result()
    store.record(result)
    with pytest.raises(IntegrityError):
        store.record(result)
    assert len(store.recent("cli", "alice")) == 1


def test_unknown_energy_is_stored_as_null_not_zero(store):
    row = store.get(store.record(make_result(total_j=None)))
    assert row.energy_total_j is None and row.sci_g is None and row.operational_g is None
