"""What a page and its JSON twin both show, gathered once: the boxes' rows, a model's distributions,
the table's cells. Blocking (history, Redis): routes run these in the thread pool."""

from __future__ import annotations

from typing import Any

from joulebot.config import Settings
from joulebot.history.aggregates import METRICS, Metric
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
    """A model's histograms (energy per answer, per token) and daily means, one per basis."""
    charts_out = []
    for key in ("j_answer", "j_token"):
        metric = METRICS[key]
        for basis, values in sorted(history.distribution(name, metric).items(), key=lambda kv: kv[0].slug):
            chart = charts.histogram(values, metric.unit, f"{name}: {metric.label}, {basis.slug}")
            charts_out.append({"metric": metric, "basis": basis, "chart": chart, "values": values})
    metric = METRICS["j_answer"]
    for basis, days in sorted(history.daily(name, metric).items(), key=lambda kv: kv[0].slug):
        chart = charts.timeline(days, metric.unit, f"{name}: mean {metric.label} per day, {basis.slug}")
        charts_out.append({"metric": metric, "basis": basis, "chart": chart, "days": days})
    return charts_out


def table_rows(history: HistoryView, metric: Metric, box: str | None) -> list[dict]:
    return [
        {
            "box": s.basis.box,
            "source": s.basis.source,
            "measured": s.basis.measured,
            "model": model,
            "category": category,
            "metric": metric.key,
            "unit": metric.unit,
            "n": mean.n,
            "mean": mean.mean,
            "ci95": mean.ci95,
        }
        for s in history.table(metric, box)
        for (model, category), mean in sorted(s.cells.items())
    ]


def answer_json(answer: dict) -> dict:
    data = {k: v for k, v in answer.items() if k not in ("intensity", "prompt", "answer")}
    data["started_at"] = answer["started_at"].isoformat() if answer.get("started_at") else None
    data["intensity_label"] = answer["intensity"].label() if answer.get("intensity") else None
    return data
