"""SP-Lock: CB-Spider's per-resource "sponge" lock, on asyncio (contract section 12).

One reader/writer lock per key ``(family, connection, NameId)``. Entries are reference-counted: the
count covers holders **and** waiters, an entry is created on first use and deleted when its count
drops to 0, so memory is bounded by the number of names in use right now.

Semantics:

* FIFO-fair: a request that cannot be granted at once queues; a queued writer blocks later readers
  (no writer starvation) and consecutive queued readers are released together.
* Keys never wait for each other (different names, different connections, different families).
* Cancellation-safe: a task cancelled while waiting leaves the queue, drops its count (deleting the
  entry when it was the last user) and wakes whoever can now run; a task cancelled right after it
  was granted gives the grant back.
* Not re-entrant (like Go's ``sync.RWMutex``): a task must not take the same key twice.

Modes (which locks an operation asks for is decided by ``spider_core.lockplan``; this module only
grants them):

* ``sponge`` (default) and ``cbspider``: one lock per name, as above. ``sponge`` services ask for the
  lock hierarchy (read locks on the parents a create uses), ``cbspider`` services ask for exactly the
  locks CB-Spider takes.
* ``global`` swaps the sponge lock for the old CB-Spider lock: one exclusive lock per family, so every
  read or write of any name in a family is serialised (services ask for CB-Spider's locks). Entries are
  still kept per name (for ``info()``/``snapshot()``), but they all queue on the family lock. Beware: in
  global mode one task must never hold two locks of the same family at once (it would deadlock on
  itself).

Several locks at once (``hold``) are taken in one documented order, ``LOCK_ORDER`` by family and then
by name, so two requests can never wait for each other in a circle. Each holder and waiter carries the
request it serves (``REQUEST``, set by the REST layer), so a long wait can be explained by the request
that holds the key.

There are no awaits between the lookup of an entry and the change of its count, so the event loop's
single thread plays the role of CB-Spider's guard mutex.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

__all__ = ["LockManager", "Need", "INFO_FAMILIES", "LOCK_ORDER", "MODES", "REQUEST", "SAMPLE_LIMIT", "in_order"]

# The four strings /splockinfo shows, in this order, with CB-Spider's lock names, and the families
# each one lists (CB-Spider's VPC SPLock covers subnets too; the sponge mode keys them apart).
INFO_FAMILIES: tuple[tuple[str, str], ...] = (
    ("vpc", "VPC SPLock"),
    ("sg", "SG SPLock"),
    ("key", "Key SPLock"),
    ("vm", "VM SPLock"),
)
_INFO_MEMBERS = {"vpc": ("vpc", "subnet")}

# The one lock order: a request that needs several locks takes them by family in this order (parents
# before children, so a create's read locks on what it uses come before the write lock on its own
# name), and within a family by name. Every multi-lock acquisition goes through ``in_order``.
LOCK_ORDER: tuple[str, ...] = ("connection", "vpc", "subnet", "sg", "key", "vm", "nlb", "disk", "image", "nic",
                               "publicip")
_RANK = {family: rank for rank, family in enumerate(LOCK_ORDER)}

# Reservoir size per family and per measure (wait, hold): the most recent samples.
SAMPLE_LIMIT = 10_000

MODES = ("sponge", "cbspider", "global")
_now = time.perf_counter

# The request a lock is taken for ("POST /spider/vm"), shown with holders and waiters.
REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("spidertwin_lock_request", default="")

# At most this many holder/waiter requests are listed per key in a snapshot.
_LISTED = 5


@dataclass(frozen=True)
class Need:
    """One lock a request needs: a read or write lock on ``(family, connection, name)``."""

    family: str
    name: str
    write: bool


def in_order(needs: Iterable[Need]) -> list[Need]:
    """The locks to take, in ``LOCK_ORDER`` then by name; a key asked for twice is taken once (write wins).

    Raises ValueError for a family outside the order or an empty name: a lock on nothing protects
    nothing, and a family without a rank could break the order.
    """
    merged: dict[tuple[str, str], bool] = {}
    for need in needs:
        if need.family not in _RANK:
            raise ValueError(f"SP-Lock family {need.family!r} is not in the lock order {LOCK_ORDER}")
        if not need.name:
            raise ValueError(f"SP-Lock on an empty {need.family} name")
        key = (need.family, need.name)
        merged[key] = merged.get(key, False) or need.write
    return [Need(f, n, w) for (f, n), w in sorted(merged.items(), key=lambda kv: (_RANK[kv[0][0]], kv[0][1]))]


def _task_name() -> str:
    """Who asks when no request is named (a job, the start-up reconciler): its asyncio task's name."""
    task = asyncio.current_task()
    return task.get_name() if task is not None else ""


