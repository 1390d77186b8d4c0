"""`GET /v1/models` and `GET /v1/models/{id}`: the fleet's catalog as OpenAI lists models, with
joulebot's own fields: the size, the boxes offering each model now, and what it measured on each
(mean energy per answer ± 95 %, per energy source and generation settings: never averaged across boxes,
meters or settings)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from joulebot.history import HistoryUnavailable
from joulebot.history.intervals import Basis, Mean
from joulebot.models import Catalog, ModelEntry, ModelUnavailable, UnknownModelError
from joulebot.queueing.catalog import catalog_for_front_end
from joulebot.queueing.client import QueueUnavailable
from joulebot.web.history_view import HistoryView
from joulebot.web.openai_api import api_asker, api_of
from joulebot.web.openai_asking import ApiQueue
from joulebot.web.openai_errors import ApiError
from joulebot.web.page import history_of

Means = dict[tuple[str, str], list[tuple[Basis, str, Mean]]]


def _offering(api: ApiQueue) -> dict[str, list[str]]:
    """Model → the live boxes offering it (the one box, in embedded mode)."""
    if api.client.fleet is None:
        return {}
    try:
        views = [v for v in api.client.boxes() if v.live]
    except QueueUnavailable:
        return {}
    offering: dict[str, list[str]] = {}
    for view in views:
        for model in view.profile.models:
            offering.setdefault(model.name, []).append(view.name)
    return offering


def _card(entry: ModelEntry, boxes: list[str], means: Means) -> dict[str, Any]:
    measured = [
        {
            "box": box,
            "energy_per_answer": [
                {
                    "source": basis.source,
                    "measured": basis.measured,  # false: estimated, never a measurement
                    "with_images": basis.images,  # answers that read images, apart from text-only ones
                    "generation_settings": settings,  # answers of other settings are other answers
                    "answers": mean.n,
                    "mean_j": mean.mean,
                    "ci95_j": mean.ci95,  # None for a single answer
                }
                for basis, settings, mean in means.get((entry.name, box), [])
            ],
        }
        for box in boxes
    ]
    return {
        "id": entry.name,
        "object": "model",
        "created": 0,
        "owned_by": entry.family or "joulebot",
        "joulebot": {
            "size": entry.size_label(),
            "parameters_b": entry.parameters_b,
            "runner": entry.runner,
            "context_tokens": entry.context_tokens,
            "vision": entry.vision,  # takes images (image_url parts)
            "boxes": measured,
        },
    }


def _catalog(api: ApiQueue) -> tuple[Catalog, dict[str, list[str]]]:
    catalog = catalog_for_front_end(api.settings, api.client.connection)
    offering = _offering(api)
    if api.client.fleet is None:
        offering = {e.name: [api.settings.box_name] for e in catalog.available()}
    return catalog, offering


def _means(history: HistoryView) -> Means:
    try:
        return history.model_means()
    except HistoryUnavailable:  # the catalog still answers; the figures come back with history
        return {}


def cards(api: ApiQueue, history: HistoryView) -> list[dict[str, Any]]:
    catalog, offering = _catalog(api)
    means = _means(history)
    return [_card(e, offering.get(e.name, []), means) for e in catalog.available()]


def _one(api: ApiQueue, history: HistoryView, name: str) -> dict[str, Any]:
    catalog, offering = _catalog(api)
    try:
        entry = catalog.resolve(name)
    except (UnknownModelError, ModelUnavailable) as exc:
        raise ApiError(404, str(exc), param="model", code="model_not_found") from None
    return _card(entry, offering.get(entry.name, []), _means(history))


async def list_models(request: Request) -> Response:
    await api_asker(request)
    listed = await run_in_threadpool(cards, api_of(request), history_of(request))
    return JSONResponse({"object": "list", "data": listed})


async def get_model(request: Request) -> Response:
    await api_asker(request)
    card = await run_in_threadpool(_one, api_of(request), history_of(request), request.path_params["name"])
    return JSONResponse(card)
