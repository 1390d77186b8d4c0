"""Every knob joulebot has, read from the environment and an optional `.env` file.

Nothing configured means the embedded default: an embedded Redis and a SQLite
file under the data directory, the SmolLM2 model through llama.cpp, an energy
estimate when no meter is found, and the static grid intensity of `GRID_ZONE`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "joulebot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    # Where the embedded Redis, the SQLite file and the worker's log live.
    data_dir: Path = Field(default_factory=_default_data_dir, alias="JOULEBOT_DATA_DIR")

    # Queue: empty REDIS_URL means the embedded Redis server under data_dir.
    redis_url: str = ""
    queue_name: str = "joulebot"
    job_timeout_s: int = 300
    result_ttl_s: int = 86_400
    embedded_worker_idle_exit_s: int = 600
    worker_lost_after_s: float = Field(default=30.0, gt=1)  # a running job whose worker is silent this long is lost
    redis_reconnect_attempts: int = Field(default=10, ge=1)  # the worker then exits non-zero (to be restarted)
    redis_reconnect_wait_s: float = Field(default=3.0, gt=0)  # between the worker's reconnect attempts

    # History: empty DATABASE_URL means SQLite under data_dir.
    database_url: str = ""
    history_retention_days: float = 0.0  # > 0: prompts and answers older than this are deleted

    # Models.
    default_model: str = "smollm2-135m"
    ollama_host: str = ""
    ollama_keep_alive: str = "30m"
    max_model_params_b: float = 9.0
    max_prompt_chars: int = 4000
    max_tokens: int = 256
    max_context_tokens: int = Field(default=4096, ge=512)  # prompt + earlier turns + answer, at most
    system_prompt: str = ""  # for everyone who set none of their own (/system); empty: none
    stream_interval_s: float = Field(default=0.5, gt=0)  # how often the worker publishes the answer so far
    llama_threads: int = Field(default_factory=lambda: os.cpu_count() or 1)

    # Metering.
    meters: str = "auto"
    mcp39f511n_port: str = ""
    mcp39f511n_channel: int = Field(default=1, ge=1, le=2)
    meter_interval_s: float = Field(default=0.1, gt=0)
    meter_retries: int = Field(default=3, ge=0)
    sysfs_root: Path = Path("/sys")
    nvml_gpus: str = ""
    idle_baseline_s: float = 2.0
    idle_refresh_s: float = 1800.0
    cooldown_above_c: float | None = None
    cooldown_sleep_s: float = 60.0
    cooldown_max_wait_s: float = 900.0
    estimate_idle_w: float = 5.0
    estimate_w_per_core: float = 10.0
    box_name: str = Field(default_factory=lambda: os.uname().nodename)

    # Carbon and SCI.
    grid_zone: str = "DE"
    grid_lat: float | None = None
    grid_lon: float | None = None
    electricity_maps_token: SecretStr = SecretStr("")
    electricity_maps_url: str = "https://api.electricitymap.org/v3"
    emission_factor_type: Literal["lifecycle", "direct"] = "lifecycle"
    intensity_timeout_s: float = 3.0
    intensity_cache_ttl_s: float = Field(default=300.0, ge=0)
    intensity_max_age_s: float = Field(default=3600.0, ge=0)
    embodied_te_kg: float = 181.0
    embodied_lifespan_years: float = 4.0
    embodied_resource_share: float = 1.0

    # Presentation.
    default_units: Literal["joules", "watts"] = "joules"

    # Dashboard and metrics.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = ""  # where the dashboard is reachable; set: footers link to each answer's private page
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # the worker's /metrics (boxes without the web app)

    # Chat front ends (shared limits).
    max_pending_per_user: int = Field(default=3, ge=1)
    max_prompts_per_minute: int = Field(default=10, ge=1)
    conversation_idle_s: float = Field(default=3600.0, ge=0)  # a private chat starts afresh after this silence

    # Telegram.
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_allowed_users: str = ""  # comma-separated user ids; empty: everyone
    telegram_admins: str = ""  # comma-separated user ids
    telegram_webhook_url: str = ""  # set: webhook mode instead of long polling
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    telegram_webhook_secret: SecretStr = SecretStr("")

    # Discord.
    discord_bot_token: SecretStr = SecretStr("")
    discord_allowed_guilds: str = ""  # comma-separated ids; empty: every server the bot is in
    discord_allowed_channels: str = ""
    discord_allowed_roles: str = ""
    discord_sync_on_start: bool = False  # force command registration (normally only when changed)

    @staticmethod
    def id_set(value: str) -> set[str]:
        return {part.strip() for part in value.split(",") if part.strip()}

    @field_validator("grid_zone")
    @classmethod
    def _upper_zone(cls, value: str) -> str:
        return value.strip().upper()

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            # Heroku-style URLs name the scheme "postgres"; SQLAlchemy wants the driver too.
            for prefix in ("postgres://", "postgresql://"):
                if self.database_url.startswith(prefix):
                    return "postgresql+psycopg://" + self.database_url[len(prefix) :]
            return self.database_url
        return f"sqlite:///{self.data_dir / 'history.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
