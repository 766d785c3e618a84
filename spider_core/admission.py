"""Server load management: a bound on requests in flight, for the server and per connection.

Without a bound, a storm of slow creates piles up in the server until something breaks far from the
cause ("too many open files", a MetaDB that answers in seconds, clients timing out after minutes). A
``Gate`` lets ``limit`` requests run and up to ``queue`` more wait (FIFO) for at most ``max_wait``
seconds; anything past that is refused at once with 503 and a ``Retry-After`` estimated from how fast
requests are leaving. Refusing early keeps the work that was admitted fast: goodput stays near its
peak however far the offered load goes past the bound.

``Admission`` holds the server's gate and one gate per connection (made on first use, dropped when
idle). A request takes its connection's gate first, then the server's, so one connection's storm
waits in its own queue without holding server slots that other connections need.

Settings (environment): ``SPIDER_MAX_INFLIGHT`` (1024), ``SPIDER_MAX_QUEUED`` (4096),
``SPIDER_CONN_MAX_INFLIGHT`` (512), ``SPIDER_CONN_MAX_QUEUED`` (4096), ``SPIDER_QUEUE_WAIT`` (60 s).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import deque
from dataclasses import dataclass


class Overloaded(Exception):
    """Refused: the bound and the wait queue are full, or the wait took too long."""

    def __init__(self, message: str, retry_after: int, scope: str) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.scope = scope          # "server" or "connection": which bound refused it


@dataclass(frozen=True)
class Bounds:
    max_inflight: int = 1024
    max_queued: int = 4096
    conn_max_inflight: int = 512
    conn_max_queued: int = 4096
    max_wait: float = 60.0

    @classmethod
    def from_env(cls) -> "Bounds":
        env = os.environ

        def number(name: str, default: float, kind: type) -> float:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"{name}={text!r}: a number >= 0") from None
            if value < 0:
                raise ValueError(f"{name}={text!r}: a number >= 0")
            return value

        d = cls()
        return cls(int(number("SPIDER_MAX_INFLIGHT", d.max_inflight, int)),
                   int(number("SPIDER_MAX_QUEUED", d.max_queued, int)),
                   int(number("SPIDER_CONN_MAX_INFLIGHT", d.conn_max_inflight, int)),
                   int(number("SPIDER_CONN_MAX_QUEUED", d.conn_max_queued, int)),
                   float(number("SPIDER_QUEUE_WAIT", d.max_wait, float)))


class Gate:
    """``limit`` holders at once (0 = unbounded), ``queue`` FIFO waiters, ``max_wait`` seconds each."""

    def __init__(self, what: str, limit: int, queue: int, max_wait: float, scope: str = "server") -> None:
        self.what = what
        self.scope = scope
        self.limit = limit
        self.queue = queue
        self.max_wait = max_wait
        self.inflight = 0
        self.peak_inflight = 0
        self.peak_queued = 0
        self.rejected = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._service = 1.0       # smoothed seconds a holder keeps its slot (for Retry-After)
        self._window = [time.monotonic(), 0, 0]   # this second's start, admitted, refused
        self._demand = 1.0        # offered / admitted over the last full second (>= 1)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def _count(self, admitted: bool) -> None:
        now = time.monotonic()
        start, ok, refused = self._window
        if now - start >= 1.0:
            self._demand = (ok + refused) / ok if ok else (float(refused) or 1.0)
            self._window = [now, 0, 0]
        self._window[1 if admitted else 2] += 1

    async def enter(self) -> None:
        """Take a slot, waiting in the queue if needed; raises ``Overloaded`` past the bound."""
        if self.limit <= 0 or (self.inflight < self.limit and not self._waiters):
            self._take()
            self._count(True)
            return
        if len(self._waiters) >= self.queue:
            self.rejected += 1
            self._count(False)
            raise Overloaded(f"{self.what} is overloaded: {self.inflight} requests in flight (the bound) and "
                             f"{len(self._waiters)} waiting (the queue is full); retry later",
                             self.retry_after(), self.scope)
        self._count(True)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.peak_queued = max(self.peak_queued, len(self._waiters))
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.max_wait)
        except asyncio.TimeoutError:
            if fut.done() and not fut.cancelled():  # granted at the last moment: hand the slot back
                self.leave(None)
            self._forget(fut)
            self.rejected += 1
            raise Overloaded(f"{self.what} is overloaded: waited {self.max_wait:g} s in the queue behind "
                             f"{self.inflight} requests in flight; retry later", self.retry_after(),
                             self.scope) from None
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.leave(None)
            self._forget(fut)
            raise

    def _take(self) -> None:
        self.inflight += 1
        if self.inflight > self.peak_inflight:
            self.peak_inflight = self.inflight

    def _forget(self, fut: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(fut)
        except ValueError:
            pass
        if not fut.done():
            fut.cancel()

    def leave(self, held: float | None) -> None:
        """Give the slot back (``held``: seconds it was held; None when no work was done) and wake
        the next waiter."""
        if held is not None:
            self._service = 0.9 * self._service + 0.1 * held
        self.inflight -= 1
        while self._waiters and (self.limit <= 0 or self.inflight < self.limit):
            fut = self._waiters.popleft()
            if fut.done():
                continue
            self._take()
            fut.set_result(None)

    def retry_after(self) -> int:
        """Seconds until a retry is likely to get in, 1..60: the queue ahead drained (waiters x service
        time / slots), stretched by how far demand exceeds what is admitted (offered / admitted over the
        last second). Refused clients then come back spread over the time the server needs for them,
        instead of all at once into a full queue again: refusals stay cheap and goodput near peak."""
        slots = max(1, self.limit or 1)
        drain = (len(self._waiters) + 1) * self._service / slots
        return int(min(60, max(1, math.ceil(drain * max(1.0, self._demand)))))

    def stats(self) -> dict:
        return {"inflight": self.inflight, "queued": self.queued, "limit": self.limit, "queue": self.queue,
                "peak_inflight": self.peak_inflight, "peak_queued": self.peak_queued, "rejected": self.rejected}


class Ticket:
    """The slots one request holds; ``release`` gives them back."""

    __slots__ = ("_gates", "_started")

    def __init__(self, gates: list[Gate]) -> None:
        self._gates = gates
        self._started = time.monotonic()

    def release(self, *, worked: bool = True) -> None:
        held = time.monotonic() - self._started if worked else None
        for gate in self._gates:
            gate.leave(held)
        self._gates = []


class Admission:
    """The server's gate and the per-connection gates."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.server = Gate("Spider", bounds.max_inflight, bounds.max_queued, bounds.max_wait)
        self.connections: dict[str, Gate] = {}
        self.last_rejection = 0.0

    async def admit(self, connection: str) -> Ticket:
        gates: list[Gate] = []
        try:
            if connection and self.bounds.conn_max_inflight > 0:
                gate = self.connections.get(connection)
                if gate is None:
                    gate = self.connections[connection] = Gate(f"Connection '{connection}'",
                                                               self.bounds.conn_max_inflight,
                                                               self.bounds.conn_max_queued, self.bounds.max_wait,
                                                               "connection")
                await gate.enter()
                gates.append(gate)
            await self.server.enter()
            gates.append(self.server)
        except BaseException as exc:
            if isinstance(exc, Overloaded):
                self.last_rejection = time.monotonic()
            Ticket(gates).release(worked=False)
            self._drop_idle(connection)
            raise
        return _Held(self, connection, gates)

    def _drop_idle(self, connection: str) -> None:
        gate = self.connections.get(connection)
        if gate is not None and gate.inflight == 0 and gate.queued == 0:
            del self.connections[connection]

    def overloaded(self) -> bool:
        """True while the server's queue is full or a request was refused in the last second."""
        return self.server.queued >= max(1, self.server.queue) or time.monotonic() - self.last_rejection < 1.0

    def stats(self) -> dict:
        return {"server": self.server.stats(),
                "connections": {name: g.stats() for name, g in self.connections.items()}}


class _Held(Ticket):
    __slots__ = ("_admission", "_connection")

    def __init__(self, admission: Admission, connection: str, gates: list[Gate]) -> None:
        super().__init__(gates)
        self._admission = admission
        self._connection = connection

    def release(self, *, worked: bool = True) -> None:
        super().release(worked=worked)
        self._admission._drop_idle(self._connection)
