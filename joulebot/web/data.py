"""The dashboard's data routes: JSON and CSV under /api/, and Prometheus' /metrics. An empty history
is empty data; one that cannot be read is a 503 with the sentence (`page.for_api`)."""

from __future__ import annotations

import csv
import io

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from joulebot.history.aggregates import Metric
from joulebot.web.page import (
    Page,
    answer_number,
    check_params,
    for_api,
    history_of,
    int_param,
    metric_param,
    settings_of,
)
from joulebot.web.rows import answer_json, box_json, box_rows, distributions, table_rows

PAGE_SIZE = 50
TABLE_FIELDS = [
    "box",
    "source",
    "measured",
    "with_images",
    "model",
    "generation_settings",
    "category",
    "metric",
    "unit",
    "n",
    "mean",
    "ci95",
]


async def _table(request: Request) -> tuple[Metric, list[dict]]:
    check_params(request, {"metric", "box"})
    metric, box, history = metric_param(request), request.query_params.get("box"), history_of(request)
    if box is not None and box not in await for_api(history.boxes):
        raise HTTPException(404, f"No box named {box!r} has answers in history.")
    return metric, await for_api(table_rows, history, metric, box)


async def table_json(request: Request) -> Response:
    metric, rows = await _table(request)
    return JSONResponse({"metric": metric.key, "unit": metric.unit, "label": metric.label, "rows": rows})


async def table_csv(request: Request) -> Response:
    _, rows = await _table(request)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="joulebot-table.csv"'},
    )


async def boxes_json(request: Request) -> Response:
    check_params(request, set())
    page = Page()
    rows = await run_in_threadpool(box_rows, settings_of(request), history_of(request), page)
    return JSONResponse({"boxes": [box_json(row) for row in rows], "missing": page.banners})


async def answers_json(request: Request) -> Response:
    check_params(request, {"page", "n"})
    number = int_param(request, "page", 1, 1, 1_000_000)
    n = int_param(request, "n", PAGE_SIZE, 1, 500)
    rows = await for_api(history_of(request).latest, n, (number - 1) * n)
    return JSONResponse({"answers": [answer_json(r) for r in rows], "page": number, "n": n})


async def answer_one_json(request: Request) -> Response:
    check_params(request, set())
    number = answer_number(request)
    answer = await for_api(history_of(request).answer, number)
    if not answer:
        raise HTTPException(404, f"No answer #{number} in history.")
    return JSONResponse(answer_json(answer))  # type: ignore[arg-type]


def _basis(d: dict) -> dict:
    p = d["basis"]
    return {
        "metric": d["metric"].key,
        "unit": d["metric"].unit,
        "box": p.box,
        "source": p.source,
        "measured": p.measured,
        "with_images": p.images,
        "generation_settings": d["settings"],
    }


async def model_json(request: Request) -> Response:
    check_params(request, set())
    name, history = request.path_params["name"], history_of(request)
    if name not in await for_api(history.models):
        raise HTTPException(404, f"No model named {name!r} has answers in history.")
    data = await for_api(distributions, history, name)
    values = [{**_basis(d), "values": d["values"]} for d in data if "values" in d]
    daily = [
        {**_basis(d), "days": [{"date": day, "n": m.n, "mean": m.mean, "ci95": m.ci95} for day, m in d["days"]]}
        for d in data
        if "days" in d
    ]
    return JSONResponse({"model": name, "distributions": values, "daily": daily})


async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
