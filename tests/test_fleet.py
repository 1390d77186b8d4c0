"""A fleet of metered boxes behind one front end, routed to the greenest.

Real worker processes (each its own BOX_NAME, GRID_ZONE and queue), one Redis of the
test's own, PostgreSQL, the Electricity Maps stand-in giving each zone its own
intensity, and the Ollama stand-in as the model (no weights: fast lane). The front
end knows nothing but REDIS_URL and DATABASE_URL.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fleet_views import box_view
from rq.job import Job
from standins import BotApiStandIn, ElectricityMapsStandIn, OllamaStandIn, PrivateRedis
from testenv import CONFIG_VARS, make_settings, postgres_schema

from joulebot.chat.asking import build_request
from joulebot.chat.footer import footer
from joulebot.chat.status import status_text
from joulebot.exchange import Request, Result
from joulebot.keys import box_profile_versions_key, box_profiles_key, box_queues_key, box_seen_key, box_states_key
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import JobError, Progress, QueueClient
from joulebot.queueing.fleet import Fleet
from joulebot.queueing.routing import RoutingRefused, route

LOST_AFTER_S = 3  # short, so that a killed box drops out quickly
ZONES = {"FR": 50.0, "DE": 400.0, "PL": 700.0}
BOTH = {"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B"}


@dataclass
class Box:
    name: str
    zone: str
    ollama: OllamaStandIn
    process: subprocess.Popen


@dataclass
class Rig:
    """One Redis, one PostgreSQL schema, the intensity stand-in, and a worker per box."""

    root: Path
    database_url: str
    redis: PrivateRedis = field(init=False)
    intensity: ElectricityMapsStandIn = field(init=False)
    boxes: dict[str, Box] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "redis").mkdir(parents=True)
        self.redis = PrivateRedis(self.root / "redis")
        self.redis.start()
        self.intensity = ElectricityMapsStandIn(ZONES)

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in (*CONFIG_VARS, "ROUTING", "MAX_ROUTING_WAIT_S")}
        env.update(
            REDIS_URL=self.redis.url,
            DATABASE_URL=self.database_url,
            WORKER_LOST_AFTER_S=str(LOST_AFTER_S),
            JOULEBOT_DATA_DIR=str(self.root / "front"),
        )
        env.update(extra)
        return env

    def start(self, name: str, zone: str, models: dict[str, str] = BOTH) -> Box:
        ollama = OllamaStandIn(dict(models))
        env = self._env(
            BOX_NAME=name,
            GRID_ZONE=zone,
            OLLAMA_HOST=ollama.url,
            DEFAULT_MODEL="tinyllama",
            METERS="estimate",
            IDLE_BASELINE_S="0.2",
            ELECTRICITY_MAPS_TOKEN=self.intensity.token,
            ELECTRICITY_MAPS_URL=self.intensity.api_url,
            JOULEBOT_DATA_DIR=str(self.root / name),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "joulebot", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.boxes[name] = Box(name, zone, ollama, process)
        return self.boxes[name]

    def fleet(self) -> Fleet:
        return Fleet(self.client().connection, LOST_AFTER_S)

    def wait_live(self, *names: str, timeout: float = 90) -> None:
        fleet = self.fleet()
        _wait(lambda: set(names) <= {v.name for v in fleet.live()}, timeout, f"boxes {names} to be live")

    def client(self, **settings) -> QueueClient:
        """An in-process front end that knows only REDIS_URL and DATABASE_URL (no QUEUE_NAME)."""
        values = {
            "redis_url": self.redis.url,
            "database_url": self.database_url,
            "queue_name": "",
            "box_name": "front-end",
            "worker_lost_after_s": LOST_AFTER_S,
            **settings,
        }
        return QueueClient(make_settings(self.root / "front", **values))

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "joulebot", *args],
            env=self._env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def close(self) -> None:
        for box in self.boxes.values():
            if box.process.poll() is None:
                box.process.kill()
            box.process.communicate(timeout=30)
            box.ollama.close()
        self.intensity.close()
        self.redis.kill()


def _wait(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _routed(client: QueueClient, model: str, prompt: str, box: str | None = None):
    catalog = catalog_for_front_end(client.settings, client.connection)
    request = build_request(client.settings, catalog, platform="cli", user_id="tester", prompt=prompt, model=model)
    (routed,) = client.route([request], box)
    return routed


def _submit(client: QueueClient, model: str, prompt: str, box: str | None = None):
    return client.submit(_routed(client, model, prompt, box))


def _ask(client: QueueClient, model: str, prompt: str, box: str | None = None) -> Result:
    return client.wait(_submit(client, model, prompt, box), timeout_s=90)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """One PostgreSQL schema for the module's fleet (its boxes' history is what the stats tests read)."""
    yield from postgres_schema()


@pytest.fixture(scope="module")
def three(tmp_path_factory, database_url) -> Iterator[Rig]:
    """box-fr (50 g/kWh) and box-de (400) offer llama3 and tinyllama; box-pl (700) only tinyllama."""
    rig = Rig(tmp_path_factory.mktemp("fleet3"), database_url)
    try:
        rig.start("box-fr", "FR")
        rig.start("box-de", "DE")
        rig.start("box-pl", "PL", {"tinyllama:1.1b": "1.1B"})
        rig.wait_live("box-fr", "box-de", "box-pl")
        yield rig
    finally:
        rig.close()


@pytest.fixture
def two(tmp_path, database_url) -> Iterator[Rig]:
    rig = Rig(tmp_path / "fleet2", database_url)
    try:
        rig.start("box-a", "FR")
        rig.start("box-b", "DE")
        rig.wait_live("box-a", "box-b")
        yield rig
    finally:
        rig.close()


# --- discovery ---------------------------------------------------------------------------------


def test_boxes_announce_themselves_and_the_front_end_lists_them(three):
    listing = three.cli("boxes", "--json")
    assert listing.returncode == 0, listing.stderr
    boxes = {b["profile"]["box"]: b for b in json.loads(listing.stdout)}
    assert set(boxes) == {"box-fr", "box-de", "box-pl"}
    for name, zone in (("box-fr", "FR"), ("box-de", "DE"), ("box-pl", "PL")):
        profile = boxes[name]["profile"]
        assert boxes[name]["live"] and profile["queue"] == name  # each its own queue, named after the box
        assert (profile["zone"], profile["intensity_g_per_kwh"]) == (zone, ZONES[zone])
        assert profile["intensity_provenance"] in ("live", "cached")  # from the Electricity Maps stand-in
        assert "Electricity Maps" in profile["intensity_label"]
        assert profile["meter_scope"] == "estimate" and profile["meters"]
        assert boxes[name]["state"] == "idle"
    assert {m["name"] for m in boxes["box-pl"]["profile"]["models"]} >= {"tinyllama"}
    assert "llama3" not in {m["name"] for m in boxes["box-pl"]["profile"]["models"]}
    assert {"llama3", "tinyllama"} <= {m["name"] for m in boxes["box-fr"]["profile"]["models"]}

    text = three.cli("boxes")
    assert text.returncode == 0, text.stderr
    assert "box-fr · live · idle" in text.stdout and "FR: 50 g/kWh (FR, " in text.stdout
    assert {r["query"]["zone"] for r in three.intensity.requests} == {"FR", "DE", "PL"}


def _announce(connection, box: str, profile: str, seen: str) -> None:
    """What a worker's heartbeat writes, written by something else."""
    connection.hset(box_profiles_key(), box, profile)
    connection.hset(box_seen_key(), box, seen)
    connection.hset(box_queues_key(), box, box)
    connection.hset(box_states_key(), box, "idle")
    connection.hset(box_profile_versions_key(), box, connection.hincrby(box_profile_versions_key(), "*", 1))