class _Waiter:
    __slots__ = ("future", "write", "granted", "since", "request")

    def __init__(self, future: Any, write: bool, since: float, request: str) -> None:
        self.future = future
        self.write = write
        self.granted = False
        self.since = since
        self.request = request


class _RWLock:
    """A FIFO-fair reader/writer lock without its own bookkeeping of users."""

    __slots__ = ("readers", "writer", "queue", "users")

    def __init__(self) -> None:
        self.readers = 0
        self.writer = False
        self.queue: deque[_Waiter] = deque()
        self.users = 0  # only used for global-mode family locks

    def try_take(self, write: bool) -> bool:
        if self.queue or self.writer:
            return False
        if write:
            if self.readers:
                return False
            self.writer = True
        else:
            self.readers += 1
        return True

    def give_back(self, write: bool) -> None:
        if write:
            self.writer = False
        else:
            self.readers -= 1

    def wake(self) -> None:
        """Grant queued requests in FIFO order while they are compatible."""
        queue = self.queue
        while queue:
            waiter = queue[0]
            if waiter.future.done():  # cancelled while queued; its task cleans up the rest
                queue.popleft()
                continue
            if self.writer:
                return
            if waiter.write:
                if self.readers:
                    return
                self.writer = True
            else:
                self.readers += 1
            queue.popleft()
            waiter.granted = True
            waiter.future.set_result(None)
            if waiter.write:
                return


class _Entry:
    __slots__ = ("family", "connection", "name", "refcount", "lock", "holders", "queued", "mode")

    def __init__(self, family: str, connection: str, name: str, lock: _RWLock) -> None:
        self.family = family
        self.connection = connection
        self.name = name
        self.refcount = 0
        self.lock = lock
        # holder token -> (perf_counter at grant, request); insertion ordered, so the first is the oldest
        self.holders: dict[int, tuple[float, str]] = {}
        self.queued: list[_Waiter] = []  # waiting on this key, oldest first
        self.mode = ""


class _Stats:
    __slots__ = ("acquired", "wait", "hold", "wait_max", "hold_max", "max_waiters")

    def __init__(self) -> None:
        self.acquired = 0
        self.wait: deque[float] = deque(maxlen=SAMPLE_LIMIT)
        self.hold: deque[float] = deque(maxlen=SAMPLE_LIMIT)
        self.wait_max = 0.0
        self.hold_max = 0.0
        self.max_waiters = 0


def _percentiles(samples: deque[float], all_time_max: float) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": round(all_time_max, 3)}
    ordered = sorted(samples)
    last = len(ordered) - 1

    def pick(q: float) -> float:
        return round(ordered[min(last, int(q * len(ordered)))], 3)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(all_time_max, 3)}


class _Guard:
    """The async context manager ``LockManager.read/write`` return (cheaper than a generator)."""

    __slots__ = ("_manager", "_family", "_connection", "_name", "_write", "_entry", "_token", "_holder")

    def __init__(self, manager: LockManager, family: str, connection: str, name: str, write: bool) -> None:
        self._manager = manager
        self._family = family
        self._connection = connection
        self._name = name
        self._write = write
        self._entry: _Entry | None = None
        self._token = 0
        self._holder = ""

    async def __aenter__(self) -> None:
        if self._entry is not None:
            raise RuntimeError("SP-Lock guard is already held; create a new one per use")
        entry, token = await self._manager._acquire(self._family, self._connection, self._name, self._write)
        if self._manager.cluster is not None:
            try:
                self._holder = await self._manager._cluster_acquire([(entry, self._write)])
            except BaseException:
                self._manager._release(entry, token)
                raise
        self._entry, self._token = entry, token

    async def __aexit__(self, *exc: object) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            self._manager._release(entry, self._token)
            if self._holder:
                self._manager.cluster.release(self._holder)  # type: ignore[union-attr]
                self._holder = ""


