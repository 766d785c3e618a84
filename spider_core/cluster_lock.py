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
(20 ms doubling to 1 s) runs out, then tries again. The NOTIFY names the keys given back, so only
the requests waiting for one of them look again.

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
_SEP = "\x1f"  # between family, connection and name in a NOTIFY payload (spider_unlock's chr(31))
MAX_BACKOFF = 1.0


class ClusterLock:
    def __init__(self, store: Any, replica: str, lease: float) -> None:
        self.store = store            # spider_core.metadb.postgres.ClusterStore
        self.replica = replica
        self.lease = lease
        self._tokens = itertools.count(1)
        self._waiting: dict[asyncio.Event, frozenset[str]] = {}   # each waiter's keys
        self._to_release: list[str] = []
        self._releasing: asyncio.Task | None = None
        self.waits = 0                # requests that found a key busy on another replica

    def wake(self, released: str = "") -> None:
        """A NOTIFY: some replica gave locks back (``released``: their keys, one a line; '' = unknown).
        The waiters for one of those keys look again; the others keep sleeping."""
        keys = set(released.split("\n")) if released else None
        for event, wanted in self._waiting.items():
            if keys is None or not keys.isdisjoint(wanted):
                event.set()

    async def acquire(self, connection: str, needs: list[tuple[str, str, bool]], request: str) -> str:
        """Take every ``(family, name, write)`` of one request on ``connection``; returns the holder id."""
        holder = f"{self.replica}/{next(self._tokens)}"
        keys = [(family, connection, name, write) for family, name, write in needs]
        wanted = frozenset(_SEP.join((family, connection, name)) for family, connection, name, _ in keys)
        delay = MIN_BACKOFF
        waited = False
        try:
            while True:
                event = asyncio.Event()
                self._waiting[event] = wanted
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
                    self._waiting.pop(event, None)
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
