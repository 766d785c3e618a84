"""The sponge lock across replicas: rows in the shared PostgreSQL MetaDB, no session held.

``splock.LockManager`` still queues a replica's own requests (FIFO, reader/writer, in memory). With
a shared MetaDB it also asks this layer once the local locks are granted: all the locks of one
request are taken in ONE round trip by the server-side function ``spider_try_lock`` (advisory
transaction locks make check-and-insert atomic per key; a write conflicts with any other replica's
row, a read with another replica's write; rows of replicas whose lease ran out do not count), or none
are. Taking all or none means a replica never holds part of a request's locks while waiting, so two
replicas cannot wait for each other in a circle.

While a key is busy the request is recorded as a waiter (``splock_waiters``, shown by
``/spider/splockinfo``) and sleeps until a NOTIFY says a lock it may want was given back, or a backoff
(20 ms doubling to 1 s) runs out, then tries again.

Giving back is off the request's path: the local lock is released at once (the replica's own rows
never conflict with its own requests), and the rows go in a batch a moment later
(``spider_unlock``). A replica that dies leaves rows that stop counting when its lease expires.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.02
MAX_BACKOFF = 1.0


class ClusterLock:
    def __init__(self, store: Any, replica: str, lease: float) -> None:
        self.store = store            # spider_core.metadb.postgres.ClusterStore
        self.replica = replica
        self.lease = lease
        self._tokens = itertools.count(1)
        self._waiting: set[asyncio.Event] = set()
        self._to_release: list[str] = []
        self._releasing: asyncio.Task | None = None
        self.waits = 0                # requests that found a key busy on another replica

    def wake(self) -> None:
        """A NOTIFY: some replica gave a lock back; every waiter looks again."""
        for event in self._waiting:
            event.set()

    async def acquire(self, connection: str, needs: list[tuple[str, str, bool]], request: str) -> str:
        """Take every ``(family, name, write)`` of one request on ``connection``; returns the holder id."""
        holder = f"{self.replica}/{next(self._tokens)}"
        keys = [(family, connection, name, write) for family, name, write in needs]
        delay = MIN_BACKOFF
        waited = False
        try:
            while True:
                event = asyncio.Event()
                self._waiting.add(event)
                try:
                    if await self.store.try_lock(self.replica, holder, keys, request, self.lease):
                        return holder
                    if not waited:
                        waited = True
                        self.waits += 1
                    try:
                        await asyncio.wait_for(event.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                finally:
                    self._waiting.discard(event)
                delay = min(delay * 2, MAX_BACKOFF)
        except BaseException:
            self.release(holder)  # whatever the interrupted call may have recorded (idempotent)
            raise

    def release(self, holder: str) -> None:
        """Give a request's locks back: batched, in the background."""
        self._to_release.append(holder)
        if self._releasing is None or self._releasing.done():
            self._releasing = asyncio.get_running_loop().create_task(self._flush(), name="spider-cluster-unlock")

    async def _flush(self) -> None:
        while self._to_release:
            batch, self._to_release = self._to_release, []
            delay = 0.1
            while True:
                try:
                    await self.store.unlock(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the database is away: keep trying; the lease
                    log.warning("giving back %d cluster lock(s) failed (%s); retrying", len(batch), exc)
                    await asyncio.sleep(delay)      # ends them if this replica dies meanwhile
                    delay = min(delay * 2, 5.0)

    async def flush(self) -> None:
        """Wait until every lock given back has left the database (shutdown, tests)."""
        while self._releasing is not None and not self._releasing.done():
            await asyncio.shield(self._releasing)