class _MultiGuard:
    """``LockManager.hold``: several locks taken one after another in the given order, given back in
    reverse; a failure or cancellation half-way gives back what was already taken."""

    __slots__ = ("_manager", "_connection", "_needs", "_held", "_holder", "_defer", "_deferred")

    def __init__(self, manager: LockManager, connection: str, needs: list[Need], defer: bool = False) -> None:
        self._manager = manager
        self._connection = connection
        self._needs = needs
        self._held: list[tuple[_Entry, int]] = []
        self._holder = ""
        self._defer = defer
        self._deferred: Any = None

    async def __aenter__(self) -> None:
        if self._held:
            raise RuntimeError("SP-Lock guard is already held; create a new one per use")
        try:
            for need in self._needs:
                self._held.append(await self._manager._acquire(need.family, self._connection, need.name, need.write))
            if self._manager.cluster is not None and self._held:
                granted = [(entry, need.write) for (entry, _), need in zip(self._held, self._needs)]
                if self._defer:
                    self._deferred = self._manager._cluster_defer(granted)
                else:
                    self._holder = await self._manager._cluster_acquire(granted)
        except BaseException:
            self._give_back()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._give_back()

    def _give_back(self) -> None:
        held, self._held = self._held, []
        for entry, token in reversed(held):
            self._manager._release(entry, token)
        if self._holder:
            self._manager.cluster.release(self._holder)  # type: ignore[union-attr]
            self._holder = ""
        if self._deferred is not None:
            self._manager.cluster.end_deferred(self._deferred)  # type: ignore[union-attr]
            self._deferred = None