def test_what_a_fake_box_writes_never_reaches_routing_or_a_front_end(three):
    """A non-numeric heartbeat made every front end raise TypeError; negative, zero-energy or NaN figures
    from a fake box won every routing decision. Each such box is left out (and logged); the real ones serve."""
    connection = three.client().connection
    real = json.loads(connection.hget(box_profiles_key(), "box-fr"))
    now = str(connection.time()[0])
    fakes = {
        "fake-negative": ({**real, "box": "fake-negative", "queue": "fake-negative", "intensity_g_per_kwh": -50}, now),
        "fake-nan": ({**real, "box": "fake-nan", "queue": "fake-nan", "embodied_g_per_s": "NaN"}, now),
        "fake-means": (
            {
                **real,
                "box": "fake-means",
                "queue": "fake-means",
                "means": [
                    {"model": "llama3", "category": "questions", "answers": 50, "mean_total_j": -1e6, "mean_seconds": 1}
                ],
            },
            now,
        ),
        "fake-beat": ({**real, "box": "fake-beat", "queue": "fake-beat"}, "yesterday"),
        "fake-name": ({**real, "queue": "fake-name"}, now),  # claims to be box-fr
    }
    try:
        for box, (profile, seen) in fakes.items():
            _announce(connection, box, json.dumps(profile).replace('"NaN"', "NaN"), seen)
        assert {v.name for v in three.fleet().boxes()} == {"box-fr", "box-de", "box-pl"}
        listing = three.cli("boxes")
        assert listing.returncode == 0 and "fake" not in listing.stdout, listing.stderr
        assert _ask(three.client(), "llama3", "Capital of Peru?").box == "box-fr"
    finally:
        for key in (box_profiles_key(), box_seen_key(), box_queues_key(), box_states_key(), box_profile_versions_key()):
            connection.hdel(key, *fakes)


