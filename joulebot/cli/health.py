"""`joulebot health`: a container's healthcheck for each role, one line and its exit status.

A bot's or the worker's process that died ends its container (the restart policy starts it again);
what a healthcheck adds is whether the running process can still serve: the queue answers, this box's
worker keeps beating, the dashboard answers a request.
"""

from __future__ import annotations

from joulebot.cli.console import fail, say
from joulebot.config import Settings, get_settings

PROBE_TIMEOUT_S = 5.0


def health(role: str) -> None:
    settings = get_settings()
    if role == "web":
        _web(settings)
        return
    import redis

    from joulebot.keys import alive_key
    from joulebot.queueing import connection as conn

    connection = conn.connect(settings, retries=0, socket_timeout=PROBE_TIMEOUT_S, connect_timeout=PROBE_TIMEOUT_S)
    try:
        if not connection.ping():
            raise redis.ConnectionError
        alive = role != "worker" or bool(connection.exists(alive_key(settings.queue_name)))
    except (redis.RedisError, OSError) as exc:
        raise fail(f"the queue does not answer ({conn.describe(settings)}): {type(exc).__name__}") from None
    if not alive:
        raise fail(f"box {settings.box_name!r} has no live measurement worker (queue {settings.queue_name!r})")
    say(f"box {settings.box_name!r}: the worker is alive" if role == "worker" else "the queue answers")


def _web(settings: Settings) -> None:
    """The dashboard's first page, asked of this host directly (never through an HTTP proxy)."""
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.web_host in ("", "0.0.0.0", "::") else settings.web_host
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.web_port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise fail(f"the dashboard does not answer at {url}: {reason}") from None
    if status != 200:
        raise fail(f"the dashboard at {url} answered HTTP {status}")
    say(f"the dashboard answers at {url}")
