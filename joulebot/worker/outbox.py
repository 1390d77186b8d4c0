"""Results the history database could not take, kept in Redis until it can.

When the database is down (or does not answer within `HISTORY_TIMEOUT_S`) the answer
is still delivered; its Result waits in a Redis list and is stored before the next job
(or at the next worker start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from rq.timeouts import BaseTimeoutException
from sqlalchemy.exc import IntegrityError

from joulebot.exchange import Result
from joulebot.keys import history_outbox_key

log = logging.getLogger(__name__)


class HistoryOutbox:
    def __init__(self, connection: redis.Redis, queue_name: str) -> None:
        self.connection = connection
        self.key = history_outbox_key(queue_name)
        # Only this box's worker (it holds the box lock) pushes here, so once the list is seen empty
        # it stays empty until this process pushes: no round trip before every job to check.
        self.maybe_waiting = True  # an earlier worker of this box may have left results

    def push(self, result: Result) -> None:
        self.maybe_waiting = True
        self.connection.rpush(self.key, result.model_dump_json())

    def pending(self) -> int:
        return int(self.connection.llen(self.key))

    def drain(self, record: Callable[[Result], object]) -> bool:
        """Store what waits, oldest first, with `record`; stops at the first failure. True once nothing waits.

        RQ's job timeout, raised into a `record` that waits, is the job's: it goes through."""
        stored = 0
        if not self.maybe_waiting:
            return True
        while raw := self.connection.lindex(self.key, 0):
            try:
                record(Result.model_validate_json(raw))
            except IntegrityError:
                pass  # stored already (a drain interrupted after the insert)
            except BaseTimeoutException:
                raise
            except Exception as exc:  # still unavailable: try again before the next job
                log.info("history still unavailable (%s); %d results wait", type(exc).__name__, self.pending())
                return False
            else:
                stored += 1
            self.connection.lpop(self.key)
        self.maybe_waiting = False
        if stored:
            log.info("stored %d results that waited for the history database", stored)
        return True
