"""The web app: the dashboard (Starlette routes rendering Jinja2 templates, JSON and CSV, and
/metrics) and the OpenAI-compatible API under /v1.

The dashboard is read-only: history is opened read-only and Redis is only read. A page whose
source is down still renders, with a banner that says what is missing. The API queues questions
through the queue client, as the chat front ends do; the web chat (/chat, WEB_CHAT) is a client of
the API, with its sessions in Redis. The app's one write to history is a chat user's forget of their
own words (`chat_forget`: `forget_user`, with a store opened at its first use). The routes are one
list; what lives as long as the app (settings, history and its writer, templates, the metrics
registry, the API's queue) is on `app.state`, set by `create_app`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from joulebot.config import Settings
from joulebot.queueing.web_sessions import SessionStore
from joulebot.web import chat_forget, chat_forms, chat_pages, data, openai_api, openai_models, pages
from joulebot.web.chat_sessions import Sessions
from joulebot.web.history_view import HistoryView
from joulebot.web.history_writer import HistoryWriter
from joulebot.web.metrics import registry_for
from joulebot.web.openai_asking import ApiQueue
from joulebot.web.openai_errors import ApiError
from joulebot.web.openai_follow import Followed, resume, settle
from joulebot.web.page import HERE, Page, make_templates, render
from joulebot.web.security import SecurityHeaders, protect


class ModelName(Convertor[str]):
    """A model name in a path: Ollama's may hold '/' (hf.co/owner/repo:tag); never empty, so that
    /models/ is still the list (redirected) rather than a model without a name."""

    regex = "[^/].*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model_name", ModelName())

ROUTES = [
    Route("/", pages.table),
    Route("/boxes", pages.boxes),
    Route("/boxes/rows", pages.boxes),
    Route("/answers", pages.answers),
    Route("/answers/{id:int}", pages.answer_page),
    Route("/a/{token:str}", pages.private_answer),
    Route("/models", pages.models),
    Route("/models/{name:model_name}", pages.model_page),
    Route("/api/table.json", data.table_json),
    Route("/api/table.csv", data.table_csv),
    Route("/api/boxes.json", data.boxes_json),
    Route("/api/answers.json", data.answers_json),
    Route("/api/answers/{id:int}.json", data.answer_one_json),
    Route("/api/models/{name:model_name}.json", data.model_json),
    Route("/metrics", data.metrics),
    Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
    Route("/v1/chat/completions/{id:str}/cancel", openai_api.cancel_completion, methods=["POST"]),
    Route("/v1/models", openai_models.list_models),
    Route("/v1/models/{name:model_name}", openai_models.get_model),
    Route("/chat", chat_pages.chat),
    Route("/chat/turn/{id:int}", chat_pages.turn),
    Route("/chat/conversations", chat_pages.conversations),
    Route("/chat/pair/{a:int}/{b:int}", chat_pages.pair),
    Route("/chat/compare/{a:int}/{b:int}", chat_pages.compare),
    Route("/chat/ask", chat_forms.ask, methods=["POST"]),
    Route("/chat/cancel", chat_forms.cancel, methods=["POST"]),
    Route("/chat/units", chat_forms.units, methods=["POST"]),
    Route("/chat/signin", chat_forms.signin, methods=["POST"]),
    Route("/chat/signout", chat_forms.signout, methods=["POST"]),
    Route("/chat/forget", chat_forget.confirm, methods=["GET"]),
    Route("/chat/forget", chat_forget.forget, methods=["POST"]),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]


log = logging.getLogger(__name__)


async def error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return protect(exc.response())
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", None) or "Something went wrong on our side."
    if status == 404 and detail == "Not Found":
        detail = "There is no such page here."
    if request.url.path.startswith("/v1/"):  # OpenAI's shape, for its clients
        message = "Something went wrong on our side." if status >= 500 else detail
        response: Response = ApiError(status, message).response()
    elif request.url.path.startswith("/api/"):
        response = JSONResponse({"error": detail}, status_code=status)
    else:
        response = render(request, "error.html", Page(), status=status, status_code=status, detail=detail)
    return protect(response)  # a server error's page is sent outside the middleware


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    api: ApiQueue = app.state.api
    if api.settings.api_open:
        log.warning(
            "API_OPEN=true: /v1 answers anyone who can reach this address, without a key "
            "(as the user api:%s); keep it on a private network",
            openai_api.OPEN_USER,
        )
    if api.settings.web_chat == "open":
        log.warning(
            "WEB_CHAT=open: anyone who reaches /chat asks anonymously, at most %d questions a minute from one "
            "address and %d from everyone together",
            api.settings.web_chat_per_ip_per_minute,
            api.settings.web_chat_per_minute,
        )
    resumed = await resume(api, lambda d: api.spawn(settle(api, d, Followed()), f"the API answer {d.key}"))
    if resumed:
        log.info("following %d API answers owed from before this start, to clear them", resumed)
    yield
    for task in list(api.tasks):  # their answers are still made and stored; the next start settles them
        task.cancel()
    await asyncio.gather(*api.tasks, return_exceptions=True)
    await asyncio.to_thread(api.follower.close)
    app.state.history.close()
    await asyncio.to_thread(app.state.history_writer.close)


def create_app(settings: Settings) -> Starlette:
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: error, ApiError: error, Exception: error},
        lifespan=lifespan,
    )
    history = HistoryView(settings.sqlalchemy_url)
    app.state.settings = settings
    app.state.history = history
    app.state.history_writer = HistoryWriter(settings)  # opened by the first forget from the chat page
    app.state.templates = make_templates(settings)
    app.state.registry = registry_for(settings, history)
    app.state.api = ApiQueue.for_settings(settings, history)
    app.state.sessions = Sessions(SessionStore(app.state.api.client.connection))
    return app