# --- routing -----------------------------------------------------------------------------------


def test_greenest_sends_the_answer_to_the_cleanest_grid_and_says_why(three):
    result = _ask(three.client(), "llama3", "Capital of France?")
    assert result.box == "box-fr"
    assert result.routing is not None and result.routing.policy == "greenest"
    assert result.routing.intensity_g_per_kwh == 50 and result.routing.candidates == 2  # box-pl has no llama3
    assert "📍 box-fr: " in footer(result) and "50 g/kWh" in footer(result)
    assert result.carbon.intensity.zone == "FR" and result.carbon.intensity.g_per_kwh == 50

    asked = three.cli("ask", "-m", "tinyllama", "Capital of Italy?")
    assert asked.returncode == 0, asked.stderr
    assert "📍 box-fr: " in asked.stdout and "50 g/kWh" in asked.stdout


def test_pinning_a_box_and_what_is_refused(three):
    pinned = three.cli("ask", "-m", "llama3", "--box", "box-de", "--json", "Capital of Spain?")
    assert pinned.returncode == 0, pinned.stderr
    result = Result.model_validate_json(pinned.stdout)
    assert result.box == "box-de" and result.routing.policy == "pinned"
    assert result.carbon.intensity.g_per_kwh == 400

    unknown = three.cli("ask", "--box", "box-xx", "Hello?")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "joulebot: unknown box 'box-xx'; live boxes: box-de, box-fr, box-pl"
    lacking = three.cli("ask", "-m", "llama3", "--box", "box-pl", "Hello?")
    assert lacking.returncode == 2 and len(lacking.stderr.strip().splitlines()) == 1
    assert "box box-pl does not offer llama3; it offers: " in lacking.stderr and "tinyllama" in lacking.stderr
    nowhere = three.cli("ask", "-m", "mistral", "Hello?")
    assert nowhere.returncode == 2 and len(nowhere.stderr.strip().splitlines()) == 1
    assert "Traceback" not in nowhere.stderr
    routing_env = three.cli("ask", "-m", "llama3", "--json", "Capital of Peru?", ROUTING="box-de")
    assert Result.model_validate_json(routing_env.stdout).box == "box-de"


