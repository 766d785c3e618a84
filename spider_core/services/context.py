"""The Spider core object every service function receives, and connection resolution.

``Spider`` bundles the MetaDB, the lock manager, the driver registry and the settings. A connection
name resolves to a ``Conn``: the config, its driver, the decrypted ``ConnectionInfo`` and the open
``CloudConnection`` — cached, because SDK clients are expensive, and dropped whenever connection
information changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spider_core import errors
from spider_core.admission import Admission, Bounds
from spider_core.drivers.base import CloudConnection, CloudDriver, ConnectionInfo, DriverCapability
from spider_core.drivers.registry import DriverRegistry
from spider_core.jobs import JobRunner
from spider_core.limits import CallLimiter, PolicyBook
from spider_core.metadb import MetaStore, from_env as metadb_from_env
from spider_core.metrics import Metrics
from spider_core.model import ConnectionConfigInfo
from spider_core.splock import LockManager

log = logging.getLogger(__name__)


def default_root() -> Path:
    return Path(os.environ.get("SPIDER_ROOT") or Path.home() / ".spidertwin").expanduser()


@dataclass
class Settings:
    root: Path = field(default_factory=default_root)
    lock_mode: str = "sponge"
    permission_namespace: str = ""
    # VM start: wait for a PublicIP (CB-Spider: every 15 s up to 600 s).
    vm_ip_poll_interval: float = 2.0
    vm_ip_timeout: float = 600.0
    # VM start: probe SSH on PublicIP:22 for drivers that ask for it (CB-Spider: every 2 s up to 120 s).
    vm_ssh_probe_timeout: float = 120.0
    # VM terminate: poll until Terminated/gone (CB-Spider: every 15 s up to 600 s).
    vm_terminate_poll_interval: float = 1.0
    vm_terminate_timeout: float = 600.0
    # Destroy: retries per resource type.
    destroy_retries: int = 10
    destroy_retry_delay: float = 3.0
    # As a replica of a shared (PostgreSQL) MetaDB: its id (SPIDER_REPLICA_ID, else host:port) and URL.
    replica_id: str = ""
    replica_url: str = ""

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            root=default_root(),
            lock_mode=env.get("SPIDER_LOCK_MODE", "sponge").strip().lower() or "sponge",
            permission_namespace=env.get("PERMISSION_BASED_CONTROL_MODE", "").strip(),
            vm_ip_timeout=float(env.get("SPIDER_VM_IP_TIMEOUT", "600")),
            vm_ssh_probe_timeout=float(env.get("SPIDER_VM_SSH_PROBE_TIMEOUT", "120")),
            vm_terminate_timeout=float(env.get("SPIDER_VM_TERMINATE_TIMEOUT", "600")),
            replica_id=env.get("SPIDER_REPLICA_ID", "").strip(),
        )


@dataclass
class Conn:
    """A resolved connection: what services need to call a driver."""

    name: str
    config: ConnectionConfigInfo
    provider: str
    driver: CloudDriver
    cloud: CloudConnection
    info: ConnectionInfo

    @property
    def capability(self) -> DriverCapability:
        return self.driver.capability()

    @property
    def region_zone(self) -> str:
        return f"{self.info.region}/{self.info.zone}"


class Spider:
    def __init__(self, settings: Settings, db: MetaStore, registry: DriverRegistry | None = None) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry or DriverRegistry()
        self.locks = LockManager(settings.lock_mode, namespace=settings.permission_namespace)
        self.limits = PolicyBook.from_env()
        self.limiters: dict[str, CallLimiter] = {}
        self._conns: dict[str, Conn] = {}
        self._opening: dict[str, asyncio.Future[Conn]] = {}
        self._retired: list[CloudConnection] = []
        self._generation = 0
        self._background: set[asyncio.Task] = set()
        self.admission = Admission(Bounds.from_env())
        self.jobs = JobRunner(db)
        self.phase = "starting"   # -> reconciling -> ready -> draining (spider_core.lifecycle)
        self.replica: Any = None  # spider_core.replicas.Replica on a shared MetaDB
        self.metrics = Metrics(self)
        self.jobs.on_finish = lambda job: self.metrics.jobs_finished.labels(job.status, job.origin).inc()

    def readiness(self) -> tuple[bool, str]:
        """(can take work, why not): false while recovering after a restart, shutting down, or shedding load."""
        if self.phase == "draining":
            return False, "Spider is shutting down: it finishes the work in flight and takes no new work"
        if self.phase != "ready":
            return False, "Spider is starting: reconciling interrupted creates/deletes with the clouds"
        if self.replica is not None and not self.replica.healthy:
            return False, f"Spider replica {self.replica.id} cannot renew its lease in the shared MetaDB"
        if self.admission.overloaded():
            gate = self.admission.server
            return False, (f"Spider is overloaded: {gate.inflight} requests in flight and {gate.queued} waiting "
                           f"(bound {gate.limit} + queue {gate.queue})")
        return True, "CB-Spider is ready"

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run a background task that ``close`` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    @classmethod
    async def start(cls, settings: Settings | None = None, registry: DriverRegistry | None = None) -> "Spider":
        settings = settings or Settings.from_env()
        db = metadb_from_env(settings.root)
        await db.open()
        spider = cls(settings, db, registry)
        if db.shared:
            await spider._join_cluster()
        for provider in {d.provider_name for d in await db.list_drivers()}:
            spider.prepare_driver(provider)
        return spider

    async def _join_cluster(self) -> None:
        """Become a replica: lease in the shared MetaDB, cluster-wide locks, shared connection info."""
        from spider_core.metadb.postgres import ClusterStore
        from spider_core.replicas import Replica, default_replica_id, lease_from_env
        replica_id = self.settings.replica_id or default_replica_id()
        self.db.replica = replica_id
        self.replica = Replica(ClusterStore(self.db), replica_id, url=self.settings.replica_url,
                               lease=lease_from_env())
        self.locks.cluster = self.replica.lock
        self.db.on_splock_released.append(self.replica.lock.wake)  # type: ignore[attr-defined]
        self.db.on_connection_info_changed.append(self.connection_info_changed)
        await self.replica.join()

    def prepare_driver(self, provider: str) -> None:
        """Warm a provider's driver up in the background (see ``CloudDriver.prepare``)."""
        task = asyncio.get_running_loop().create_task(self.registry.prepare(provider))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await self.jobs.drain(0)
        self.metrics.close()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.replica is not None:
            await self.replica.leave()  # the lease ends now: survivors take our queued jobs at once
        for conn in list(self._conns.values()):
            self._retired.append(conn.cloud)
        self._conns.clear()
        for cloud in self._retired:
            try:
                await cloud.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a cloud connection")
        self._retired.clear()
        await self.registry.close()
        await self.db.close()

    def limiter_for(self, name: str, provider: str) -> CallLimiter:
        """The connection's request limiter; kept across reconnects (its counters are the history)
        unless its policy changed."""
        policy = self.limits.policy_for(provider, name)
        limiter = self.limiters.get(name)
        if limiter is None or limiter.policy != policy:
            limiter = self.limiters[name] = CallLimiter(name, policy)
        return limiter

    def connection_info_changed(self) -> None:
        """Forget every resolved connection: the next request re-reads the MetaDB."""
        self._generation += 1
        self._retired.extend(c.cloud for c in self._conns.values())
        self._conns.clear()

    async def connection(self, name: str) -> Conn:
        """Resolve a connection name, raising CB-Spider's ``<name>: does not exist!`` texts."""
        if not name:
            raise errors.connection_name_empty()
        conn = self._conns.get(name)
        if conn is not None:
            return conn
        pending = self._opening.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self._opening[name] = fut
        generation = self._generation
        try:
            conn = await self._open(name)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            fut.set_result(conn)
            if generation == self._generation:
                self._conns[name] = conn
            else:
                self._retired.append(conn.cloud)
            return conn
        finally:
            self._opening.pop(name, None)

    async def _open(self, name: str) -> Conn:
        config = await self.db.get_connection(name)
        if config is None:
            raise errors.does_not_exist(name)
        driver_info = await self.db.get_driver(config.driver_name)
        if driver_info is None:
            raise errors.does_not_exist(config.driver_name)
        credential = await self.db.get_credential(config.credential_name, decrypt=True)
        if credential is None:
            raise errors.does_not_exist(config.credential_name)
        region = await self.db.get_region(config.region_name)
        if region is None:
            raise errors.does_not_exist(config.region_name)
        provider = driver_info.provider_name.upper()
        driver = await self.registry.get(provider)
        region_kv = {kv.key.lower(): kv.value for kv in region.key_values}
        # MOCK and CLOUDTWIN read only Region; Zone is always "" for them (contract 4.3).
        zone = "" if provider in ("MOCK", "CLOUDTWIN") else region_kv.get("zone", "")
        info = ConnectionInfo(provider=provider,
                              credential={kv.key: kv.value for kv in credential.key_values},
                              region=region_kv.get("region", ""), zone=zone, target_zone=zone,
                              connection_name=name, limiter=self.limiter_for(name, provider))
        try:
            cloud = await driver.connect(info)
        except errors.SpiderError:
            raise
        except Exception as exc:  # noqa: BLE001 - a driver bug must not become a traceback
            log.exception("driver %s failed to connect %s", provider, name)
            raise errors.DriverError(f"{provider} driver could not connect: {exc}") from None
        return Conn(name=name, config=config, provider=provider, driver=driver, cloud=cloud, info=info)
