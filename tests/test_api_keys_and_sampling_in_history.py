"""What the OpenAI-compatible API keeps in history, on SQLite and PostgreSQL: its keys as hashes only,
and answers asked with their own sampling stored with it and counted in no statistic."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from factories import make_result

from joulebot.history import HistoryStore, rollup
from joulebot.history.api_keys import API_KEYS, KeyNameError, create_key, key_owner, list_keys, revoke_key
from joulebot.models.runner import Sampling


@pytest.fixture
def store(history_url):
    store = HistoryStore.open(history_url)
    yield store
    store.engine.dispose()


def test_api_keys_are_kept_as_hashes_and_revoked_at_once(store):
    key = create_key(store.engine, "alice")
    assert key is not None and create_key(store.engine, "alice") is None  # one working key per name
    with store.engine.connect() as connection:
        assert key_owner(connection, key) == "alice" and key_owner(connection, key + "x") is None
        rows = [tuple(map(str, row)) for row in connection.execute(sa.select(API_KEYS)).all()]
    assert not any(key in value for row in rows for value in row)
    assert rows[0][1] == hashlib.sha256(key.encode()).hexdigest()
    assert revoke_key(store.engine, "alice") and not revoke_key(store.engine, "alice")
    with store.engine.connect() as connection:
        assert key_owner(connection, key) is None
    renewed = create_key(store.engine, "alice")
    assert renewed is not None and renewed != key
    [info] = list_keys(store.engine)
    assert info.name == "alice" and info.revoked_at is None
    for bad in ("", "has space", "-dash-first", "_open", "x" * 41):
        with pytest.raises(KeyNameError):
            create_key(store.engine, bad)


def test_an_answer_with_its_own_sampling_is_stored_and_in_no_statistic(store):
    store.record(make_result(model="llama3", total_j=10.0))
    sampled = make_result(model="llama3", total_j=500.0)
    sampled.request.sampling = Sampling(temperature=0.9, stop=["END"])
    number = store.record(sampled)
    assert store.get(number).sampling == {"temperature": 0.9, "stop": ["END"]}
    [stats] = [s for s in store.model_stats() if s.model == "llama3"]
    assert stats.answers == 1 and stats.mean_total_j == pytest.approx(10.0)
    with store.engine.begin() as connection:  # computed again from the rows: the same
        rollup.rebuild(connection)
    [stats] = [s for s in store.model_stats() if s.model == "llama3"]
    assert stats.answers == 1
    defaults = make_result(model="llama3", total_j=12.0)
    defaults.request.sampling = Sampling()  # nothing set: the runner's defaults, counted
    assert store.get(store.record(defaults)).sampling is None
    assert next(s for s in store.model_stats() if s.model == "llama3").answers == 2