def test_a_busy_greenest_box_and_the_fastest_policy(three):
    fr = three.boxes["box-fr"]
    fr.ollama.chunk_delay_s = 0.5  # ~2.5 s per answer on box-fr
    client = three.client()
    try:
        backlog = [_submit(client, "llama3", f"Backlog {i}?", box="box-fr") for i in range(3)]
        _wait(
            lambda: three.fleet().live() and next(v for v in three.fleet().live() if v.name == "box-fr").load >= 2,
            what="a backlog on box-fr",
        )
        fastest = _ask(three.client(routing="fastest"), "llama3", "Quick: capital of Chile?")
        assert fastest.box == "box-de" and fastest.routing.policy == "fastest"
        bounded = _ask(three.client(max_routing_wait_s=0.001), "llama3", "Capital of Japan?")
        assert bounded.box == "box-de" and "box-fr would wait" in bounded.routing.reason
        for job in backlog:
            assert client.wait(job, timeout_s=60).box == "box-fr"
    finally:
        fr.ollama.chunk_delay_s = 0.0


def test_compare_runs_both_models_on_one_box(three):
    compared = three.cli("compare", "llama3", "tinyllama", "--json", "Capital of Norway?")
    assert compared.returncode == 0, compared.stderr
    pair = json.loads(compared.stdout)
    a, b = Result.model_validate(pair["a"]), Result.model_validate(pair["b"])
    # which box is greenest moves as the boxes republish their means (earlier tests slowed box-fr's answers),
    # so it is read from A's routing, not assumed: B follows A, even where another box would be greener for B
    assert a.routing is not None and b.routing is not None
    assert a.box == b.box == a.routing.box
    assert (a.routing.policy, b.routing.policy) == ("greenest", "compare")
    pinned = three.cli("compare", "llama3", "tinyllama", "--box", "box-de", "--json", "Capital of Sweden?")
    pair = json.loads(pinned.stdout)
    assert pair["a"]["box"] == pair["b"]["box"] == "box-de"
    refused = three.cli("compare", "llama3", "tinyllama", "--box", "box-pl", "Capital of Finland?")
    assert refused.returncode == 2 and "box box-pl does not offer llama3" in refused.stderr


def test_stats_are_per_box(three):
    _ask(three.client(), "llama3", "Capital of Estonia?", box="box-fr")  # on its own (xdist may run it first)
    _ask(three.client(), "tinyllama", "Translate 'hello' to French", box="box-pl")
    every = three.cli("stats")
    assert every.returncode == 0, every.stderr
    assert "── box box-fr ──" in every.stdout and "── box box-pl ──" in every.stdout
    only = three.cli("stats", "--box", "box-pl")
    assert only.returncode == 0 and "energy: estimated (no meter) on box-pl" in only.stdout
    assert "box-fr" not in only.stdout and "llama3" not in only.stdout  # box-pl has no llama3
    rows = list(csv.DictReader(io.StringIO(three.cli("stats", "--csv").stdout)))
    assert {(r["box"], r["model"]) for r in rows} >= {("box-pl", "tinyllama"), ("box-fr", "llama3")}
    assert ("box-pl", "llama3") not in {(r["box"], r["model"]) for r in rows}
    unknown = three.cli("stats", "--box", "box-xx")
    assert unknown.returncode == 2 and "boxes in history: " in unknown.stderr
    assert {"box-fr", "box-pl"} <= set(unknown.stderr.split("boxes in history: ")[1].strip().split(", "))


