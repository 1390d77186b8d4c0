"""The Electricity Maps API stand-in: carbon intensity by zone."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from .servers import LocalServer, send_json


class ElectricityMapsStandIn(LocalServer):
    """Electricity Maps' v3 `GET /carbon-intensity/latest?zone=Z` (auth-token header), one intensity per
    zone, answering as the API documents: zone, carbonIntensity (gCO2eq/kWh), datetime, updatedAt,
    emissionFactorType, isEstimated, estimationMethod; 404 with a message for a zone it does not know."""

    def __init__(self, zones: dict[str, float], token: str = "em-test-token") -> None:
        self.zones, self.token = dict(zones), token
        self.requests: list[dict] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _json(self, status: int, body: dict) -> None:
                send_json(self, status, body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                standin.requests.append({"path": url.path, "query": query})
                if self.headers.get("auth-token") != standin.token:
                    self._json(401, {"message": "Unauthorized: missing or invalid auth-token"})
                elif url.path != "/v3/carbon-intensity/latest":
                    self._json(404, {"message": "Not found"})
                elif query.get("zone") not in standin.zones:
                    self._json(404, {"message": f"Zone '{query.get('zone')}' does not exist."})
                else:
                    now = time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime())
                    self._json(
                        200,
                        {
                            "zone": query["zone"],
                            "carbonIntensity": standin.zones[query["zone"]],
                            "datetime": now,
                            "updatedAt": now,
                            "createdAt": now,
                            "emissionFactorType": query.get("emissionFactorType", "lifecycle"),
                            "isEstimated": True,
                            "estimationMethod": "TIME_SLICER_AVERAGE",
                        },
                    )

        self._serve(Handler)

    @property
    def api_url(self) -> str:
        return f"{self.url}/v3"
