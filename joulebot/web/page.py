"""What every dashboard route shares: the app's state, its query parameters checked at the edge, the
page's banners, and how history is read for a page (a banner) and for an API route (a 503).

The app keeps what lives as long as it does on `app.state` (see `app.create_app`): the settings,
the read-only history, the templates and the metrics registry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from joulebot.config import Settings
from joulebot.history import HistoryUnavailable
from joulebot.history.aggregates import METRICS, Metric
from joulebot.number_format import sig
from joulebot.web.history_view import HOW_TO_GET_DATA, HistoryView, source_label

HERE = Path(__file__).resolve().parent
# The exchanges' id column is INTEGER: 32 bits on PostgreSQL. A larger number names no answer, and
# must not reach the database (an overflow there is an error page, not "no such answer").
MAX_ROW_ID = 2**31 - 1
T = TypeVar("T")


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.globals.update(public_url=settings.public_url.rstrip("/"), metrics=METRICS, web_chat=settings.web_chat)
    env.filters["sig"] = lambda v: "–" if v is None else sig(v)
    env.filters["source_label"] = lambda basis: source_label(basis.source, basis.measured)
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else (v or "–")
    return templates


def history_of(request: Request) -> HistoryView:
    view: HistoryView = request.app.state.history
    return view


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class Page:
    """What one request gathered, and what it could not (the banners)."""

    def __init__(self) -> None:
        self.banners: list[str] = []
        self.empty = False

    def history(self, call: Callable[..., T], *args: Any, default: Any = None) -> T | Any:
        try:
            return call(*args)
        except HistoryUnavailable as exc:
            if exc.empty:
                self.empty = True
            elif str(exc) not in self.banners:
                self.banners.append(str(exc))
            return default


def private(response: Response) -> None:
    """A page only its reader may see (a session's chat, a private answer): no cache keeps it."""
    response.headers["cache-control"] = "private, no-store"


def render(request: Request, template: str, page: Page, status: int = 200, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, {"page": page, "how_to": HOW_TO_GET_DATA, **context}, status_code=status
    )


async def for_api(call: Callable[..., T], *args: Any) -> T | list:
    """History for an API route: an empty history is empty data, a missing one a 503 with the sentence."""
    try:
        return await run_in_threadpool(call, *args)
    except HistoryUnavailable as exc:
        if exc.empty:
            return []
        raise HTTPException(503, str(exc)) from None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
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


def answer_number(request: Request) -> int:
    """The answer an `/answers/{id}` path names; one beyond any id history can hold is not there."""
    number: int = request.path_params["id"]
    if number > MAX_ROW_ID:
        raise HTTPException(404, f"No answer #{number} in history.")
    return number


def metric_param(request: Request) -> Metric:
    key = request.query_params.get("metric", "sci")
    if key not in METRICS:
        raise HTTPException(400, f"'metric' must be one of {', '.join(METRICS)}, not {key!r}.")
    return METRICS[key]


def check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no parameters"
        raise HTTPException(400, f"Unknown query parameter {unknown[0]!r}; this page takes {takes}.")