def test_the_benchmark_fans_out_over_boxes_with_one_table_each(three, tmp_path):
    ran = three.cli(
        "bench",
        "--models",
        "tinyllama",
        "--categories",
        "math,sql",
        "--n",
        "1",
        "--run",
        "fan",
        "--boxes",
        "box-fr,box-pl",
        "--out",
        str(tmp_path),
    )
    assert ran.returncode == 0, ran.stderr
    assert "4 answers measured" in ran.stdout
    assert "── box box-fr ──" in ran.stdout and "── box box-pl ──" in ran.stdout and "box-de" not in ran.stdout
    rows = list(csv.DictReader((tmp_path / "fan.csv").open()))
    assert sorted((r["box"], r["category"]) for r in rows) == [
        ("box-fr", "math"),
        ("box-fr", "sql"),
        ("box-pl", "math"),
        ("box-pl", "sql"),
    ]
    refused = three.cli("bench", "--models", "llama3", "--n", "1", "--boxes", "box-pl", "--run", "no")
    assert refused.returncode == 2 and "box box-pl does not offer llama3" in refused.stderr


# --- chat --------------------------------------------------------------------------------------


def test_telegram_lists_the_boxes_and_a_user_pins_one(three):
    token = "123456:FLEET-token"
    api = BotApiStandIn(token)
    env = three._env(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=api.base_url, DEFAULT_MODEL="llama3")
    bot = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "telegram"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        api.message(601, "/boxes")
        _, listing = api.wait_for(lambda m, p: m == "sendMessage" and p["text"].startswith("Measurement boxes"))
        assert "box-fr — live" in listing["text"] and "FR 50 g/kWh" in listing["text"]
        assert "box-pl — live" in listing["text"] and "tinyllama (1.1B)" in listing["text"]
        api.message(601, "/models")
        _, models = api.wait_for(lambda m, p: m == "sendMessage" and p["text"].startswith("Models on the live boxes"))
        llama3 = next(line for line in models["text"].splitlines() if line.startswith("• llama3 (8.0B, "))
        assert "box-fr" in llama3 and "box-de" in llama3 and "box-pl" not in llama3
        api.message(601, "/box box-xx")
        api.wait_for(
            lambda m, p: (
                m == "sendMessage" and p["text"] == "no live box named 'box-xx'; live boxes: box-de, box-fr, box-pl"
            )
        )
        api.message(601, "/box box-de")
        api.wait_for(lambda m, p: m == "sendMessage" and p["text"].startswith("Your questions now go to box-de"))
        api.message(601, "Capital of Austria?")
        _, answer = api.wait_for(lambda m, p: m == "editMessageText" and "📍" in p["text"], timeout=90)
        assert "📍 box-de: pinned, 400 g/kWh" in answer["text"]
        api.message(601, "/box auto")
        api.wait_for(lambda m, p: m == "sendMessage" and p["text"].startswith("Your questions go to the box chosen"))
        api.message(601, "Capital of Hungary?")

        # routing decides again (which box depends on what the earlier tests measured on each)
        def second_answer(method: str, params: dict) -> bool:
            later = method == "editMessageText" and params["message_id"] != answer["message_id"]
            return later and "📍" in params["text"]

        _, routed = api.wait_for(second_answer, timeout=90)
        assert "📍 box-de: pinned" not in routed["text"] and "lowest" in routed["text"]
    finally:
        bot.send_signal(signal.SIGINT)
        logs, _ = bot.communicate(timeout=30)
        api.close()
    assert "Traceback" not in logs and token.split(":")[1] not in logs, logs


# --- failover ----------------------------------------------------------------------------------


def _one_running_one_waiting_on_box_a(two: Rig, seconds_per_chunk: float) -> tuple[QueueClient, Job, Job]:
    """A slow answer running on box-a (the greenest) and a second one queued behind it."""
    two.boxes["box-a"].ollama.chunk_delay_s = seconds_per_chunk
    client = two.client()
    running = _submit(client, "llama3", "Capital of Kenya?")
    _wait(lambda: client.progress(running).state != "queued", what="the answer to start on box-a")
    waiting = _submit(client, "llama3", "Capital of Ghana?")
    assert Request.model_validate(waiting.args[0]).routing.box == "box-a"  # queued behind the running one
    return client, running, waiting


