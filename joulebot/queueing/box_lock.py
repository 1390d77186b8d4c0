"""One measurement worker per box, enforced in Redis.

Two workers on one box run their jobs in overlapping pairs and bill each answer
for the other's load, so the second one must not start. The lock is a key named
after the box, holding the holder's host, pid and a random token; the worker's
heartbeat renews it. A holder that died lets the key lapse within
`WORKER_LOST_AFTER_S`; one that died on this same host is taken over at once (also when
it had this process's own pid: a container restarted after its worker was killed).
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass

import redis

from joulebot.keys import box_lock_key

# Renew only while we still hold it: a lock that lapsed and was taken over stays the new holder's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class BoxTaken(RuntimeError):
    """Another live worker holds this box."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    queue: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (queue {self.queue})"


class BoxLock:
    def __init__(self, connection: redis.Redis, box_name: str, queue_name: str, ttl_s: float) -> None:
        self.connection = connection
        self.box_name = box_name
        self.key = box_lock_key(box_name)
        self.ttl_ms = int(ttl_s * 1000)
        self.value = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "queue": queue_name, "token": uuid.uuid4().hex}
        )

    def holder(self) -> Holder | None:
        return self._parse(self.connection.get(self.key))

    @staticmethod
    def _parse(raw: bytes | str | None) -> Holder | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Holder(str(data["host"]), int(data["pid"]), str(data.get("queue", "?")))
        except (ValueError, KeyError, TypeError):
            return Holder("?", 0, "?")

    def _replace(self, expected: bytes | str | None) -> bool:
        """Swap the lock's value for ours if it still is `expected` (WATCH/MULTI: no race)."""
        with self.connection.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                if pipe.get(self.key) != expected:
                    return False
                pipe.multi()
                pipe.set(self.key, self.value, px=self.ttl_ms)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def acquire(self) -> None:
        """Take the box, or raise BoxTaken naming the live holder."""
        if self.connection.set(self.key, self.value, nx=True, px=self.ttl_ms):
            return
        raw = self.connection.get(self.key)
        holder = self._parse(raw)
        if holder is not None and self.dead_here(holder) and self._replace(raw):
            return  # its heartbeat had not lapsed yet, but the process is gone
        if holder is None and self.connection.set(self.key, self.value, nx=True, px=self.ttl_ms):
            return  # lapsed just now
        raise BoxTaken(
            f"box {self.box_name!r} already has a measurement worker: {holder.describe() if holder else 'unknown'}; "
            "one worker per box (two would bill each answer for the other's load)"
        )

    def renew(self) -> bool:
        """Extend the lock; False if it is no longer ours (lapsed and taken, or Redis lost it)."""
        if self.connection.eval(_RENEW, 1, self.key, self.value, self.ttl_ms):
            return True
        # Redis restarted without our key: take it back if nobody else did meanwhile
        return bool(self.connection.set(self.key, self.value, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self.connection.eval(_RELEASE, 1, self.key, self.value)

    @staticmethod
    def dead_here(holder: Holder) -> bool:
        if holder.host != socket.gethostname() or holder.pid <= 0:
            return False
        if holder.pid == os.getpid():  # a restarted container: same hostname, and its worker often the same pid
            return True
        import psutil  # only here: front ends import this module on their fast path

        try:
            return psutil.Process(holder.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
