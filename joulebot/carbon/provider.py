"""Where the intensity for an answer comes from: live, cached, or the static table.

Live values are cached per zone for `INTENSITY_CACHE_TTL_S` (the free tier is
rate-limited). When the live source fails, a cached value is used while it is
younger than `INTENSITY_MAX_AGE_S`, else the static table; each figure carries
its provenance, and each failure reason is logged once per zone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from joulebot.carbon.electricity_maps import ElectricityMapsClient, IntensityUnavailable
from joulebot.carbon.intensity import Intensity, static_intensity
from joulebot.config import Settings

log = logging.getLogger(__name__)


class IntensityProvider:
    def __init__(
        self,
        zone: str,
        client: ElectricityMapsClient | None,
        cache_ttl_s: float = 300,
        max_age_s: float = 3600,
        lat: float | None = None,
        lon: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        zone_default: bool = False,
    ) -> None:
        self.zone = zone
        self.zone_default = zone_default  # every figure says so (Intensity.zone_default)
        self.client = client
        self.cache_ttl_s = cache_ttl_s
        self.max_age_s = max_age_s
        self.lat, self.lon = lat, lon
        self.clock = clock
        self._cached: tuple[float, Intensity] | None = None
        self._logged: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> IntensityProvider:
        client = None
        token = settings.electricity_maps_token.get_secret_value()
        if token:
            client = ElectricityMapsClient(
                token,
                settings.electricity_maps_url,
                settings.intensity_timeout_s,
                settings.emission_factor_type,
                redact=settings.redact,
            )
        return cls(
            settings.grid_zone,
            client,
            settings.intensity_cache_ttl_s,
            settings.intensity_max_age_s,
            settings.grid_lat,
            settings.grid_lon,
            zone_default=not {"grid_zone", "grid_lat", "grid_lon"} & settings.model_fields_set,
        )

    def current(self) -> Intensity:
        intensity = self._current()
        return intensity.model_copy(update={"zone_default": True}) if self.zone_default else intensity

    def _current(self) -> Intensity:
        if self.client is None:
            return static_intensity(self.zone)
        now = self.clock()
        if self._cached and now - self._cached[0] < self.cache_ttl_s:
            return self._as_cached(now)
        try:
            live = self.client.latest(self.zone, self.lat, self.lon)
        except IntensityUnavailable as exc:
            reason = str(exc)
            if reason not in self._logged:
                self._logged.add(reason)
                log.warning("live grid intensity for %s unavailable: %s", self.zone, reason)
            if self._cached and now - self._cached[0] < self.max_age_s:
                return self._as_cached(now, note=f"live unavailable: {reason}")
            return static_intensity(self.zone).with_note(f"live unavailable: {reason}")
        self._cached = (now, live)
        return live

    def _as_cached(self, now: float, note: str = "") -> Intensity:
        fetched, value = self._cached  # type: ignore[misc]
        return value.model_copy(update={"provenance": "cached", "age_s": now - fetched}).with_note(note)