def test_a_box_stopped_with_sigterm_finishes_its_answer_and_its_queue_moves(two):
    client, running, waiting = _one_running_one_waiting_on_box_a(two, 0.6)  # ~3 s per answer
    a = two.boxes["box-a"]
    a.process.send_signal(signal.SIGTERM)
    assert client.wait(running, timeout_s=60).box == "box-a"  # warm shutdown: the running answer completes
    moved = client.wait(waiting, timeout_s=60)
    assert moved.box == "box-b" and moved.routing.policy == "moved" and moved.routing.moved_from == "box-a"
    assert "📍 box-b: moved from box-a (stopped)" in footer(moved)
    assert a.process.wait(30) == 0
    assert _ask(client, "llama3", "Capital of Egypt?").box == "box-b"
    down = {v.name: v for v in two.fleet().boxes()}["box-a"]
    assert not down.live and down.state == "stopped"
    refused = two.cli("ask", "-m", "llama3", "--box", "box-a", "Hello?")
    assert refused.returncode == 2 and "box box-a is down" in refused.stderr and "live boxes: box-b" in refused.stderr


def test_a_killed_box_drops_out_and_its_queued_job_moves(two):
    client, running, waiting = _one_running_one_waiting_on_box_a(two, 1.0)
    two.boxes["box-a"].process.kill()
    with pytest.raises(JobError, match="stopped in the middle"):
        client.wait(running, timeout_s=60)
    moved = client.wait(waiting, timeout_s=60)  # once box-a's heartbeat lapsed
    assert moved.box == "box-b" and moved.routing.moved_from == "box-a"
    assert [v.name for v in two.fleet().live()] == ["box-b"]
    assert _ask(client, "llama3", "Capital of Mali?").box == "box-b"


def test_the_follower_moves_a_waiting_answer_off_a_box_that_stopped_and_delivers_both(two):
    """What the bots follow with: the process's one follower, not a wait per answer."""
    import asyncio

    from joulebot.queueing.follower import Finished, Follower, Status

    client, running, waiting = _one_running_one_waiting_on_box_a(two, 0.6)
    follower = Follower(client.settings)

    async def follow(job) -> tuple[list[Progress], Result]:
        shown = []
        async with follower.watch(job.id) as watch:
            async for event in watch:
                if isinstance(event, Status):
                    shown.append(event.progress)
                elif isinstance(event, Finished):
                    return shown, event.result
        raise AssertionError("no Result")

    async def scenario():
        both = asyncio.gather(follow(running), follow(waiting))
        await asyncio.sleep(1.0)
        two.boxes["box-a"].process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(both, 120)

    try:
        (_, first), (shown, moved) = asyncio.run(scenario())
    finally:
        follower.close()
    assert first.box == "box-a", "warm shutdown: the running answer completes"
    assert moved.box == "box-b" and moved.routing.policy == "moved" and moved.routing.moved_from == "box-a"
    assert shown[0].state == "queued" and shown[0].box == "box-a", "told where it waited first"


def test_a_restarted_box_keeps_its_queued_questions(two):
    """The systemd or compose restart of the only box offering a model: its running answer is delivered and
    the question queued behind it waits for the new worker. Before: the queued one failed at once with "box
    box-a stopped before running this question, and no measurement box is live (lately seen: none)"."""
    b = two.boxes["box-b"]
    b.process.send_signal(signal.SIGTERM)
    assert b.process.wait(30) == 0
    client, running, waiting = _one_running_one_waiting_on_box_a(two, 0.6)
    old = two.boxes["box-a"]
    old.process.send_signal(signal.SIGTERM)
    assert client.wait(running, timeout_s=60).box == "box-a"
    assert old.process.wait(30) == 0
    two.start("box-a", "FR")  # the process manager's restart
    old.ollama.close()
    restarted = client.wait(waiting, timeout_s=90)
    assert restarted.box == "box-a" and restarted.routing.moved_from is None