class LockManager:
    """All SP-Locks of one server."""

    def __init__(self, mode: str = "sponge", *, namespace: str = "") -> None:
        mode = (mode or "sponge").strip().lower()
        if mode not in MODES:
            raise ValueError(f"SP-Lock mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.namespace = namespace or ""
        self._global = mode == "global"
        self._families: dict[str, dict[tuple[str, str], _Entry]] = {}
        self._family_locks: dict[str, _RWLock] = {}  # global mode only
        self._stats: dict[str, _Stats] = {}
        self._tokens = 0
        self._since = datetime.now(timezone.utc)
        self.on_wait: Callable[[str, float], None] | None = None  # (family, seconds waited): the metrics
        # The cross-replica layer (spider_core.cluster_lock.ClusterLock) when replicas share a MetaDB:
        # asked once a request's local locks are granted, for all of them at once.
        self.cluster: Any = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LockManager:
        """``SPIDER_LOCK_MODE`` (sponge|cbspider|global, default sponge) and ``PERMISSION_BASED_CONTROL_MODE``."""
        env = os.environ if environ is None else environ
        mode = env.get("SPIDER_LOCK_MODE", "").strip().lower() or "sponge"
        if mode not in MODES:
            raise ValueError(f"SPIDER_LOCK_MODE must be one of {', '.join(MODES)}, not {mode!r}")
        return cls(mode, namespace=env.get("PERMISSION_BASED_CONTROL_MODE", "").strip())

    # ---- public API ------------------------------------------------------------------------------

    def write(self, family: str, connection: str, name: str) -> _Guard:
        """Exclusive lock: ``async with locks.write("vpc", conn, "vpc-01"): ...``"""
        return _Guard(self, family, connection, name, True)

    def read(self, family: str, connection: str, name: str) -> _Guard:
        """Shared lock: ``async with locks.read("vpc", conn, "vpc-01"): ...``"""
        return _Guard(self, family, connection, name, False)

    def hold(self, connection: str, needs: Iterable[Need], *, exact: bool = False,
             defer_cluster: bool = False) -> _MultiGuard:
        """Several locks for one request: ``async with locks.hold(conn, plan): ...``.

        The locks are taken in ``LOCK_ORDER`` (``in_order``); ``exact=True`` takes them as listed
        instead, for the ``cbspider`` plans that reproduce CB-Spider's own sequence.
        ``defer_cluster``: across replicas, the request's first MetaDB step takes them (a create's
        intent step, in the same round trip), or its first cloud call (``spider_core.cluster_lock``).
        """
        return _MultiGuard(self, connection, list(needs) if exact else in_order(needs), defer_cluster)

    def entry_count(self) -> int:
        return sum(len(entries) for entries in self._families.values())

    def info(self) -> list[str]:
        """CB-Spider's ``/splockinfo`` strings: VPC, SG, Key, VM."""
        out = []
        for family, lock_name in INFO_FAMILIES:
            parts = [f"<{lock_name}> "]
            for member in _INFO_MEMBERS.get(family, (family,)):
                for entry in self._families.get(member, {}).values():
                    parts.append(f"({entry.connection}:{entry.name}, {hex(id(entry))}:{entry.refcount}) ")
            out.append("".join(parts))
        return out

    def snapshot(self) -> dict[str, Any]:
        now = _now()
        entries = []
        for entries_of_family in self._families.values():
            for entry in entries_of_family.values():
                oldest = next(iter(entry.holders.values()), None)
                first_waiter = entry.queued[0] if entry.queued else None
                entries.append({
                    "family": entry.family,
                    "connection": entry.connection,
                    "name": entry.name,
                    "holders": len(entry.holders),
                    "mode": entry.mode,
                    "waiters": len(entry.queued),
                    "held_for_ms": round((now - oldest[0]) * 1000.0, 3) if oldest is not None else 0.0,
                    "waited_for_ms": round((now - first_waiter.since) * 1000.0, 3) if first_waiter else 0.0,
                    "holder_requests": [request for _, request in list(entry.holders.values())[:_LISTED]],
                    "waiter_requests": [w.request for w in entry.queued[:_LISTED]],
                    "refcount": entry.refcount,
                })
        stats = {
            family: {
                "acquired": s.acquired,
                "wait_ms": _percentiles(s.wait, s.wait_max),
                "hold_ms": _percentiles(s.hold, s.hold_max),
                "max_waiters": s.max_waiters,
            }
            for family, s in self._stats.items()
        }
        return {"mode": self.mode, "entries": entries, "stats": stats,
                "since": self._since.isoformat(timespec="seconds")}

    def reset_stats(self) -> None:
        """Forget the statistics (live entries are untouched); ``since`` restarts now."""
        self._stats = {}
        self._since = datetime.now(timezone.utc)

    # ---- internals -----------------------------------------------------------------------------------

    async def _cluster_acquire(self, granted: list[tuple[_Entry, bool]]) -> str:
        """The same locks across replicas (global mode: the family's one lock, exclusive)."""
        return await self.cluster.acquire(granted[0][0].connection, self._cluster_needs(granted),
                                          REQUEST.get() or _task_name())

    def _cluster_defer(self, granted: list[tuple[_Entry, bool]]) -> Any:
        return self.cluster.defer(granted[0][0].connection, self._cluster_needs(granted),
                                  REQUEST.get() or _task_name())

    def _cluster_needs(self, granted: list[tuple[_Entry, bool]]) -> list[tuple[str, str, bool]]:
        if self._global:
            return sorted({(entry.family, "*", True) for entry, _ in granted})
        return [(entry.family, entry.name, write) for entry, write in granted]

    async def _acquire(self, family: str, connection: str, name: str, write: bool) -> tuple[_Entry, int]:
        if self.namespace:
            connection = self.namespace
        entries = self._families.get(family)
        if entries is None:
            entries = self._families[family] = {}
        key = (connection, name)
        entry = entries.get(key)
        if entry is None:
            if self._global:
                lock = self._family_locks.get(family)
                if lock is None:
                    lock = self._family_locks[family] = _RWLock()
            else:
                lock = _RWLock()
            entry = entries[key] = _Entry(family, connection, name, lock)
        entry.refcount += 1
        lock = entry.lock
        if self._global:
            lock.users += 1
            write = True  # the old lock: everything in the family is exclusive
        stats = self._stats.get(family)
        if stats is None:
            stats = self._stats[family] = _Stats()

        start = _now()
        request = REQUEST.get() or _task_name()
        if not lock.try_take(write):
            waiter = _Waiter(self._loop_future(), write, start, request)
            lock.queue.append(waiter)
            entry.queued.append(waiter)
            if len(lock.queue) > stats.max_waiters:
                stats.max_waiters = len(lock.queue)
            try:
                await waiter.future
            except BaseException:
                entry.queued.remove(waiter)
                if waiter.granted:
                    lock.give_back(write)
                else:
                    try:
                        lock.queue.remove(waiter)
                    except ValueError:
                        pass
                self._drop(entry)
                lock.wake()
                raise
            entry.queued.remove(waiter)
        granted = _now()
        self._tokens += 1
        token = self._tokens
        entry.holders[token] = (granted, request)
        entry.mode = "write" if write else "read"
        waited = (granted - start) * 1000.0
        stats.acquired += 1
        if self.on_wait is not None:
            self.on_wait(family, waited / 1000.0)
        stats.wait.append(waited)
        if waited > stats.wait_max:
            stats.wait_max = waited
        return entry, token

    def _release(self, entry: _Entry, token: int) -> None:
        started, _ = entry.holders.pop(token)
        held = (_now() - started) * 1000.0
        stats = self._stats.get(entry.family)
        if stats is not None:  # None only after reset_stats() during the hold
            stats.hold.append(held)
            if held > stats.hold_max:
                stats.hold_max = held
        lock = entry.lock
        lock.give_back(entry.mode == "write")
        if not entry.holders:
            entry.mode = ""
        self._drop(entry)
        lock.wake()

    def _drop(self, entry: _Entry) -> None:
        entry.refcount -= 1
        if entry.refcount == 0:
            entries = self._families.get(entry.family)
            if entries is not None and entries.get((entry.connection, entry.name)) is entry:
                del entries[(entry.connection, entry.name)]
        if self._global:
            lock = entry.lock
            lock.users -= 1
            if lock.users == 0 and self._family_locks.get(entry.family) is lock:
                del self._family_locks[entry.family]

    @staticmethod
    def _loop_future() -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()
