"""Describe coalescing: concurrent gets for different ids share one describe call.

A ``Coalescer`` keeps at most ``max_inflight`` batches running. Gets that arrive in the same turn of the
event loop (the tasks of one ``gather``) leave together as one batch, on the next turn; a get that
arrives while the limit is reached waits in the queue, and when a batch finishes everything queued (up
to ``max_batch`` ids) goes out as the next batch. Each caller gets its own result or its own exception (e.g. ``DriverNotFound``);
a failure of the whole batch is given to every caller of that batch. Callers asking for the same id
at the same time share one future.

The fetch function receives the distinct ids and returns ``{id: result}``; ids missing from the
mapping get ``not_found(id)``. It may also put an ``Exception`` instance as a value.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

FetchFn = Callable[[list[K]], Awaitable[dict[K, object]]]


class Coalescer(Generic[K, V]):
    def __init__(self, fetch: FetchFn, not_found: Callable[[K], BaseException], *,
                 max_inflight: int = 1, max_batch: int = 200) -> None:
        self._fetch = fetch
        self._not_found = not_found
        self._max_inflight = max(1, max_inflight)
        self._max_batch = max(1, max_batch)
        self._queue: dict[K, asyncio.Future] = {}
        self._inflight = 0
        self._scheduled = False
        self.batches = 0  # statistics (tests, tuning)
        self.requests = 0

    async def get(self, key: K) -> V:
        self.requests += 1
        fut = self._queue.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_consume)
            self._queue[key] = fut
            if not self._scheduled:  # let the rest of this turn's gets join the batch
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        self._scheduled = False
        self._maybe_start()

    def _maybe_start(self) -> None:
        while self._queue and self._inflight < self._max_inflight:
            keys = list(self._queue)[: self._max_batch]
            batch = {k: self._queue.pop(k) for k in keys}
            self._inflight += 1
            self.batches += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: dict[K, asyncio.Future]) -> None:
        try:
            try:
                results = await self._fetch(list(batch))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                for fut in batch.values():
                    if not fut.done():
                        fut.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            for key, fut in batch.items():
                if fut.done():
                    continue
                if key in results:
                    value = results[key]
                    if isinstance(value, BaseException):
                        fut.set_exception(value)
                    else:
                        fut.set_result(value)
                else:
                    fut.set_exception(self._not_found(key))
        finally:
            self._inflight -= 1
            self._maybe_start()


def _consume(fut: asyncio.Future) -> None:
    """Mark an exception as retrieved (a caller may have been cancelled while waiting)."""
    if not fut.cancelled():
        fut.exception()
