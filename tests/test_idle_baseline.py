"""The idle baseline off the answer's path: kept in Redis per box and meter, reused only by the
same box's same meters while fresh, and re-measured by the worker when no job runs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from testenv import make_settings

from joulebot.keys import idle_baseline_key
from joulebot.worker.idle import SETTLE_S, IdleKeeper
from joulebot.worker.station import Station


@pytest.fixture
def connection(system_redis_url):
    client = redis.Redis.from_url(system_redis_url)
    yield client
    client.close()


def station_with_keeper(tmp_path, connection, **overrides) -> tuple[Station, IdleKeeper]:
    settings = make_settings(tmp_path / "data", **{"meters": "estimate", "idle_baseline_s": 0.2, **overrides})
    station = Station(settings)
    station.idle_keeper = keeper = IdleKeeper(connection, station)
    return station, keeper


def forget_box(connection: redis.Redis, station: Station) -> None:
    connection.delete(*(idle_baseline_key(station.settings.box_name, s) for s in station.box.sources()))


def test_a_restarted_worker_reuses_its_box_baseline_instead_of_measuring(tmp_path, connection):
    first, _ = station_with_keeper(tmp_path, connection)
    try:
        measured = first.measure_idle()  # kept in Redis as it is measured
        again, keeper = station_with_keeper(tmp_path, connection, box_name=first.settings.box_name)
        assert keeper.restore() == [measured]
        assert again.box.idle == measured and again.box.idle_age_s() < 60
        again.warm_up()  # with a kept baseline, warming up measures nothing
        assert again.box.idle.measured_at == measured.measured_at
    finally:
        forget_box(connection, first)


def test_a_baseline_never_crosses_boxes_or_meters(tmp_path, connection):
    first, _ = station_with_keeper(tmp_path, connection)
    box = first.settings.box_name
    try:
        first.measure_idle()
        other_box, keeper = station_with_keeper(tmp_path, connection)  # its own box name
        assert keeper.restore() == [] and other_box.box.idle is None
        other_meter, keeper = station_with_keeper(
            tmp_path, connection, box_name=box, estimate_idle_w=9.0, estimate_w_per_core=10.0
        )
        assert keeper.restore() == [] and other_meter.box.idle is None  # another estimate model
        # a value copied under this box's key but written by another box is not taken either
        kept = connection.get(idle_baseline_key(box, "estimate"))
        stranger, keeper = station_with_keeper(tmp_path, connection)
        connection.set(idle_baseline_key(stranger.settings.box_name, "estimate"), kept)
        assert keeper.restore() == []
        forget_box(connection, stranger)
    finally:
        forget_box(connection, first)


def test_a_stale_baseline_is_not_reused(tmp_path, connection):
    first, _ = station_with_keeper(tmp_path, connection, idle_refresh_s=1.0)
    try:
        first.measure_idle()
        time.sleep(1.2)
        _, keeper = station_with_keeper(tmp_path, connection, box_name=first.settings.box_name, idle_refresh_s=1.0)
        assert keeper.restore() == []
    finally:
        forget_box(connection, first)


def test_no_baseline_means_no_guess_then_one_measured_when_quiet_never_during_a_job(tmp_path, connection):
    station, keeper = station_with_keeper(tmp_path, connection)
    try:
        assert keeper.restore() == [] and keeper.due()
        station.prepare(lambda _: None)  # a job on a fresh box does not wait for a measurement
        assert station.box.idle is None
        energy = station.box.measure(lambda: time.sleep(0.05))[1]
        assert energy.total_j is not None and energy.attributable_j is None  # total only, nothing guessed

        station.last_job_end = time.monotonic()
        assert not keeper.refresh_if_quiet(), "right after a job the box is not idle yet"
        station.last_job_end -= SETTLE_S
        with station.busy:  # a job is running
            assert not keeper.refresh_if_quiet() and station.box.idle is None
        assert keeper.refresh_if_quiet()
        measured = station.box.idle
        assert measured is not None and not keeper.due()
        assert not keeper.refresh_if_quiet() and station.box.idle == measured  # fresh: nothing to do
        assert connection.exists(idle_baseline_key(station.settings.box_name, "estimate"))
    finally:
        forget_box(connection, station)


@pytest.mark.unit
def test_a_plain_station_still_measures_before_its_first_job(tmp_path):
    station = Station(make_settings(tmp_path / "data", meters="estimate", idle_baseline_s=0.2))
    station.prepare(lambda _: None)
    assert station.box.idle is not None


def test_a_job_that_arrives_while_the_box_measures_idle_stops_the_measurement_and_runs(tmp_path, connection):
    from standins import OllamaStandIn

    from joulebot.exchange import Request

    ollama = OllamaStandIn()
    window_s = 6.0  # the background measurement the job would otherwise wait for
    station, keeper = station_with_keeper(
        tmp_path, connection, idle_baseline_s=window_s, idle_settle_s=0.0, ollama_host=ollama.url
    )
    try:
        station.last_job_end -= SETTLE_S  # quiet long enough: the keeper measures
        outcome: list[bool] = []
        measuring = threading.Thread(target=lambda: outcome.append(keeper.refresh_if_quiet()))
        started = datetime.now(UTC)
        measuring.start()
        while not station.busy.locked() and measuring.is_alive():  # until the keeper holds the box
            time.sleep(0.01)
        assert station.busy.locked(), "the keeper is measuring"
        result = station.run(Request(platform="cli", user_id="u", model="llama3", prompt="Capital?"))
        measuring.join(30)
        assert outcome == [False], "the measurement gave way"
        assert result.started_at < started + timedelta(seconds=window_s), "the answer did not wait for the window"
        assert result.energy.total_j is not None and result.energy.attributable_j is None  # no guessed baseline
        assert station.box.idle is None, "nothing of the cut measurement is kept"
        assert not connection.exists(idle_baseline_key(station.settings.box_name, "estimate"))
    finally:
        forget_box(connection, station)
        ollama.close()
