"""The commands around the answers: the boxes, the models (and pulling one), the grid's carbon, the
dashboard, and the Telegram and Discord bots."""

from __future__ import annotations

import json

from joulebot.cli.console import console, fail, print_json, say
from joulebot.cli.store import history_errors
from joulebot.config import get_settings


def boxes(as_json: bool) -> None:
    """The fleet as Redis has it; a REDIS_URL that does not answer or refuses is one line, exit 1."""
    from joulebot.chat.boxes import box_lines
    from joulebot.queueing.client import QueueUnavailable, list_boxes

    settings = get_settings()
    try:
        views = list_boxes(settings)
    except QueueUnavailable as exc:  # not "no box has announced itself yet"
        raise fail(str(exc)) from None
    if as_json:
        print_json(json.dumps([v.as_json() for v in views]))
        return
    if not views:
        where = (
            "the embedded box starts on the first question" if settings.embedded_redis else "start `joulebot worker`"
        )
        say(f"no box has announced itself yet ({where})")
        return
    for line in box_lines(views, brief=False):
        say(line)


def models() -> None:
    """The catalog as the front ends see it: what can be asked here, then what cannot and why."""
    from joulebot.queueing.catalog import catalog_for_front_end

    settings = get_settings()
    catalog = catalog_for_front_end(settings)
    for entry in catalog.available():
        default = " (default)" if entry.name == settings.default_model else ""
        sight = f" · 🖼 {entry.sight()}" if entry.vision else ""
        say(f"{entry.name}{default} · {entry.size_label()} · {entry.family}{sight} · {entry.description}")
    unavailable = [o for o in catalog.offers if not o.available]
    if unavailable:
        say("\nnot available here:")
        for offer in unavailable:
            say(f"  {offer.entry.name} · {offer.entry.size_label()} · {offer.reason}")


def models_pull(name: str) -> None:
    """A pull through this box's Ollama, with a progress bar; refused for an embedded or too large model."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from joulebot.models import RunnerError
    from joulebot.models.catalog import static_entries
    from joulebot.models.inventory import ollama_runner
    from joulebot.queueing.catalog import republish_catalog

    settings = get_settings()
    runner = ollama_runner(settings)
    if runner is None:
        raise fail("OLLAMA_HOST is not set: the embedded model needs no pull", 2)
    wanted = name.strip().lower()
    entry = next((e for e in static_entries() if wanted in {n.lower() for n in e.names()}), None)
    if entry is not None and entry.runner != "ollama":
        raise fail(f"{entry.name} is embedded: nothing to pull", 2)
    if entry is not None and entry.parameters_b > settings.max_model_params_b:
        limit = settings.max_model_params_b
        raise fail(f"{entry.name} has {entry.size_label()} parameters; this box runs models up to {limit:g}B", 2)
    tag = entry.ollama_tag if entry and entry.ollama_tag else name
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console(True)) as progress:
        task = progress.add_task(f"pulling {tag}", total=None)

        def show(status: str, completed: int | None, total: int | None) -> None:
            progress.update(task, description=f"{tag}: {status}", completed=completed or 0, total=total)

        try:
            runner.pull(tag, show)
        except RunnerError as exc:
            raise fail(str(exc)) from None
    republish_catalog(settings)
    say(f"pulled {tag}")


def carbon() -> None:
    """The intensity provider's current figure with its provenance, and the embodied share per hour."""
    from joulebot.carbon import Embodied, IntensityProvider
    from joulebot.number_format import sig

    settings = get_settings()
    intensity = IntensityProvider.from_settings(settings).current()
    embodied = Embodied.from_settings(settings)
    default = " (the default: set GRID_ZONE to where this box runs)" if intensity.zone_default else ""
    say(f"zone       {intensity.zone}{default}")
    say(f"intensity  {intensity.g_per_kwh:g} gCO2eq/kWh ({intensity.provenance})")
    say(f"source     {intensity.label()}")
    say(
        f"embodied   {embodied.source()} over {settings.embodied_lifespan_years:g} years"
        f" × share {settings.embodied_resource_share:g} = {sig(embodied.share_g(3600))} g per hour of use"
    )


GRACE_S = 5


def web(host: str | None, port: int | None) -> None:
    """uvicorn serving the dashboard, after a bind check that turns a taken port into one line."""
    import socket

    import uvicorn

    from joulebot.config.logs import configure_logging
    from joulebot.web.app import create_app

    settings = get_settings()
    host, port = host or settings.web_host, port or settings.web_port
    try:  # one clear line instead of uvicorn's traceback-free but noisy bind failure
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    configure_logging(settings)  # the API's warnings (API_OPEN above all), secrets redacted
    say(f"dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)", stderr=True)
    keys = "open to anyone who reaches it (API_OPEN)" if settings.api_open else "keys: joulebot keys create NAME"
    say(f"OpenAI-compatible API on http://{host}:{port}/v1 ({keys})", stderr=True)
    chat = {"keys": "sign in with an API key", "open": "open to anyone, anonymously (WEB_CHAT=open)"}
    if settings.web_chat in chat:
        say(f"web chat on http://{host}:{port}/chat ({chat[settings.web_chat]})", stderr=True)
    # no access log: a private answer link's token is in its path, and secrets never reach a log
    # a stop waits for open requests at most GRACE_S: the answers they wait for are made and stored anyway
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACE_S)


def telegram() -> None:
    """The Telegram bot in this process, once its token is set."""
    from joulebot.chat.telegram_bot import TelegramBot
    from joulebot.config.logs import configure_logging

    settings = get_settings()
    if not settings.telegram_bot_token.get_secret_value():
        raise fail("TELEGRAM_BOT_TOKEN is not set (ask @BotFather for one)", 2)
    configure_logging(settings)
    with history_errors():
        bot = TelegramBot(settings)
    bot.run()


def discord(sync: bool) -> None:
    """The Discord bot in this process, once its token is set."""
    from joulebot.chat.discord_bot import run
    from joulebot.config.logs import configure_logging

    settings = get_settings()
    if not settings.discord_bot_token.get_secret_value():
        raise fail("DISCORD_BOT_TOKEN is not set (create an application at discord.com/developers)", 2)
    configure_logging(settings)
    with history_errors():
        run(settings, sync=sync)
