"""The Electricity Maps v3 client: `carbon-intensity/latest` for one zone (or a point).

It raises `IntensityUnavailable` with a short reason on any failure; it never
logs. The token travels in a header only, but an error body is the server's
text and may echo it (or any other secret): reasons pass through `redact`
(`Settings.redact`) before they can reach a footer, history or a log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import requests

from joulebot.carbon.intensity import Intensity

SOURCE = "Electricity Maps"


class IntensityUnavailable(RuntimeError):
    """The live intensity could not be had; `str()` is a short reason, safe to log and show."""


class ElectricityMapsClient:
    def __init__(
        self,
        token: str,
        base_url: str,
        timeout_s: float = 3.0,
        emission_factor_type: str = "lifecycle",
        redact: Callable[[str], str] | None = None,
    ):
        self._token = token
        self._redact = redact or (lambda text: text.replace(token, "***") if token else text)
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.emission_factor_type = emission_factor_type
        self._session = requests.Session()

    def latest(self, zone: str, lat: float | None = None, lon: float | None = None) -> Intensity:
        params: dict[str, str | float] = {"emissionFactorType": self.emission_factor_type}
        if lat is not None and lon is not None:
            params.update(lat=lat, lon=lon)
        else:
            params["zone"] = zone
        try:
            response = self._session.get(
                f"{self.base_url}/carbon-intensity/latest",
                params=params,
                headers={"auth-token": self._token},
                timeout=self.timeout_s,
            )
        except requests.Timeout:
            raise IntensityUnavailable(f"no answer within {self.timeout_s:g} s") from None
        except requests.RequestException as exc:
            raise IntensityUnavailable(f"connection failed ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise IntensityUnavailable(self._http_reason(response))
        try:
            body = response.json()
            value = float(body["carbonIntensity"])
            observed = datetime.fromisoformat(str(body["datetime"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            raise IntensityUnavailable("malformed answer") from None
        if not 0 <= value < 5000:
            raise IntensityUnavailable(f"implausible intensity {value:g} g/kWh")
        return Intensity(
            g_per_kwh=value,
            zone=str(body.get("zone") or zone).upper(),
            provenance="live",
            source=SOURCE,
            observed_at=observed,
            is_estimated=body.get("isEstimated"),
        )

    def _http_reason(self, response: requests.Response) -> str:
        reason = f"HTTP {response.status_code}"
        if response.status_code == 401:
            # The free tier answers 401 over its rate limit too, not only for a bad token.
            reason += " (bad token, or over the rate limit)"
        try:
            message = response.json().get("message") or response.json().get("error")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            reason += f": {self._redact(message)[:120]}"  # redacted before cutting: no partial secret either
        return reason
