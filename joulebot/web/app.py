"""The dashboard: Starlette routes rendering Jinja2 templates, JSON and CSV, and /metrics.

Read-only: history is opened read-only and Redis is only read. A page whose source is
down still renders, with a banner that says what is missing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from joulebot.carbon.sci import J_PER_KWH
from joulebot.config import Settings
from joulebot.number_format import grams, sig
from joulebot.web import charts
from joulebot.web.history_view import HOW_TO_GET_DATA, METRICS, HistoryUnavailable, HistoryView, Metric
from joulebot.web.live import RedisUnavailable, read_queues
from joulebot.web.metrics import registry_for

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50


class Page:
    """What one request gathered, and what it could not (the banners)."""

    def __init__(self) -> None:
        self.banners: list[str] = []
        self.empty = False

    def history(self, call, *args, default=None, **kwargs) -> Any:
        try:
            return call(*args, **kwargs)
        except HistoryUnavailable as exc:
            if exc.empty:
                self.empty = True
            elif str(exc) not in self.banners:
                self.banners.append(str(exc))
            return default


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"'{name}' must be a whole number from {low} to {high}, not {raw!r}.") from None
    if not low <= value <= high:
        raise HTTPException(400, f"'{name}' must be from {low} to {high}, not {value}.")
    return value


def _metric_param(request: Request) -> Metric:
    key = request.query_params.get("metric", "sci")
    if key not in METRICS:
        raise HTTPException(400, f"'metric' must be one of {', '.join(METRICS)}, not {key!r}.")
    return METRICS[key]


def _check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no parameters"
        raise HTTPException(400, f"Unknown query parameter {unknown[0]!r}; this page takes {takes}.")


def _value(metric: Metric, value: float) -> str:
    if metric.unit == "g CO2e":
        return grams(value)
    return f"{sig(value)} {metric.unit}"


def create_app(settings: Settings) -> Starlette:
    history = HistoryView(settings.sqlalchemy_url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.globals.update(public_url=settings.public_url.rstrip("/"), metrics=METRICS)
    env.filters.update(sig=lambda v: "–" if v is None else sig(v), grams=lambda v: "–" if v is None else grams(v))
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else (v or "–")
    registry = registry_for(settings, history)

    def render(request: Request, template: str, page: Page, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(
            request, template, {"page": page, "how_to": HOW_TO_GET_DATA, **context}, status_code=status
        )

    async def table(request: Request) -> Response:
        _check_params(request, {"metric", "box"})
        metric, box = _metric_param(request), request.query_params.get("box")
        page = Page()
        boxes: list[str] = []
        if box is not None:  # the toggle needs every box; unfiltered, the table's own groups name them
            boxes = await run_in_threadpool(page.history, history.boxes, default=[])
            if not page.banners and box not in boxes:
                raise HTTPException(404, f"No box named {box!r} has answers in history.")
        sections = await run_in_threadpool(page.history, history.table, metric, box, default=[])
        boxes = boxes or sorted({s.population.box for s in sections})
        for section in sections:
            means = {key: m.mean for key, m in section.cells.items()}
            section.chart = charts.heatmap(
                section.models, section.categories, means, f"{metric.label}, {section.population.slug}"
            )
        return render(
            request,
            "table.html",
            page,
            metric=metric,
            sections=sections,
            boxes=boxes,
            box=box,
            fmt=lambda v: _value(metric, v),
        )

    def _table_rows(metric: Metric, box: str | None) -> list[dict]:
        return [
            {
                "box": s.population.box,
                "source": s.population.source,
                "measured": s.population.measured,
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

    async def _table_api(request: Request) -> tuple[Metric, list[dict]]:
        _check_params(request, {"metric", "box"})
        metric, box = _metric_param(request), request.query_params.get("box")
        if box is not None and box not in await _api(history.boxes):
            raise HTTPException(404, f"No box named {box!r} has answers in history.")
        return metric, await _api(_table_rows, metric, box)

    async def table_json(request: Request) -> Response:
        metric, rows = await _table_api(request)
        return JSONResponse({"metric": metric.key, "unit": metric.unit, "label": metric.label, "rows": rows})

    async def table_csv(request: Request) -> Response:
        _, rows = await _table_api(request)
        buffer = io.StringIO()
        fields = ["box", "source", "measured", "model", "category", "metric", "unit", "n", "mean", "ci95"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="joulebot-table.csv"'},
        )

    async def _api(call, *args) -> Any:
        """History for an API route: an empty history is empty data, a missing one a 503 with the sentence."""
        try:
            return await run_in_threadpool(call, *args)
        except HistoryUnavailable as exc:
            if exc.empty:
                return []
            raise HTTPException(503, str(exc)) from None

    def _boxes(page: Page) -> list[dict]:
        summaries = page.history(history.box_summaries, default={})
        try:
            queues = read_queues(settings)
        except RedisUnavailable as exc:
            page.banners.append(str(exc))
            queues = []
        unseen = {"last_answer_at": None, "meter": None, "idle_w": None, "intensity": None, "answers_last_hour": None}
        rows = []
        for q in queues:
            box = q.box or q.queue  # a queue without a live worker: its name is the best guess (often the box's)
            rows.append({"queue": q, **summaries.pop(box, {**unseen, "box": box})})
        return rows + [{"queue": None, **summary} for summary in summaries.values()]

    async def boxes(request: Request) -> Response:
        _check_params(request, set())
        page = Page()
        rows = await run_in_threadpool(_boxes, page)
        fragment = request.url.path.endswith("/rows")
        return render(request, "boxes_rows.html" if fragment else "boxes.html", page, rows=rows, fragment=fragment)

    async def boxes_json(request: Request) -> Response:
        _check_params(request, set())
        page = Page()
        rows = await run_in_threadpool(_boxes, page)
        data = []
        for row in rows:
            q, intensity = row.get("queue"), row.get("intensity")
            data.append(
                {
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
            )
        return JSONResponse({"boxes": data, "missing": page.banners})

    async def answers(request: Request) -> Response:
        _check_params(request, {"page", "model"})
        number = _int_param(request, "page", 1, 1, 1_000_000)
        model = request.query_params.get("model")
        page = Page()
        rows = await run_in_threadpool(
            page.history, history.latest, PAGE_SIZE, (number - 1) * PAGE_SIZE, model, default=[]
        )
        if model is not None and not rows and number == 1 and not page.banners and not page.empty:
            raise HTTPException(404, f"No model named {model!r} has answers in history.")
        return render(request, "answers.html", page, rows=rows, number=number, model=model, size=PAGE_SIZE)

    async def answers_json(request: Request) -> Response:
        _check_params(request, {"page", "n"})
        number = _int_param(request, "page", 1, 1, 1_000_000)
        n = _int_param(request, "n", PAGE_SIZE, 1, 500)
        rows = await _api(history.latest, n, (number - 1) * n)
        return JSONResponse({"answers": [_answer_json(r) for r in rows], "page": number, "n": n})

    def _answer_context(answer: dict) -> dict:
        avg_w = answer["energy_total_j"] / answer["seconds"] if answer["energy_total_j"] and answer["seconds"] else None
        label = f"power over answer #{answer['id']} ({answer['source_label']})"
        chart = charts.power_trace(answer["trace"], answer["seconds"], answer["idle_w"], avg_w, label)
        return {"a": answer, "chart": chart, "avg_w": avg_w, "arith": _arithmetic(answer)}

    async def _answer_response(
        request: Request, lookup: Callable[[Any], dict | None], key: Any, missing: str, private: bool
    ) -> Response:
        _check_params(request, set())
        page = Page()
        answer = await run_in_threadpool(page.history, lookup, key)
        if answer is None:
            if page.banners:
                return render(request, "base.html", page, status=503)
            raise HTTPException(404, missing)
        return render(request, "answer.html", page, private=private, **_answer_context(answer))

    async def answer_page(request: Request) -> Response:
        number = request.path_params["id"]
        return await _answer_response(request, history.answer, number, f"No answer #{number} in history.", False)

    async def private_answer(request: Request) -> Response:
        missing = "No answer behind this link (it may be mistyped)."
        response = await _answer_response(request, history.by_token, request.path_params["token"], missing, True)
        response.headers["cache-control"] = "private, no-store"
        response.headers["referrer-policy"] = "no-referrer"  # the token must not leak through a link click
        response.headers["x-robots-tag"] = "noindex"
        return response

    async def answer_json(request: Request) -> Response:
        _check_params(request, set())
        answer = await _api(history.answer, request.path_params["id"])
        if not answer:
            raise HTTPException(404, f"No answer #{request.path_params['id']} in history.")
        return JSONResponse(_answer_json(answer))

    async def models(request: Request) -> Response:
        _check_params(request, set())
        page = Page()
        names = await run_in_threadpool(page.history, history.models, default=[])
        return render(request, "models.html", page, names=names)

    def _distributions(name: str) -> list[dict]:
        charts_out = []
        for key in ("j_answer", "j_token"):
            metric = METRICS[key]
            for population, values in sorted(history.distribution(name, metric).items(), key=lambda kv: kv[0].slug):
                chart = charts.histogram(values, metric.unit, f"{name}: {metric.label}, {population.slug}")
                charts_out.append({"metric": metric, "population": population, "chart": chart, "values": values})
        metric = METRICS["j_answer"]
        for population, days in sorted(history.daily(name, metric).items(), key=lambda kv: kv[0].slug):
            chart = charts.timeline(days, metric.unit, f"{name}: mean {metric.label} per day, {population.slug}")
            charts_out.append({"metric": metric, "population": population, "chart": chart, "days": days})
        return charts_out

    async def model_page(request: Request) -> Response:
        _check_params(request, set())
        name = request.path_params["name"]
        page = Page()
        names = await run_in_threadpool(page.history, history.models, default=[])
        if page.banners:
            return render(request, "base.html", page, status=503)
        if name not in names:
            raise HTTPException(404, f"No model named {name!r} has answers in history.")
        distributions = await run_in_threadpool(page.history, _distributions, name, default=[])
        return render(request, "model.html", page, model=name, distributions=distributions)

    async def model_json(request: Request) -> Response:
        _check_params(request, set())
        name = request.path_params["name"]
        if name not in await _api(history.models):
            raise HTTPException(404, f"No model named {name!r} has answers in history.")
        data = await _api(_distributions, name)

        def population(d: dict) -> dict:
            p = d["population"]
            return {
                "metric": d["metric"].key,
                "unit": d["metric"].unit,
                "box": p.box,
                "source": p.source,
                "measured": p.measured,
            }

        distributions = [{**population(d), "values": d["values"]} for d in data if "values" in d]
        daily = [
            {**population(d), "days": [{"date": day, "n": m.n, "mean": m.mean, "ci95": m.ci95} for day, m in d["days"]]}
            for d in data
            if "days" in d
        ]
        return JSONResponse({"model": name, "distributions": distributions, "daily": daily})

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", None) or "Something went wrong on our side."
        if status == 404 and detail == "Not Found":
            detail = "There is no such page here."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        page = Page()
        return render(request, "error.html", page, status=status, status_code=status, detail=detail)

    @asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        history.close()

    routes = [
        Route("/", table),
        Route("/boxes", boxes),
        Route("/boxes/rows", boxes),
        Route("/answers", answers),
        Route("/answers/{id:int}", answer_page),
        Route("/a/{token:str}", private_answer),
        Route("/models", models),
        Route("/models/{name:str}", model_page),
        Route("/api/table.json", table_json),
        Route("/api/table.csv", table_csv),
        Route("/api/boxes.json", boxes_json),
        Route("/api/answers.json", answers_json),
        Route("/api/answers/{id:int}.json", answer_json),
        Route("/api/models/{name:str}.json", model_json),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: error, Exception: error}, lifespan=lifespan)


def _answer_json(answer: dict) -> dict:
    data = {k: v for k, v in answer.items() if k not in ("intensity", "prompt", "answer")}
    data["started_at"] = answer["started_at"].isoformat() if answer.get("started_at") else None
    data["intensity_label"] = answer["intensity"].label() if answer.get("intensity") else None
    return data


def _arithmetic(a: dict) -> list[str]:
    """The SCI sum of this answer, written out with its own numbers: (E × I + M) per R."""
    if a["energy_total_j"] is None:
        return [f"E unavailable ({a['energy_error'] or 'meter failed'}): no operational emissions, no SCI"]
    kwh = a["energy_total_j"] / J_PER_KWH
    provenance = a["intensity"].label() if a["intensity"] else a["intensity_zone"]
    lines = [
        f"E = {sig(a['energy_total_j'])} J total ÷ 3 600 000 J/kWh = {kwh:.3e} kWh ({a['source_label']})",
        f"I = {sig(a['intensity_g_per_kwh'])} gCO2e/kWh ({provenance})",
        f"E × I = {grams(a['operational_g'])}",
    ]
    window = a["seconds"]
    lines.append(f"M = TE × (TiR ÷ EL) × RS, with TiR = the {sig(window)} s window = {grams(a['embodied_g'])}")
    lines.append(f"SCI = (E × I + M) per R, R = 1 answer = {grams(a['sci_g'])} per answer")
    lines.append(f"model load before the window: {sig(a['load_s'])} s, not included")
    return lines
