"""Every knob joulebot has, read from the environment and an optional `.env` file.

Nothing configured means the embedded default: an embedded Redis and a SQLite
file under the data directory, the SmolLM2 model through llama.cpp, an energy
estimate when no meter is found, and the static grid intensity of `GRID_ZONE`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from joulebot.config.generation import GenerationSettings

REDIS_URL_FORMS = "redis://[:password@]host[:port][/db], rediss://… or unix:///path/to/socket[?db=N]"
DATABASE_URL_FORMS = "postgresql://user[:password]@host[:port]/database or sqlite:////absolute/path.sqlite3"


class SettingsError(ValueError):
    """A setting that cannot work; `str()` is one line naming the variable and what it accepts."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "joulebot"


class Settings(BaseModel):
    """Each field is read from the environment variable of its name in capitals (or its alias),
    then from `.env` in the working directory; values given to the constructor come first, and
    an empty variable counts as unset. (pydantic-settings did this, but its import was a fifth of
    a warm `joulebot ask`.)"""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, _env_file: str | Path | None = ".env", **values: Any) -> None:
        keys = {name: field.alias or name for name, field in type(self).model_fields.items()}
        given = {keys.get(name, name): value for name, value in values.items()}
        super().__init__(**{**_configured(keys.values(), _env_file), **given})

    # Where the embedded Redis, the SQLite file and the worker's log live.
    data_dir: Path = Field(default_factory=_default_data_dir, alias="JOULEBOT_DATA_DIR")

    # Queue: empty REDIS_URL means the embedded Redis server under data_dir.
    redis_url: str = ""
    queue_name: str = ""  # empty: the worker's queue is named after BOX_NAME
    job_timeout_s: int = Field(default=300, gt=0)
    result_ttl_s: int = Field(default=86_400, gt=0)
    embedded_worker_idle_exit_s: int = Field(default=600, gt=0)
    worker_lost_after_s: float = Field(default=30.0, gt=1)  # a running job whose worker is silent this long is lost
    redis_reconnect_attempts: int = Field(default=10, ge=1)  # the worker then exits non-zero (to be restarted)
    redis_reconnect_wait_s: float = Field(default=3.0, gt=0)  # between the worker's reconnect attempts
    worker_stop_grace_s: float = Field(default=30.0, gt=0)  # after SIGTERM and the running answer: then exit at once

    # Fleet: which live box answers (queueing/routing.py).
    routing: str = "greenest"  # greenest | fastest | a box name
    max_routing_wait_s: float = Field(default=120.0, ge=0)  # 0: no bound on the expected wait
    box_forget_after_s: float = Field(default=7 * 86_400, gt=0)  # `joulebot boxes` forgets boxes silent this long
    box_return_wait_s: float = Field(default=300.0, ge=0)  # a question queued on a stopped box waits this long for it

    # History: empty DATABASE_URL means SQLite under data_dir.
    database_url: str = ""
    history_retention_days: float = Field(default=0.0, ge=0)  # > 0: prompts and answers older than this are deleted
    history_timeout_s: float = Field(default=10.0, ge=2)  # the longest one wait on the history database may last

    # Models.
    default_model: str = "smollm2-135m"
    ollama_host: str = ""
    ollama_keep_alive: str = "30m"
    max_model_params_b: float = Field(default=9.0, gt=0)
    max_prompt_chars: int = Field(default=4000, gt=0)
    max_tokens: int = Field(default=256, gt=0)  # tokens per answer; a prompt must leave room for them
    max_context_tokens: int = Field(default=4096, ge=512)  # prompt + earlier turns + answer, at most
    # Attachments: images are validated, stripped of metadata and downscaled before they are queued.
    max_images: int = Field(default=4, ge=0)  # per message; 0: images refused
    max_image_bytes: int = Field(default=10_000_000, gt=0)  # each, as received
    max_image_pixels: int = Field(default=1_048_576, ge=4096)  # each is downscaled to at most this many
    max_file_chars: int = Field(default=20_000, gt=0)  # an attached UTF-8 text file, at most
    # Keep each image (as the model got it) in the private data directory, so that Retry and later turns of a
    # conversation can show it again; off: history keeps what each image was, never the image.
    keep_images: bool = False
    keep_images_max_mb: float = Field(default=200.0, gt=0)  # all kept images together; the oldest go first
    system_prompt: str = ""  # for everyone who set none of their own (/system); empty: none
    stream_interval_s: float = Field(default=0.5, gt=0)  # how often the worker publishes the answer so far
    # One core left to the rest of the box (the worker's Python, Redis, the bots): llama.cpp's threads
    # spin while they wait for each other, and with every core taken one busy neighbour stalls them
    # all (bench/threads.py on 2 busy cores: 15.5 tokens/s with 1 thread, 0.8 with 2).
    llama_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) - 1), ge=1)
    # Per model (its catalog name), sampling settings instead of the catalog's (JSON: {"smollm2-135m":
    # {"repeat_penalty": 1.1}}); a model left out keeps the catalog's. History records them with each answer.
    generation_settings: dict[str, GenerationSettings] = {}

    # Metering.
    meters: str = "auto"
    mcp39f511n_port: str = ""
    mcp39f511n_channel: int = Field(default=1, ge=1, le=2)
    # 2^N mains cycles per averaging interval, set at every open; "keep": read it and use it as found
    mcp39f511n_accumulation_n: int | Literal["keep"] = Field(default=1, ge=1, le=10)
    mains_hz: float = Field(default=50.0, gt=0)
    meter_interval_s: float = Field(default=0.1, gt=0)
    meter_retries: int = Field(default=3, ge=0)
    sysfs_root: Path = Path("/sys")
    nvml_gpus: str = ""
    idle_baseline_s: float = Field(default=2.0, ge=0)
    idle_settle_s: float = Field(default=1.0, ge=0)  # quiet before the idle baseline (after a model load, a job)
    idle_refresh_s: float = Field(default=1800.0, gt=0)
    cooldown_above_c: float | None = None
    cooldown_sleep_s: float = Field(default=60.0, ge=0)
    cooldown_max_wait_s: float = Field(default=900.0, ge=0)
    # the estimate (no meter): your own constants, both or neither; neither: published figures for this CPU
    estimate_idle_w: float | None = Field(default=None, ge=0)
    estimate_w_per_core: float | None = Field(default=None, ge=0, validate_default=True)
    proc_root: Path = Path("/proc")  # where the estimate reads cpuinfo and meminfo
    box_name: str = Field(default_factory=lambda: os.uname().nodename)

    # Carbon and SCI.
    grid_zone: str = "DE"
    grid_lat: float | None = None
    grid_lon: float | None = None
    electricity_maps_token: SecretStr = SecretStr("")
    electricity_maps_url: str = "https://api.electricitymap.org/v3"
    emission_factor_type: Literal["lifecycle", "direct"] = "lifecycle"
    intensity_timeout_s: float = Field(default=3.0, gt=0)
    intensity_cache_ttl_s: float = Field(default=300.0, ge=0)
    intensity_max_age_s: float = Field(default=3600.0, ge=0)
    embodied_te_kg: float = Field(default=181.0, ge=0)
    embodied_lifespan_years: float = Field(default=4.0, gt=0)
    embodied_resource_share: float = Field(default=1.0, gt=0, le=1)

    # Presentation.
    default_units: Literal["joules", "watts"] = "joules"

    # Dashboard and metrics.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = ""  # where the dashboard is reachable; set: footers link to each answer's private page
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # the worker's /metrics (boxes without the web app)

    # The OpenAI-compatible API (/v1, served by `joulebot web`; its keys: `joulebot keys`).
    api_open: bool = False  # true: no key needed (a private network only; said loudly at start)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024, le=100_000_000)  # larger request bodies: 413
    # how often the worker publishes a streamed API answer so far (a token stream; the chats keep STREAM_INTERVAL_S)
    api_stream_interval_s: float = Field(default=0.05, ge=0.01)

    # The web chat (/chat in `joulebot web`, a client of /v1): off, keys (sign in with an API key) or open
    # (anonymous visitors, each session a user of platform `web`, held to the limits below as well).
    web_chat: Literal["off", "keys", "open"] = "off"
    web_chat_per_ip_per_minute: int = Field(default=10, ge=1)  # anonymous questions from one address
    web_chat_per_minute: int = Field(default=60, ge=1)  # anonymous questions from everyone together

    # Chat front ends (shared limits).
    max_pending_per_user: int = Field(default=3, ge=1)
    max_prompts_per_minute: int = Field(default=10, ge=1)
    conversation_idle_s: float = Field(default=3600.0, ge=0)  # a private chat starts afresh after this silence
    # Daily energy budgets (Wh per UTC day; None: none): each user of every front end but the terminal, and
    # the web chat's anonymous visitors (platform `web`) all together.
    daily_energy_budget_wh: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    web_chat_daily_wh: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    # Telegram.
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = ""  # empty: TELEGRAM_API_BASE_URL with its …/bot made …/file/bot
    telegram_allowed_users: str = ""  # comma-separated user ids; empty: everyone
    telegram_admins: str = ""  # comma-separated user ids
    telegram_webhook_url: str = ""  # set: webhook mode instead of long polling
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    telegram_webhook_secret: SecretStr = SecretStr("")

    # Discord.
    discord_bot_token: SecretStr = SecretStr("")
    discord_allowed_guilds: str = ""  # comma-separated ids; empty: every server the bot is in
    discord_allowed_channels: str = ""
    discord_allowed_roles: str = ""
    discord_sync_on_start: bool = False  # force command registration (normally only when changed)
    discord_message_content: bool = False  # ask for the privileged MESSAGE_CONTENT intent (enable it in the portal)
    discord_threads: bool = True  # a mention that starts a conversation opens a thread (else: a reply in place)

    @staticmethod
    def id_set(value: str) -> set[str]:
        return {part.strip() for part in value.split(",") if part.strip()}

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        try:
            parts = urlsplit(value)
            port = parts.port  # ValueError when it is not a number in 0..65535
        except ValueError:
            raise ValueError(f"should be {REDIS_URL_FORMS}") from None
        if parts.scheme == "unix":
            ok = bool(parts.path)
            db = parse_qs(parts.query).get("db", ["0"])[0]
        else:
            ok = parts.scheme in ("redis", "rediss") and bool(parts.hostname) and port != 0
            db = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
        if not ok:
            raise ValueError(f"should be {REDIS_URL_FORMS}")
        if not db.isdigit():
            raise ValueError(f"the database index must be a whole number (0–15 on a default server): {REDIS_URL_FORMS}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        # The form SQLAlchemy parses (`dialect[+driver]://[user[:password]@]host[:port]/database`),
        # checked without importing SQLAlchemy: every front end reads the settings, few open the history.
        form = _sqlalchemy_form(value)
        scheme = re.match(r"(?P<backend>[A-Za-z]\w*)(?:\+\w+)?://", form)
        try:
            parts = urlsplit(form)
            parts.port  # noqa: B018 — raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError(f"should be {DATABASE_URL_FORMS}") from None
        backend = scheme["backend"].lower() if scheme else ""
        if backend not in ("postgresql", "sqlite") or (
            backend == "postgresql" and not (parts.hostname or parts.path.strip("/"))
        ):
            raise ValueError(f"should be {DATABASE_URL_FORMS}")
        return value

    @field_validator("estimate_w_per_core")
    @classmethod
    def _estimate_constants_together(cls, value: float | None, info: ValidationInfo) -> float | None:
        if (value is None) != (info.data.get("estimate_idle_w") is None):
            raise ValueError(
                "goes with ESTIMATE_IDLE_W: set both (your own constants) or neither (published figures for this CPU)"
            )
        return value

    @field_validator("generation_settings", mode="before")
    @classmethod
    def _generation_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                'should be a JSON object of model names and their settings: {"smollm2-135m": {"temperature": 0.2,'
                ' "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1}}'
            ) from None

    @field_validator("grid_zone")
    @classmethod
    def _upper_zone(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("routing")
    @classmethod
    def _routing(cls, value: str) -> str:
        value = value.strip()
        return value.lower() if value.lower() in ("greenest", "fastest") else value

    _queue_explicit: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _queue_after_box(self) -> Settings:
        """Each box serves its own queue, named after it unless QUEUE_NAME says otherwise."""
        self._queue_explicit = bool(self.queue_name)
        if not self.queue_name:
            self.queue_name = self.box_name
        return self

    @property
    def follows_one_queue(self) -> bool:
        """A front end with QUEUE_NAME set (or the embedded stack) sends every job to that queue, as
        before fleets; one with only REDIS_URL routes each job to a live box (`ROUTING`)."""
        return self.embedded_redis or self._queue_explicit

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return _sqlalchemy_form(self.database_url)
        return f"sqlite:///{self.data_dir / 'history.sqlite3'}"

    def secrets(self) -> list[str]:
        """Every configured secret: the SecretStr settings and the passwords inside the service URLs."""
        values = [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]
        for url in (self.redis_url, self.database_url, self.ollama_host):
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                values += [password, unquote(password)]  # as written in the URL, and decoded
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)  # longest first: no partial leak

    def redact(self, text: str) -> str:
        """`text` from anywhere upstream (an API's error body, a driver's message) without any secret of ours.

        Apply it where such text enters joulebot, before it can reach a footer, history or a log.
        """
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


