"""What a page and its JSON twin both show, gathered once: the boxes' rows, a model's distributions,
the table's cells. Blocking (history, Redis): routes run these in the thread pool."""

from __future__ import annotations

from typing import Any

from joulebot.config import Settings
from joulebot.history.aggregates import METRICS, Metric, settings_note
from joulebot.history.intervals import Basis
from joulebot.queueing.queue_states import RedisUnavailable, read_queues
from joulebot.web import charts
from joulebot.web.history_view import HistoryView
from joulebot.web.page import Page

UNSEEN = {"last_answer_at": None, "meter": None, "idle_w": None, "intensity": None, "answers_last_hour": None}


def box_rows(settings: Settings, history: HistoryView, page: Page) -> list[dict]:
    """One row per box: its queue as Redis has it now, beside its latest answer in history."""
    summaries = page.history(history.box_summaries, default={})
    try:
        queues = read_queues(settings)
    except RedisUnavailable as exc:
        page.banners.append(str(exc))
        queues = []
    rows = []
    for q in queues:
        box = q.box or q.queue  # a queue no box announced: its name is the best guess (often the box's)
        rows.append({"queue": q, **summaries.pop(box, {**UNSEEN, "box": box})})
    return rows + [{"queue": None, **summary} for summary in summaries.values()]


def box_json(row: dict) -> dict[str, Any]:
    q, intensity = row.get("queue"), row.get("intensity")
    return {
        "box": row["box"],
        "queue": q.queue if q else None,
        "worker_alive": q.worker_alive if q else None,
        "state": q.state if q else None,
        "queued": q.queued if q else None,
        "models": q.models if q else None,
        "meter": row.get("meter"),
        "idle_w": row.get("idle_w"),
        "answers_last_hour": row.get("answers_last_hour"),
        "intensity": intensity.model_dump(mode="json") if intensity else None,
        "intensity_label": intensity.label() if intensity else None,
        "last_answer_at": row["last_answer_at"].isoformat() if row.get("last_answer_at") else None,
    }


def distributions(history: HistoryView, name: str) -> list[dict]:
    """A model's histograms (energy per answer, per token) and daily means, one per basis and generation
    settings (named where the model has answers of several)."""
    charts_out = []
    for key in ("j_answer", "j_token"):
        metric = METRICS[key]
        values_of = history.distribution(name, metric)
        for (basis, settings), values in _in_order(values_of):
            what = f"{name}{settings_note(settings, _several(values_of))}: {metric.label}, {basis.slug}"
            chart = charts.histogram(values, metric.unit, what)
            charts_out.append(_chart(metric, basis, settings, values_of, chart) | {"values": values})
    metric = METRICS["j_answer"]
    days_of = history.daily(name, metric)
    for (basis, settings), days in _in_order(days_of):
        what = f"{name}{settings_note(settings, _several(days_of))}: mean {metric.label} per day, {basis.slug}"
        chart = charts.timeline(days, metric.unit, what)
        charts_out.append(_chart(metric, basis, settings, days_of, chart) | {"days": days})
    return charts_out


def _in_order(by_basis: dict[tuple[Basis, str], Any]) -> list[tuple[tuple[Basis, str], Any]]:
    return sorted(by_basis.items(), key=lambda kv: (kv[0][0].slug, kv[0][1]))


def _several(by_basis: dict[tuple[Basis, str], Any]) -> bool:
    """Whether the model's answers here were made with more than one set of generation settings."""
    return len({settings for _, settings in by_basis}) > 1


def _chart(metric: Metric, basis: Basis, settings: str, of: dict[tuple[Basis, str], Any], chart: Any) -> dict:
    note = settings_note(settings, _several(of))
    return {"metric": metric, "basis": basis, "settings": settings, "settings_note": note, "chart": chart}


def table_rows(history: HistoryView, metric: Metric, box: str | None) -> list[dict]:
    return [
        {
            "box": s.basis.box,
            "source": s.basis.source,
            "measured": s.basis.measured,
            "with_images": s.basis.images,
            "model": row.model,
            "generation_settings": row.settings,
            "category": category,
            "metric": metric.key,
            "unit": metric.unit,
            "n": mean.n,
            "mean": mean.mean,
            "ci95": mean.ci95,
        }
        for s in history.table(metric, box)
        for (row, category), mean in sorted(s.cells.items())
    ]


def answer_json(answer: dict) -> dict:
    data = {k: v for k, v in answer.items() if k not in ("intensity", "prompt", "answer")}
    data["started_at"] = answer["started_at"].isoformat() if answer.get("started_at") else None
    data["intensity_label"] = answer["intensity"].label() if answer.get("intensity") else None
    return data
