"""The Electricity Maps client and the live → cached → static fallback, against a local stand-in."""

from __future__ import annotations

import logging

import pytest
from standins import HttpStandIn, Reply

from joulebot.carbon import IntensityProvider
from joulebot.carbon.electricity_maps import ElectricityMapsClient
from joulebot.config import Settings

TOKEN = "em-token-7f3a9c"  # a made-up secret: it must never appear in logs or labels


def ok(value: float = 123.4, zone: str = "DE", estimated: bool = False) -> Reply:
    return Reply(
        200,
        {
            "zone": zone,
            "carbonIntensity": value,
            "datetime": "2026-11-26T12:00:00.000Z",
            "updatedAt": "2026-11-26T12:04:05.000Z",
            "createdAt": "2026-11-23T12:00:00.000Z",
            "emissionFactorType": "lifecycle",
            "isEstimated": estimated,
            "estimationMethod": "TIME_SLICER_AVERAGE" if estimated else None,
        },
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api():
    standin = HttpStandIn()
    yield standin
    standin.close()


@pytest.fixture
def clock():
    return FakeClock()


def provider(api: HttpStandIn, clock: FakeClock, **kwargs) -> IntensityProvider:
    client = ElectricityMapsClient(TOKEN, api.url + "/v3", timeout_s=0.5)
    return IntensityProvider("DE", client, cache_ttl_s=300, max_age_s=3600, clock=clock, **kwargs)


def test_live_value_with_its_provenance_and_the_documented_request(api, clock):
    api.replies.append(ok(123.4, estimated=True))
    value = provider(api, clock).current()
    assert value.g_per_kwh == 123.4 and value.provenance == "live" and value.zone == "DE"
    assert value.observed_at.isoformat() == "2026-11-26T12:00:00+00:00"
    assert value.label() == "DE, live: Electricity Maps 2026-11-26 12:00 UTC, estimated by the source"
    (request,) = api.requests
    assert request["path"] == "/v3/carbon-intensity/latest"
    assert request["query"] == {"zone": ["DE"], "emissionFactorType": ["lifecycle"]}
    assert request["headers"]["auth-token"] == TOKEN


def test_lat_lon_replace_the_zone(api, clock):
    api.replies.append(ok())
    provider(api, clock, lat=52.5, lon=13.4).current()
    assert api.requests[0]["query"] == {"lat": ["52.5"], "lon": ["13.4"], "emissionFactorType": ["lifecycle"]}


def test_cache_serves_within_ttl_then_asks_again(api, clock):
    api.replies += [ok(100.0), ok(200.0)]
    p = provider(api, clock)
    assert p.current().g_per_kwh == 100.0
    clock.now += 120
    cached = p.current()
    assert cached.g_per_kwh == 100.0 and cached.provenance == "cached" and cached.age_s == 120
    assert "cached 2 min old" in cached.label()
    assert len(api.requests) == 1
    clock.now += 181
    assert p.current().g_per_kwh == 200.0 and len(api.requests) == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply(401, {"error": "Unauthorized", "message": "Invalid token"}),
            "HTTP 401 (bad token, or over the rate limit): Invalid token",
        ),
        (
            Reply(400, {"error": "Bad Request", "message": "Zone 'XX' does not exist"}),
            "HTTP 400: Zone 'XX' does not exist",
        ),
        (Reply(500, b"<html>oops</html>"), "HTTP 500"),
        (Reply(200, b"{not json"), "malformed answer"),
        (Reply(200, {"zone": "DE", "datetime": "2026-11-26T12:00:00Z"}), "malformed answer"),
        (Reply(200, {"zone": "DE", "carbonIntensity": -5, "datetime": "2026-11-26T12:00:00Z"}), "implausible"),
        (Reply(200, ok().body, delay_s=1.5), "no answer within 0.5 s"),
    ],
)
def test_failures_fall_back_to_static_with_the_reason(api, clock, caplog, reply, reason):
    api.replies.append(reply)
    with caplog.at_level(logging.DEBUG):
        value = provider(api, clock).current()
    assert value.provenance == "static" and value.g_per_kwh == pytest.approx(380.95)
    assert reason in value.label()
    assert reason in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in value.label()


def test_failure_uses_a_fresh_enough_cached_value_then_static(api, clock, caplog):
    api.replies += [ok(150.0), Reply(401, {"error": "Unauthorized"}), Reply(401, {"error": "Unauthorized"})]
    p = provider(api, clock)
    p.current()
    clock.now += 600  # past the TTL: asks, fails, the cached value is still young enough
    value = p.current()
    assert value.provenance == "cached" and value.g_per_kwh == 150.0
    assert "cached 10 min old" in value.label() and "live unavailable: HTTP 401" in value.label()
    clock.now += 3600  # now too old: the static table
    assert p.current().provenance == "static"
    assert caplog.text.count("live grid intensity for DE unavailable") == 1, "each reason is logged once"
    assert TOKEN not in caplog.text


def test_unreachable_server_falls_back(clock):
    client = ElectricityMapsClient(TOKEN, "http://127.0.0.1:9", timeout_s=0.5)
    value = IntensityProvider("FR", client, clock=clock).current()
    assert value.provenance == "static" and value.g_per_kwh == pytest.approx(56.04)
    assert "connection failed" in value.label()


@pytest.mark.unit
def test_no_token_means_static_without_a_request():
    settings = Settings(_env_file=None, grid_zone="fr")
    value = IntensityProvider.from_settings(settings).current()
    assert value.provenance == "static" and value.zone == "FR"


@pytest.mark.unit
def test_token_is_never_printed_by_settings():
    settings = Settings(_env_file=None, electricity_maps_token=TOKEN)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