def test_a_queued_job_that_no_live_box_can_take_is_refused_not_left_waiting(two):
    """A stopped box that does not come back within BOX_RETURN_WAIT_S: one line, naming it as lately seen."""
    b = two.boxes["box-b"]
    b.process.send_signal(signal.SIGTERM)
    assert b.process.wait(30) == 0
    client, running, waiting = _one_running_one_waiting_on_box_a(two, 0.6)
    client = two.client(box_return_wait_s=1)
    two.boxes["box-a"].process.send_signal(signal.SIGTERM)
    client.wait(running, timeout_s=60)
    with pytest.raises(JobError) as refused:
        client.wait(waiting, timeout_s=60)
    assert str(refused.value).startswith(
        "box box-a stopped before running this question and was not back within 1 s;"
        " no measurement box is live (lately seen: box-a ("
    )


# --- routing as a function: the expected-CO2e arithmetic ------------------------------------------


@pytest.mark.unit
def test_expected_co2e_beats_intensity_when_both_boxes_have_measured_it():
    gpu = box_view("gpu-de", 400, [("llama3", "math", 5, 100.0)])  # 100 J × 400 g/kWh = 11 mg
    cpu = box_view("cpu-fr", 50, [("llama3", "math", 5, 2000.0)])  # 2000 J × 50 g/kWh = 28 mg
    decision = route([gpu, cpu], "llama3", "math", "greenest")
    assert decision.box == "gpu-de" and decision.reason.startswith("lowest expected CO2e")
    assert decision.expected_co2e_g == pytest.approx(100 / 3.6e6 * 400)
    # fewer than 5 answers on one box: intensity decides
    young = box_view("cpu-fr", 50, [("llama3", "math", 4, 2000.0)])
    assert route([gpu, young], "llama3", "math", "greenest").box == "cpu-fr"


@pytest.mark.unit
def test_the_fleet_mean_counts_only_boxes_metered_alike():
    measured = box_view("wall-a", 300, [("llama3", "code", 9, 50.0)], scope="wall")
    fresh = box_view("wall-b", 200)  # no answers yet: the wall-metered fleet mean (50 J) applies
    estimated = box_view("est-c", 100, [("llama3", "code", 9, 5.0)], scope="estimate")
    decision = route([measured, fresh], "llama3", "code", "greenest")
    assert decision.box == "wall-b" and decision.expected_j == 50.0
    mixed = route([measured, fresh, estimated], "llama3", "code", "greenest")
    assert mixed.expected_j == 5.0  # est-c: its own; wall-b never borrows the estimate's figure
    assert route([fresh, estimated], "llama3", "code", "greenest").reason.startswith("lowest grid intensity")


@pytest.mark.unit
def test_ties_go_to_the_shorter_queue_and_refusals_name_what_is_available():
    busy, idle = box_view("a", 100, queued=3), box_view("b", 100)
    assert route([busy, idle], "llama3", None, "greenest").box == "b"
    down = box_view("c", 10, live=False)
    with pytest.raises(RoutingRefused, match=r"^box c is down \(last seen 10 min ago\); live boxes: a, b$"):
        route([busy, idle, down], "llama3", None, "c")
    with pytest.raises(RoutingRefused, match=r"no live box offers gemma; offered: llama3 \(live boxes: a, b\)"):
        route([busy, idle, down], "gemma", None, "greenest")
    with pytest.raises(RoutingRefused, match=r"no measurement box is live \(lately seen: c \(10 min ago\)\)"):
        route([down], "llama3", None, "fastest")


@pytest.mark.unit
def test_the_status_line_names_the_box_and_why():
    waiting = Progress("queued", 0, 1, None, box="box-fr", why="lowest expected CO2e, 50 g/kWh")
    assert status_text(waiting) == "⏳ queued on box-fr (lowest expected CO2e, 50 g/kWh) — position 1"
    assert status_text(Progress("generating", box="box-fr", why="pinned, 50 g/kWh")) == (
        "✍️ generating on box-fr (pinned, 50 g/kWh)"
    )
    assert status_text(Progress("queued", 2, 1)) == "⏳ queued — position 3"  # one box, as before fleets
