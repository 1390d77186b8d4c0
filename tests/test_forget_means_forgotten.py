"""Forget means forgotten: after a forget no copy of the words stays in Redis (the RQ job and its
Results, the answer so far, Results waiting for history, Redis' own files) or in the database's
files (SQLite's WAL and free space; PostgreSQL's dead row versions).

Real processes throughout: `joulebot ask` with the embedded Redis and worker (the Ollama stand-in
is the model), `joulebot history --forget`, a private Redis with an append-only file, and a
PostgreSQL database of the test's own, read page by page with pageinspect.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy
from factories import make_result
from standins import OllamaStandIn, PrivateRedis, free_port
from testenv import IN_CI, POSTGRES_URL, make_settings, run_cli

from joulebot.chat.forgetting import Forgotten
from joulebot.chat.service import ChatService
from joulebot.exchange import Request
from joulebot.history import HistoryStore
from joulebot.keys import history_outbox_key
from joulebot.queueing import connection as conn
from joulebot.queueing.client import QueueClient


def readable(raw: bytes) -> bytes:
    """A value with what RQ's encodings hide made readable: base64 (a Result's return value), zlib
    (a job's data, an exception's text)."""
    shown = [raw]
    with contextlib.suppress(ValueError):
        shown.append(base64.b64decode(raw, validate=True))
    for candidate in list(shown):
        with contextlib.suppress(zlib.error):
            shown.append(zlib.decompress(candidate))
    return b" ".join(shown)


def redis_values(client: redis.Redis) -> dict[str, bytes]:
    """Every key of the database with all it holds, readable (strings, hashes, lists, sets, streams)."""
    found: dict[str, bytes] = {}
    for key in client.scan_iter():
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "hash":
            values = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "stream":
            values = [v for _, fields in client.xrange(key) for v in fields.values()]
        else:
            values = []
        found[key.decode()] = b" ".join(readable(v.split(b"=", 1)[-1]) + b" " + v for v in values)
    return found


def holding(client: redis.Redis, *words: str) -> list[str]:
    """The keys whose contents hold any of `words`."""
    return sorted(key for key, value in redis_values(client).items() if any(w.encode() in value for w in words))


def holding_on_disk(redis_file: Path, tmp_path: Path, *words: str) -> list[str]:
    """The keys holding any of `words` in a Redis that starts from a copy of `redis_file` (an RDB
    snapshot, or an append-only file): what a restart, or anyone with the file, would read."""
    directory = tmp_path / f"restored-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    appendonly = redis_file.name.endswith(".aof")
    shutil.copy(redis_file, directory / ("appendonly.aof" if appendonly else "dump.rdb"))
    server = PrivateRedis(directory, appendonly=appendonly)
    server.start()
    try:
        return holding(redis.Redis.from_url(server.url), *words)
    finally:
        server.kill()


def files_holding(directory: Path, *words: str) -> list[str]:
    """The files under `directory` whose bytes contain any of `words` (UTF-8) as they are."""
    return [
        str(path.relative_to(directory))
        for path in sorted(directory.rglob("*"))
        if path.is_file() and any(w.encode() in path.read_bytes() for w in words)
    ]


@pytest.fixture
def ollama() -> Iterator[OllamaStandIn]:
    with contextlib.closing(OllamaStandIn()) as standin:
        yield standin


def test_history_forget_leaves_no_copy_in_redis_its_snapshot_or_the_history_files(embedded, ollama, tmp_path):
    prompt, answer = f"zebra-{uuid.uuid4().hex[:8]}", f"quartz-{uuid.uuid4().hex[:8]}"
    ollama.answer = [f"{answer} is the answer."]
    env = {"OLLAMA_HOST": ollama.url, "DEFAULT_MODEL": "llama3"}
    for n in range(3):
        asked = run_cli(embedded, "ask", f"{prompt} question {n}?", timeout=120, **env)
        assert asked.returncode == 0, asked.stderr
    client = conn.connect(embedded)
    client.save()
    # what the finding saw: the Results (prompt and answer) and the jobs stay readable for RESULT_TTL_S,
    # in Redis and in its snapshot; SQLite's WAL keeps the prompts
    # (whether a Result still holds them depends on whether its front end has collected it yet; the
    # job hashes always hold the Request)
    assert any(key.startswith(("rq:results:", "rq:job:")) for key in holding(client, prompt, answer))
    snapshot = embedded.data_dir / "redis.rdb"
    assert any(
        key.startswith(("rq:results:", "rq:job:")) for key in holding_on_disk(snapshot, tmp_path, prompt, answer)
    )
    assert "history.sqlite3-wal" in files_holding(embedded.data_dir, prompt)

    forgot = run_cli(embedded, "history", "--forget", f"cli:{os.getuid()}", timeout=60, **env)
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot 3 exchanges" in forgot.stdout
    assert holding(client, prompt, answer) == []
    assert holding_on_disk(snapshot, tmp_path, prompt, answer) == []
    # the history database and its WAL, the logs: no file keeps a copy
    assert files_holding(embedded.data_dir, prompt, answer) == []
    rows = HistoryStore.open(embedded.sqlalchemy_url).engine.connect()
    with rows:
        figures = rows.execute(sqlalchemy.text("SELECT count(*) FROM exchanges WHERE energy_total_j > 0")).scalar()
    assert figures == 3, "the measurements stay"


def test_forget_drops_the_users_results_waiting_for_history_and_rewrites_the_append_only_file(tmp_path):
    server = PrivateRedis(tmp_path / "redis", appendonly=True)
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        settings = make_settings(tmp_path / "data", redis_url=server.url)
        client = QueueClient(settings)
        mine, theirs = f"walnut-{uuid.uuid4().hex[:8]}", f"pecan-{uuid.uuid4().hex[:8]}"
        request = Request(platform="telegram", user_id="41", model="llama3", prompt=mine)
        client.submit(request)  # the job's hash holds the Request
        outbox = history_outbox_key("box-a")
        waiting = [make_result(platform="telegram", user_id="41", prompt=mine)]
        waiting.append(make_result(platform="telegram", user_id="42", prompt=theirs))
        waiting.append(make_result(platform="discord", user_id="41", prompt=theirs))
        client.connection.rpush(outbox, *(r.model_dump_json() for r in waiting))
        aof = tmp_path / "redis" / "appendonly.aof"
        assert holding_on_disk(aof, tmp_path, mine) == [outbox, f"rq:job:{request.id}"]

        client.forget([request.id], "telegram", "41")

        assert holding(client.connection, mine) == []
        kept = client.connection.lrange(outbox, 0, -1)
        assert len(kept) == 2 and all(theirs.encode() in raw for raw in kept), "other users' results stay"
        deadline = time.monotonic() + 30
        while client.connection.info("persistence")["aof_rewrite_in_progress"] or mine.encode() in aof.read_bytes():
            assert time.monotonic() < deadline, "the append-only file was not rewritten"
            time.sleep(0.1)
        assert holding_on_disk(aof, tmp_path, mine) == []
        assert holding_on_disk(aof, tmp_path, theirs) == [outbox]
    finally:
        server.stop()


@pytest.fixture
def own_postgres_database() -> Iterator[str]:
    """A database of the test's own: VACUUM's horizon is per database, so another test's open
    transaction elsewhere on the server cannot keep our dead rows alive."""
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"jb_forget_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except sqlalchemy.exc.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc})")
        pytest.skip(f"PostgreSQL is not reachable ({exc})")
    url = sqlalchemy.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def tuples_holding(engine: sqlalchemy.Engine, table: str, word: str) -> int:
    """Row versions of `table` (live or dead, and of its TOAST table) whose bytes contain `word`."""
    query = sqlalchemy.text(
        "SELECT count(*) FROM generate_series(0, pg_relation_size(CAST(:rel AS regclass))"
        " / current_setting('block_size')::int - 1) AS page,"
        " LATERAL heap_page_items(get_raw_page(CAST(:name AS text), page::int)) AS item"
        " WHERE position(convert_to(:word, 'UTF8') IN item.t_data) > 0"
    )
    toast = sqlalchemy.text(
        "SELECT CAST(reltoastrelid AS regclass)::text FROM pg_class WHERE oid = CAST(:t AS regclass)"
    )
    with engine.connect() as connection:
        relations = [r for r in (table, connection.execute(toast, {"t": table}).scalar()) if r != "-"]
        return sum(connection.execute(query, {"rel": r, "name": r, "word": word}).scalar() for r in relations)


def test_forget_on_postgresql_leaves_no_row_version_holding_the_words(own_postgres_database):
    store = HistoryStore.open(own_postgres_database)
    with store.engine.begin() as connection:
        try:
            connection.execute(sqlalchemy.text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        except sqlalchemy.exc.DBAPIError as exc:
            pytest.skip(f"pageinspect is not available here: {exc.orig}")
    prompt, system = f"saffron-{uuid.uuid4().hex[:8]}", f"cumin-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        store.record(make_result(platform="telegram", user_id="7", prompt=f"{prompt} {n}"))
    store.record(make_result(platform="telegram", user_id="8", prompt="someone else's"))
    store.set_system_prompt("telegram", "7", system)
    assert tuples_holding(store.engine, "exchanges", prompt) == 3

    assert len(store.forget("telegram", "7")) == 3

    assert tuples_holding(store.engine, "exchanges", prompt) == 0, "a dead row version still holds the prompt"
    assert tuples_holding(store.engine, "users", system) == 0, "a dead row version still holds the system prompt"
    assert tuples_holding(store.engine, "exchanges", "someone else's") == 1
    store.engine.dispose()


def test_when_redis_does_not_answer_nothing_is_forgotten_and_asking_again_works(tmp_path):
    away = make_settings(tmp_path / "data", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    store = HistoryStore.open(away.sqlalchemy_url)
    (exchange_id,) = [store.record(make_result(platform="telegram", user_id="5", prompt="kept for now"))]
    proc = run_cli(away, "history", "--forget", "telegram:5", timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("joulebot: nothing was forgotten: the queue"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert store.get(exchange_id).prompt == "kept for now", "history is left as it was, to be forgotten again"


def test_the_user_is_told_which_questions_are_still_being_answered(tmp_path, system_redis_url):
    settings = make_settings(tmp_path / "data", redis_url=system_redis_url, queue_name=f"fg-{uuid.uuid4().hex[:8]}")
    chat = ChatService(settings, "telegram")
    chat.history.record(make_result(platform="telegram", user_id="6", prompt="answered before"))
    waiting = Request(platform="telegram", user_id="6", chat_id="6", model="llama3", prompt="still waiting")
    delivery = chat.asking.submit([waiting], None)  # no worker serves this queue: it waits
    try:
        said = chat.preferences.forget("6")
        assert said.startswith("Deleted the prompts and answers of 1 exchange.")
        assert "1 question still being answered will be stored when answered: /forget again then." in said
    finally:
        chat.client.cancel(chat.client.job(waiting.id))
        chat.following.delivered(delivery)


@pytest.mark.unit
def test_what_a_forget_says_counts_right_and_owns_up_to_copies_the_queue_kept():
    assert Forgotten(1, 0).told(0, "/forget") == (
        "Deleted the prompts and answers of 1 exchange. Their anonymous energy figures stay in the statistics."
    )
    assert Forgotten(3, 2).said() == "3 exchanges and 2 kept images"
    told = Forgotten(2, 0, queue_left=1).told(1, "forget")
    assert "its copies of 1 answer stored meanwhile stay until they expire, RESULT_TTL_S" in told
    assert told.endswith("1 question still being answered will be stored when answered: forget again then.")