def _configured(keys: Iterable[str], env_file: str | Path | None) -> dict[str, str]:
    """The settings' variables (matched without regard to case) from `env_file`, then the environment."""
    wanted = {key.lower(): key for key in keys}
    found: dict[str, str] = {}
    sources: list[Iterable[tuple[str, str | None]]] = []
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values

        sources.append(dotenv_values(env_file).items())
    sources.append(os.environ.items())
    for source in sources:  # later sources win
        for name, value in source:
            key = wanted.get(name.lower())
            if key is not None and value:
                found[key] = value
    return found


def _sqlalchemy_form(url: str) -> str:
    # Heroku-style URLs name the scheme "postgres"; SQLAlchemy wants the driver too.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _shown(name: str, value: object) -> str:
    """A rejected value as it may be printed: never a secret, never a URL's password."""
    if name.endswith(("_TOKEN", "_SECRET")):
        return "(hidden)"
    text = str(value)
    try:
        password = urlsplit(text).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return repr(text if len(text) <= 80 else text[:77] + "...")


def describe_error(error: ValidationError) -> str:
    """The first problem of a ValidationError as one line: `NAME=value: what it accepts`."""
    first = error.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
    message = first["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:] if message else "is not valid"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    inside = ".".join(str(part) for part in first["loc"][1:])  # a value inside a JSON setting
    if inside:
        return f"{name}: {inside}={_shown(name, first.get('input'))}: {message}{more}"
    return f"{name}={_shown(name, first.get('input'))}: {message}{more}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; SettingsError (one line) when one of them cannot work."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_error(exc)) from None
