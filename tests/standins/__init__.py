"""Local stand-ins that speak the documented wire protocols of services we cannot reach,
one module per service, on the servers of `servers`."""

from .discord_api import DiscordApiStandIn
from .electricity_maps import ElectricityMapsStandIn
from .ollama import OllamaStandIn
from .servers import (
    DROP,
    HttpStandIn,
    LocalServer,
    PrivateRedis,
    Reply,
    drop_connection,
    first_call,
    free_port,
    send_json,
)
from .telegram_bot_api import MESSAGE_LIMIT, TELEGRAM_TAGS, WEBHOOK_ACTIVE, BotApiStandIn, post_json, telegram_text

__all__ = [
    "DROP",
    "MESSAGE_LIMIT",
    "TELEGRAM_TAGS",
    "WEBHOOK_ACTIVE",
    "BotApiStandIn",
    "DiscordApiStandIn",
    "ElectricityMapsStandIn",
    "HttpStandIn",
    "LocalServer",
    "OllamaStandIn",
    "PrivateRedis",
    "Reply",
    "drop_connection",
    "first_call",
    "free_port",
    "post_json",
    "send_json",
    "telegram_text",
]
