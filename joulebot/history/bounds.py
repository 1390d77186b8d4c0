"""How long the history database may keep a caller waiting.

`timeout_s` (the setting `HISTORY_TIMEOUT_S`) bounds each kind of wait where the
driver or the server can bound it:

- PostgreSQL: connecting (libpq's `connect_timeout`), one statement
  (`statement_timeout`, enforced by the server), a peer that vanished (TCP keepalives,
  and `tcp_user_timeout` for data never acknowledged);
- SQLite: the busy wait for another process's write lock.

None of these ends the wait on a server that stalls with the connection up (a
frozen server or pooler, a proxy that stopped forwarding): the kernel acknowledges
what the client sends, so keepalives see a healthy peer, and the server never gets
to enforce its statement timeout. `cut()` is for that case: it shuts down the
sockets of an engine's connections, so that a call blocked on one of them fails at
once (the pool then drops the connection). Whoever bounds a call with a clock of its
own (the worker) calls it when the clock runs out.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import weakref
from typing import Any

from sqlalchemy import Engine, event, make_url

DEFAULT_TIMEOUT_S = 10.0  # HISTORY_TIMEOUT_S
KEEPALIVE_IDLE_S = 10  # an idle connection is probed after this long,
KEEPALIVE_INTERVAL_S = 5  # then this often,
KEEPALIVE_COUNT = 3  # and dropped after this many unanswered probes

_connections: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[Any]] = weakref.WeakKeyDictionary()


def connect_args(url: str, timeout_s: float) -> dict[str, Any]:
    """The driver's own bounds for a database URL (see the module's docstring)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"timeout": timeout_s}
    if parsed.get_backend_name() != "postgresql":
        return {}
    options = parsed.query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options  # the URL's own come first
    return {
        "connect_timeout": max(2, math.ceil(timeout_s)),  # libpq's minimum is 2 s
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_S,
        "keepalives_interval": KEEPALIVE_INTERVAL_S,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": int(timeout_s * 1000),
        "options": f"{options} -c statement_timeout={int(timeout_s * 1000)}".strip(),
    }


def track(engine: Engine) -> None:
    """Remember the engine's connections that have a socket, for `cut`."""
    if engine.dialect.name != "postgresql":  # SQLite waits on no socket; its busy wait is bounded
        return
    sockets = _connections.setdefault(engine, weakref.WeakSet())
    event.listen(engine, "connect", lambda dbapi_connection, _record: sockets.add(dbapi_connection))


def cut(engine: Engine) -> int:
    """Shut down the sockets of the engine's open connections; returns how many were cut.

    Safe from any thread: a call blocked reading one of them gets end-of-file and fails with the
    driver's "server closed the connection", and the pool throws the connection away."""
    cut_here = 0
    for connection in list(_connections.get(engine, ())):
        with contextlib.suppress(Exception):  # closed meanwhile: nothing to cut
            fd = os.dup(connection.fileno())
            with socket.socket(fileno=fd) as duplicate:  # shutdown acts on the socket both descriptors share
                duplicate.shutdown(socket.SHUT_RDWR)
            cut_here += 1
    return cut_here
