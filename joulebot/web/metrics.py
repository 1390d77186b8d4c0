"""Prometheus metrics, computed at scrape time from history (SQL aggregates) and Redis.

Counters come from history, so they survive restarts and every process serving them
agrees; nothing is counted in memory. The web app serves them at /metrics; a box
without the web app serves its own share (its box and queue only, so that summing
over instances does not count an answer twice) with `serve_worker_metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from joulebot.config import Settings
from joulebot.history import HistoryUnavailable, rollup
from joulebot.queueing.queue_states import RedisUnavailable, read_queues
from joulebot.web.history_view import HistoryView

log = logging.getLogger(__name__)

# joules per answer: from a short answer on a small box to a long one on a GPU server
STATES = ("idle", "generating", "cooling down", "no worker")


class JoulebotCollector:
    """One scrape: a few grouped SQL queries and one pass over the queues."""

    def __init__(self, settings: Settings, history: HistoryView, only_box: str | None = None) -> None:
        self.settings, self.history, self.only_box = settings, history, only_box

    def describe(self) -> list[Metric]:
        return []  # metrics are only known at scrape time; no checks against other collectors needed

    def collect(self) -> Iterator[Metric]:
        yield from self._history()
        yield from self._queues()

    def _history(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("joulebot_history_up", "1 when the history database could be read")
        try:
            totals = self.history.totals(self.only_box)
            buckets = self.history.energy_buckets(self.only_box)
            boxes = self.history.box_summaries()
        except HistoryUnavailable as exc:
            up.add_metric([], 0.0 if not exc.empty else 1.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from self._totals(totals)
        histogram = HistogramMetricFamily(
            "joulebot_energy_per_answer_joules",
            "Total machine energy per answer (J), per model, box, energy source, generation settings and whether"
            " it read images",
            labels=["model", "box", "source", "generation_settings", "images"],
        )
        for model, box, source, settings, images, *counts in buckets:
            *cumulative, count, total = counts
            edges = [(floatToGoString(b), int(c or 0)) for b, c in zip(rollup.ENERGY_BUCKETS, cumulative, strict=True)]
            labels = [model, box, source, settings, "true" if images else "false"]
            histogram.add_metric(labels, [*edges, ("+Inf", int(count))], float(total or 0.0))
        yield histogram
        yield from self._boxes(boxes)

    def _totals(self, totals: list[Any]) -> Iterator[Metric]:
        labels = ["model", "box", "task", "source", "measured", "generation_settings"]
        answers = CounterMetricFamily("joulebot_answers", "Answers stored in history", labels=labels)
        energy = CounterMetricFamily(
            "joulebot_energy_joules", "Total machine energy of the stored answers (J)", labels=labels
        )
        failures: dict[str, float] = {}
        for model, box, task, source, measured, settings, n, joules, failed in totals:
            key = [model, box, task, source, "true" if measured else "false", settings]
            answers.add_metric(key, float(n))
            energy.add_metric(key, float(joules))
            failures[box] = failures.get(box, 0.0) + float(failed or 0)
        yield answers
        yield energy
        meter_failures = CounterMetricFamily(
            "joulebot_meter_failures",
            "Meters that failed in an answer's window (the figure came from the next source)",
            labels=["box"],
        )
        for box, count in failures.items():
            meter_failures.add_metric([box], count)
        yield meter_failures

    def _boxes(self, boxes: dict[str, dict]) -> Iterator[Metric]:
        intensity = GaugeMetricFamily(
            "joulebot_grid_intensity_grams_per_kwh",
            "Grid carbon intensity of the box's latest answer (gCO2e/kWh)",
            labels=["box", "zone", "provenance"],
        )
        idle = GaugeMetricFamily(
            "joulebot_idle_power_watts", "Idle power of the box's latest answer's energy source (W)", labels=["box"]
        )
        for box, summary in boxes.items():
            if self.only_box is not None and box != self.only_box:
                continue
            if summary["intensity"] is not None:
                i = summary["intensity"]
                intensity.add_metric([box, i.zone, i.provenance], i.g_per_kwh)
            if summary["idle_w"] is not None:
                idle.add_metric([box], summary["idle_w"])
        yield intensity
        yield idle

    def _queues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("joulebot_redis_up", "1 when Redis could be read")
        try:
            queues = read_queues(self.settings)
        except RedisUnavailable:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        if self.only_box is not None:
            queues = [q for q in queues if q.queue == self.settings.queue_name]
        length = GaugeMetricFamily("joulebot_queue_length", "Jobs waiting in the box's queue", labels=["queue"])
        state = GaugeMetricFamily(
            "joulebot_box_state", "1 for the state the box's worker is in now", labels=["queue", "state"]
        )
        alive = GaugeMetricFamily("joulebot_worker_up", "1 while the queue's worker heartbeats", labels=["queue"])
        for q in queues:
            length.add_metric([q.queue], q.queued)
            alive.add_metric([q.queue], 1.0 if q.worker_alive else 0.0)
            current = "cooling down" if q.state.startswith("cooling down") else q.state
            for name in STATES:
                state.add_metric([q.queue, name], 1.0 if name == current else 0.0)
        yield length
        yield state
        yield alive


def registry_for(settings: Settings, history: HistoryView, only_box: str | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JoulebotCollector(settings, history, only_box))
    return registry


def serve_worker_metrics(settings: Settings, port: int | None = None) -> Any:
    """For the worker (METRICS_PORT): /metrics on its own thread, this box's share only.

    Returns prometheus_client's (server, thread); `server.shutdown()` stops it.
    """
    port = port or settings.metrics_port
    if port is None:
        raise ValueError("METRICS_PORT is not set")
    registry = registry_for(settings, HistoryView(settings.sqlalchemy_url), only_box=settings.box_name)
    server, thread = start_http_server(port, addr=settings.web_host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", settings.web_host, port)
    return server, thread
