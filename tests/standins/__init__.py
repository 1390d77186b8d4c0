"""Local stand-ins that speak the documented wire protocols of services we cannot reach."""

from .discord_api import (
    DROP,
    BotApiStandIn,
    DiscordApiStandIn,
    ElectricityMapsStandIn,
    HttpStandIn,
    OllamaStandIn,
    PrivateRedis,
    Reply,
    free_port,
)

__all__ = [
    "DROP",
    "BotApiStandIn",
    "DiscordApiStandIn",
    "ElectricityMapsStandIn",
    "HttpStandIn",
    "OllamaStandIn",
    "PrivateRedis",
    "Reply",
    "free_port",
]
