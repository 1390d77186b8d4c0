"""The dashboard's HTML pages. A page whose source is down still renders, with a banner saying what
is missing; only a page about one thing (an answer, a model) that cannot be looked up is a 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from joulebot.carbon.sci import J_PER_KWH
from joulebot.history.aggregates import Metric
from joulebot.history.intervals import Mean
from joulebot.number_format import mass_unit, sig
from joulebot.web import charts
from joulebot.web.page import (
    Page,
    answer_number,
    check_params,
    history_of,
    int_param,
    metric_param,
    private,
    render,
    settings_of,
)
from joulebot.web.rows import box_rows, distributions

PAGE_SIZE = 50


def _figures(metric: Metric, means: list[Mean]) -> Callable[[float], str]:
    """How one table writes its figures, means and bands alike: masses all in g or all in mg (whichever
    reads better for its largest), anything else with its unit."""
    if metric.unit == "g CO2e":
        return mass_unit(m.mean for m in means)
    return lambda value: f"{sig(value)} {metric.unit}"


async def table(request: Request) -> Response:
    check_params(request, {"metric", "box"})
    metric, box = metric_param(request), request.query_params.get("box")
    history, page = history_of(request), Page()
    boxes: list[str] = []
    if box is not None:  # the toggle needs every box; unfiltered, the table's own groups name them
        boxes = await run_in_threadpool(page.history, history.boxes, default=[])
        if not page.banners and box not in boxes:
            raise HTTPException(404, f"No box named {box!r} has answers in history.")
    sections = await run_in_threadpool(page.history, history.table, metric, box, default=[])
    boxes = boxes or sorted({s.basis.box for s in sections})
    for section in sections:
        section.fmt = _figures(metric, list(section.cells.values()))
        means = {(row.label, category): m.mean for (row, category), m in section.cells.items()}
        rows, label = [row.label for row in section.rows], f"{metric.label}, {section.basis.slug}"
        section.chart = charts.heatmap(rows, section.categories, means, label, section.fmt)
    return render(request, "table.html", page, metric=metric, sections=sections, boxes=boxes, box=box)


async def boxes(request: Request) -> Response:
    """The boxes page, or (at /boxes/rows) only its rows, which the page fetches again every few seconds."""
    check_params(request, set())
    page = Page()
    rows = await run_in_threadpool(box_rows, settings_of(request), history_of(request), page)
    fragment = request.url.path.endswith("/rows")
    return render(request, "boxes_rows.html" if fragment else "boxes.html", page, rows=rows, fragment=fragment)


async def answers(request: Request) -> Response:
    check_params(request, {"page", "model"})
    number = int_param(request, "page", 1, 1, 1_000_000)
    model = request.query_params.get("model")
    page = Page()
    rows = await run_in_threadpool(
        page.history, history_of(request).latest, PAGE_SIZE, (number - 1) * PAGE_SIZE, model, default=[]
    )
    if model is not None and not rows and number == 1 and not page.banners and not page.empty:
        raise HTTPException(404, f"No model named {model!r} has answers in history.")
    mass = mass_unit(r[k] for r in rows for k in ("operational_g", "sci_g"))  # one unit down both columns
    return render(
        request,
        "answers.html",
        page,
        rows=rows,
        number=number,
        model=model,
        size=PAGE_SIZE,
        mass=lambda v: "–" if v is None else mass(v),
    )


def _arithmetic(a: dict) -> list[str]:
    """The SCI sum of this answer, written out with its own numbers: (E × I + M) per R."""
    if a["energy_total_j"] is None:
        return [f"E unavailable ({a['energy_error'] or 'meter failed'}): no operational emissions, no SCI"]
    kwh = a["energy_total_j"] / J_PER_KWH
    provenance = a["intensity"].label() if a["intensity"] else a["intensity_zone"]
    mass = mass_unit([a["operational_g"], a["embodied_g"], a["sci_g"]])  # one unit through the sum
    lines = [
        f"E = {sig(a['energy_total_j'])} J total ÷ 3 600 000 J/kWh = {kwh:.3e} kWh ({a['source_label']})",
        f"I = {sig(a['intensity_g_per_kwh'])} gCO2e/kWh ({provenance})",
        f"E × I = {mass(a['operational_g'])}",
    ]
    window = a["seconds"]
    lines.append(f"M = TE × (TiR ÷ EL) × RS, with TiR = the {sig(window)} s window = {mass(a['embodied_g'])}")
    lines.append(f"SCI = (E × I + M) per R, R = 1 answer = {mass(a['sci_g'])} per answer")
    lines.append(f"model load before the window: {sig(a['load_s'])} s, not included")
    return lines


def _answer_context(answer: dict) -> dict:
    avg_w = answer["energy_total_j"] / answer["seconds"] if answer["energy_total_j"] and answer["seconds"] else None
    label = f"power over answer #{answer['id']} ({answer['source_label']})"
    phases = answer.get("phases") or {}
    chart = charts.power_trace(
        answer["trace"], answer["seconds"], answer["idle_w"], avg_w, label, phases.get("split_s")
    )
    return {"a": answer, "chart": chart, "avg_w": avg_w, "arith": _arithmetic(answer)}


async def _answer_response(
    request: Request, lookup: Callable[[Any], dict | None], key: Any, missing: str, private: bool
) -> Response:
    check_params(request, set())
    page = Page()
    answer = await run_in_threadpool(page.history, lookup, key)
    if answer is None:
        if page.banners:
            return render(request, "base.html", page, status=503)
        raise HTTPException(404, missing)
    return render(request, "answer.html", page, private=private, **_answer_context(answer))


async def answer_page(request: Request) -> Response:
    number = answer_number(request)
    return await _answer_response(
        request, history_of(request).answer, number, f"No answer #{number} in history.", False
    )


async def private_answer(request: Request) -> Response:
    missing = "No answer behind this link (it may be mistyped)."
    token = request.path_params["token"]
    response = await _answer_response(request, history_of(request).by_token, token, missing, True)
    private(response)
    response.headers["referrer-policy"] = "no-referrer"  # the token must not leak through a link click
    response.headers["x-robots-tag"] = "noindex"
    return response


async def models(request: Request) -> Response:
    check_params(request, set())
    page = Page()
    names = await run_in_threadpool(page.history, history_of(request).models, default=[])
    return render(request, "models.html", page, names=names)


async def model_page(request: Request) -> Response:
    check_params(request, set())
    name, history, page = request.path_params["name"], history_of(request), Page()
    names = await run_in_threadpool(page.history, history.models, default=[])
    if page.banners:
        return render(request, "base.html", page, status=503)
    if name not in names:
        raise HTTPException(404, f"No model named {name!r} has answers in history.")
    charts_out = await run_in_threadpool(page.history, distributions, history, name, default=[])
    return render(request, "model.html", page, model=name, distributions=charts_out)
