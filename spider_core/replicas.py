"""Spider replicas on one shared MetaDB: who is alive, and who finishes a dead replica's work.

Each replica registers in ``replicas`` and renews a lease (``SPIDER_REPLICA_LEASE`` seconds, default
6) every quarter of it. A replica whose lease ran out is dead: the first survivor to notice claims it
in one transaction (``ClusterStore.claim``): its open intents and unfinished jobs become the
survivor's, and its lock rows go. The survivor then settles them exactly as a restart settles its
own (``lifecycle.take_over``): intents reconciled with the cloud, running jobs finished or run
again, queued jobs queued here.

A replica that finds its own lease already claimed (it was cut off from the database longer than
the lease) stops at once (``spider serve`` kills itself, without the SIGTERM drain): its work belongs
to a survivor now, and doing it twice is what the lease exists to prevent. A clean stop ends the lease at once, so survivors take the queued jobs without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Awaitable, Callable

from spider_core.cluster_lock import ClusterLock
from spider_core.errors import SpiderError

if TYPE_CHECKING:
    from spider_core.metadb.postgres import ClusterStore

log = logging.getLogger("spider.replicas")

DEFAULT_LEASE = 6.0


def lease_from_env() -> float:
    text = os.environ.get("SPIDER_REPLICA_LEASE", "").strip()
    try:
        value = float(text) if text else DEFAULT_LEASE
    except ValueError:
        raise SpiderError(f"SPIDER_REPLICA_LEASE={text!r}: a number of seconds") from None
    if value < 1:
        raise SpiderError(f"SPIDER_REPLICA_LEASE={text!r}: at least 1 second")
    return value


def default_replica_id(port: int | None = None) -> str:
    """``SPIDER_REPLICA_ID``, else host name and port: stable across restarts of the same server."""
    given = os.environ.get("SPIDER_REPLICA_ID", "").strip()
    if given:
        return given
    return f"{socket.gethostname()}:{port}" if port else f"{socket.gethostname()}:{os.getpid()}"


TakeOver = Callable[[list[str], list[str]], Awaitable[None]]


class Replica:
    """This server as a member of the cluster."""

    def __init__(self, store: "ClusterStore", replica_id: str, *, url: str = "", lease: float = DEFAULT_LEASE) -> None:
        self.store = store
        self.id = replica_id
        self.url = url
        self.lease = lease
        self.lock = ClusterLock(store, replica_id, lease)
        self.healthy = False          # False while the lease cannot be renewed
        self.fenced = False           # our lease was claimed by a survivor: we must stop
        self.claimed: list[str] = []  # replicas whose work we took
        self.on_fenced: Callable[[], None] | None = None

    async def join(self) -> None:
        await self.store.join(self.id, self.url)
        self.healthy = True

    async def run(self, take_over: TakeOver) -> None:
        """Heartbeat and reap, every quarter lease, until cancelled."""
        interval = self.lease / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick(take_over)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database is away; retried next tick
                self.healthy = False
                log.warning("replica %s: heartbeat failed: %s", self.id, exc)

    async def tick(self, take_over: TakeOver) -> None:
        if not await self.store.heartbeat(self.id):
            self.healthy = False
            self.fenced = True
            log.error("replica %s: its lease was claimed by a survivor (cut off from the MetaDB longer than "
                      "%.0f s); it stops so no work runs twice", self.id, self.lease)
            if self.on_fenced is not None:
                self.on_fenced()
            return
        self.healthy = True
        await self.store.db.ensure_listening()
        for dead in await self.store.expired(self.id, self.lease):
            claimed = await self.store.claim(dead, self.id, self.lease)
            if claimed is None:
                continue
            intents, jobs = claimed
            self.claimed.append(dead)
            log.warning("replica %s: replica %s is gone; taking over %d open intent(s) and %d job(s)", self.id,
                        dead, len(intents), len(jobs))
            self.lock.wake()  # its locks are gone: waiters look again
            await take_over(intents, jobs)

    async def leave(self) -> None:
        await self.lock.flush()
        try:
            await self.store.leave(self.id)
        except Exception as exc:  # noqa: BLE001 - the lease then runs out by itself
            log.warning("replica %s: could not end its lease: %s", self.id, exc)
