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

A create takes its locks in the same round trip as its duplicate check and intent
(``spider_lock_open_intent``): its guard *defers* them (``Deferred``, in the request's context) and the
request's first MetaDB step takes them, the create's intent step together with it; any other MetaDB
step, or a cloud call, takes them alone first (``settle_deferred``). No cloud call and no MetaDB read
or write of the request runs before its locks are taken.

Giving back is off the request's path: the local lock is released at once (the replica's own rows
never conflict with its own requests), and the rows go in a batch a moment later
(``spider_unlock``). A replica that dies leaves rows that stop counting when its lease expires.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

MIN_BACKOFF = 0.02
_SEP = "\x1f"  # between family, connection and name in a NOTIFY payload (spider_unlock's chr(31))
MAX_BACKOFF = 1.0


Keys = list[tuple[str, str, str, bool]]           # (family, connection, name, write)
# One attempt at taking every lock of a request: (holder, keys) -> (taken, what else the round trip answered)
Step = Callable[[str, Keys], Awaitable[tuple[bool, Any]]]


class Deferred:
    """A request's cluster locks, not taken yet: the request's first MetaDB step (or cloud call) takes
    them. ``holder`` is set once they are."""

    __slots__ = ("lock", "connection", "needs", "request", "holder", "_mutex", "_token")

    def __init__(self, lock: "ClusterLock", connection: str, needs: list[tuple[str, str, bool]], request: str) -> None:
        self.lock = lock
        self.connection = connection
        self.needs = needs
        self.request = request
        self.holder = ""
        self._mutex = asyncio.Lock()   # tasks started inside the guard share it: one of them takes
        self._token: contextvars.Token | None = None

    async def take(self, step: Step | None = None) -> tuple[bool, Any]:
        """Take the locks now, with ``step`` doing more in the same round trip; (False, None) when they
        were taken already (then the caller does its step on its own)."""
        if self.holder:
            return False, None
        async with self._mutex:
            if self.holder:
                return False, None
            self.holder, answer = await self.lock.acquire_with(self.connection, self.needs, self.request, step)
            return True, answer


DEFERRED: contextvars.ContextVar[Deferred | None] = contextvars.ContextVar("spider_cluster_deferred", default=None)


async def settle_deferred() -> None:
    """Take the current request's deferred cluster locks, if any (before a MetaDB step or a cloud call)."""
    deferred = DEFERRED.get()
    if deferred is not None and not deferred.holder:
        await deferred.take()


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
        holder, _ = await self.acquire_with(connection, needs, request)
        return holder

    def defer(self, connection: str, needs: list[tuple[str, str, bool]], request: str) -> Deferred:
        """The same locks, taken later by the request's first MetaDB step (see ``Deferred``); the
        caller's task is the request. ``end_deferred`` ends it (in the same task)."""
        deferred = Deferred(self, connection, needs, request)
        deferred._token = DEFERRED.set(deferred)
        return deferred

    def end_deferred(self, deferred: Deferred) -> None:
        """The request is done with its locks: give them back if they were taken."""
        if deferred._token is not None:
            DEFERRED.reset(deferred._token)
            deferred._token = None
        if deferred.holder:
            self.release(deferred.holder)

    async def acquire_with(self, connection: str, needs: list[tuple[str, str, bool]], request: str,
                           step: Step | None = None) -> tuple[str, Any]:
        """``acquire``, each attempt made by ``step`` (default: the locks alone); returns the holder id
        and the successful attempt's answer."""
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
                    if step is None:
                        taken, answer = await self.store.try_lock(self.replica, holder, keys, request, self.lease), None
                    else:
                        taken, answer = await step(holder, keys)
                    if taken:
                        return holder, answer
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
