"""The MetaDB: connection information and the IID tables, in SQLite (WAL).

Writes go to one dedicated writer thread. Writes that arrive while one is being committed are
grouped into the next transaction, each inside its own savepoint, so a burst of 200 creates costs a
handful of commits and thread hops instead of 200, while each write still lands whole or not at all
(a failed insert of a VPC and its subnets leaves neither, and does not disturb its neighbours).

Reads are indexed point lookups (a few microseconds) and run on the event loop's thread through a
separate read-only WAL connection, which sees every committed write. A thread hop would cost twenty
times more than the read itself.

Layout under ``$SPIDER_ROOT`` (default ``~/.spidertwin``)::

    meta_db/spider.db   the database
    secret.key          the per-installation credential key (0600)

IIDs of every resource type live in one table keyed by (connection, type, owner VPC, name);
``system_id`` holds Spider's view ``spUUID:cspId``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, TypeVar

from spider_core.errors import SpiderError
from spider_core.model import (
    ConnectionConfigInfo,
    CredentialInfo,
    DriverInfo,
    KeyValue,
    RegionInfo,
)
from spider_core.secrets import CredentialCipher

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cloud_driver_infos (
    driver_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL, driver_lib_file_name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credential_infos (
    credential_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL,
    key_values TEXT NOT NULL);               -- JSON [[key, encrypted value], ...]
CREATE TABLE IF NOT EXISTS region_infos (
    region_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL,
    key_values TEXT NOT NULL, available_zones TEXT);
CREATE TABLE IF NOT EXISTS connection_config_infos (
    config_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL, driver_name TEXT NOT NULL,
    credential_name TEXT NOT NULL, region_name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS iid_infos (
    connection_name TEXT NOT NULL, resource_type TEXT NOT NULL, owner_vpc TEXT NOT NULL DEFAULT '',
    name_id TEXT NOT NULL, system_id TEXT NOT NULL, zone_id TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (connection_name, resource_type, name_id, owner_vpc)
) WITHOUT ROWID;                             -- the key is the table: one B-tree to write, not two
CREATE INDEX IF NOT EXISTS iid_by_owner ON iid_infos (connection_name, resource_type, owner_vpc);
CREATE TABLE IF NOT EXISTS intents (         -- a create or delete whose cloud call may be in flight
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL DEFAULT '', op TEXT NOT NULL,
    connection_name TEXT NOT NULL, resource_type TEXT NOT NULL, owner_vpc TEXT NOT NULL DEFAULT '',
    name_id TEXT NOT NULL, sp_uuid TEXT NOT NULL DEFAULT '', system_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, operation TEXT NOT NULL, resource TEXT NOT NULL, name TEXT NOT NULL,
    connection_name TEXT NOT NULL, status TEXT NOT NULL, origin TEXT NOT NULL,
    request TEXT NOT NULL,                   -- JSON: method, route, path, match_info, query, body
    result TEXT, error TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_by_connection ON jobs (connection_name, id);
CREATE TABLE IF NOT EXISTS vm_imagespec_infos (  -- VM image+spec favourites and recents (CB-Spider's tables)
    kind TEXT NOT NULL, csp TEXT NOT NULL, region TEXT NOT NULL, zone TEXT NOT NULL, image_name TEXT NOT NULL,
    spec_name TEXT NOT NULL, record TEXT NOT NULL,   -- JSON: the record as the API shows it
    PRIMARY KEY (kind, csp, region, zone, image_name, spec_name));
"""


@dataclass(frozen=True)
class IIDRow:
    """One stored IID. ``system_id`` is Spider's ``spUUID:cspId``; ``owner_vpc`` is '' when n/a."""

    connection: str
    resource_type: str
    name: str
    system_id: str
    owner_vpc: str = ""
    zone: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class IntentRow:
    """A create or delete recorded before its cloud call: while it exists, the cloud may hold (or still
    hold) a resource the IID table does not show, so a restart reconciles it with the cloud."""

    id: str
    op: str                 # "create" or "delete"
    connection: str
    resource_type: str
    name: str
    owner_vpc: str = ""
    sp_uuid: str = ""       # the name the cloud knows the resource by
    system_id: str = ""     # deletes: the stored ``spUUID:cspId``
    detail: dict = field(default_factory=dict)
    job_id: str = ""
    created_at: str = ""


@dataclass
class JobRow:
    """One asynchronous operation (or one reconciled at start); ``request`` replays it."""

    id: str
    operation: str
    resource: str
    name: str
    connection: str
    status: str
    origin: str
    request: dict
    result: Any = None
    error: str | None = None
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None


class DuplicateRow(SpiderError):
    """An IID with that key is already stored (a concurrent create got there first)."""


class MetaDB:
    def __init__(self, root: Path, *, file_name: str = "spider.db") -> None:
        self.root = root
        self.path = root / "meta_db" / file_name
        self.cipher = CredentialCipher.for_root(root)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadb-writer")
        self._conn: sqlite3.Connection | None = None      # writer, used only on the writer thread
        self._reader: sqlite3.Connection | None = None    # read-only, used only on the loop thread
        self._closed = False
        self._pending: list[tuple[list[tuple[str, tuple]], asyncio.Future]] = []
        self._flushing = False

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self._run(self._open)
        reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                 check_same_thread=False)
        reader.execute("PRAGMA query_only=ON")
        reader.execute("PRAGMA busy_timeout=5000")
        self._reader = reader

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        conn.execute("PRAGMA optimize")
        self._conn = conn

    async def close(self) -> None:
        if self._closed:
            return
        while self._pending or self._flushing:  # let queued writes land first
            await asyncio.sleep(0.01)
        # Close the reader first: the last connection to close merges the WAL into the database file,
        # so a stopped server leaves one self-contained spider.db (safe to copy as a backup).
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._run(self._checkpoint_and_close, conn)
        self._closed = True
        self._executor.shutdown(wait=True)

    @staticmethod
    def _checkpoint_and_close(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    async def ping(self) -> None:
        """A real round trip through the writer thread (health checks)."""
        await self._run(lambda: self._db.execute("SELECT 1").fetchone())

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise SpiderError("MetaDB is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SpiderError("MetaDB is not open")
        return self._conn

    async def _write(self, statements: list[tuple[str, tuple]]) -> list[int]:
        """Apply statements atomically (possibly in one transaction with other writes); return rowcounts."""
        if self._closed:
            raise SpiderError("MetaDB is closed")
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((statements, fut))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            self._flushing = False
            return
        done = asyncio.get_running_loop().run_in_executor(self._executor, self._apply, [b[0] for b in batch])

        def deliver(outcome: asyncio.Future) -> None:
            try:
                results = outcome.result()
            except BaseException as exc:  # noqa: BLE001 - the whole batch failed (e.g. disk full)
                results = [exc] * len(batch)
            for (_, fut), res in zip(batch, results):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
            self._flush()  # writes that arrived meanwhile form the next batch

        done.add_done_callback(deliver)

    def _apply(self, batch: list[list[tuple[str, tuple]]]) -> list[list[int] | BaseException]:
        """One transaction; each write in its own savepoint so one failure spares the others."""
        db = self._db
        results: list[list[int] | BaseException] = []
        if len(batch) == 1:  # alone in its transaction: no savepoint needed
            db.execute("BEGIN IMMEDIATE")
            try:
                results.append([db.execute(sql, params).rowcount for sql, params in batch[0]])
            except Exception as exc:  # noqa: BLE001 - handed to that write's caller
                db.execute("ROLLBACK")
                return [exc]
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return results
        db.execute("BEGIN IMMEDIATE")
        try:
            for statements in batch:
                db.execute("SAVEPOINT w")
                try:
                    counts = [db.execute(sql, params).rowcount for sql, params in statements]
                except Exception as exc:  # noqa: BLE001 - handed to that write's caller
                    db.execute("ROLLBACK TO w")
                    db.execute("RELEASE w")
                    results.append(exc)
                else:
                    db.execute("RELEASE w")
                    results.append(counts)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return results

    # ---- drivers -----------------------------------------------------------------------------

    async def put_driver(self, info: DriverInfo) -> None:
        await self._write([(
            "INSERT INTO cloud_driver_infos VALUES (?,?,?) ON CONFLICT(driver_name) DO UPDATE SET "
            "provider_name=excluded.provider_name, driver_lib_file_name=excluded.driver_lib_file_name",
            (info.driver_name, info.provider_name, info.driver_lib_file_name))])

    async def get_driver(self, name: str) -> DriverInfo | None:
        row = self._one("SELECT * FROM cloud_driver_infos WHERE driver_name=?", (name,))
        return DriverInfo(*row) if row else None

    async def list_drivers(self, provider: str = "") -> list[DriverInfo]:
        rows = self._all("SELECT * FROM cloud_driver_infos" + _provider_filter(provider),
                               _provider_args(provider))
        return [DriverInfo(*r) for r in rows]

    async def delete_driver(self, name: str) -> bool:
        return await self._delete("cloud_driver_infos", "driver_name", name)

    # ---- credentials (values encrypted at rest) ---------------------------------------------

    async def put_credential(self, info: CredentialInfo) -> CredentialInfo:
        """Store with every value encrypted; return the stored (encrypted) form."""
        sealed = [KeyValue(kv.key, self.cipher.encrypt(kv.value)) for kv in info.key_values]
        blob = json.dumps([[kv.key, kv.value] for kv in sealed])
        await self._write([(
            "INSERT INTO credential_infos VALUES (?,?,?) ON CONFLICT(credential_name) DO UPDATE SET "
            "provider_name=excluded.provider_name, key_values=excluded.key_values",
            (info.credential_name, info.provider_name, blob))])
        return CredentialInfo(info.credential_name, info.provider_name, sealed)

    async def get_credential(self, name: str, *, decrypt: bool = False) -> CredentialInfo | None:
        row = self._one("SELECT * FROM credential_infos WHERE credential_name=?", (name,))
        return self._credential(row, decrypt) if row else None

    async def list_credentials(self, provider: str = "") -> list[CredentialInfo]:
        rows = self._all("SELECT * FROM credential_infos" + _provider_filter(provider),
                               _provider_args(provider))
        return [self._credential(r, False) for r in rows]

    def _credential(self, row: tuple, decrypt: bool) -> CredentialInfo:
        kvs = [KeyValue(k, self.cipher.decrypt(v) if decrypt else v) for k, v in json.loads(row[2])]
        return CredentialInfo(row[0], row[1], kvs)

    async def delete_credential(self, name: str) -> bool:
        return await self._delete("credential_infos", "credential_name", name)

    # ---- regions ------------------------------------------------------------------------------

    async def put_region(self, info: RegionInfo) -> None:
        kvs = json.dumps([[kv.key, kv.value] for kv in info.key_values])
        zones = None if info.available_zones is None else json.dumps(info.available_zones)
        await self._write([(
            "INSERT INTO region_infos VALUES (?,?,?,?) ON CONFLICT(region_name) DO UPDATE SET "
            "provider_name=excluded.provider_name, key_values=excluded.key_values, "
            "available_zones=excluded.available_zones",
            (info.region_name, info.provider_name, kvs, zones))])

    async def get_region(self, name: str) -> RegionInfo | None:
        row = self._one("SELECT * FROM region_infos WHERE region_name=?", (name,))
        return _region(row) if row else None

    async def list_regions(self, provider: str = "") -> list[RegionInfo]:
        rows = self._all("SELECT * FROM region_infos" + _provider_filter(provider),
                               _provider_args(provider))
        return [_region(r) for r in rows]

    async def delete_region(self, name: str) -> bool:
        return await self._delete("region_infos", "region_name", name)

    # ---- connection configs -------------------------------------------------------------------

    async def put_connection(self, info: ConnectionConfigInfo) -> None:
        await self._write([(
            "INSERT INTO connection_config_infos VALUES (?,?,?,?,?) ON CONFLICT(config_name) DO UPDATE SET "
            "provider_name=excluded.provider_name, driver_name=excluded.driver_name, "
            "credential_name=excluded.credential_name, region_name=excluded.region_name",
            (info.config_name, info.provider_name, info.driver_name, info.credential_name,
             info.region_name))])

    async def get_connection(self, name: str) -> ConnectionConfigInfo | None:
        row = self._one("SELECT * FROM connection_config_infos WHERE config_name=?", (name,))
        return ConnectionConfigInfo(*row) if row else None

    async def list_connections(self, provider: str = "") -> list[ConnectionConfigInfo]:
        rows = self._all("SELECT * FROM connection_config_infos" + _provider_filter(provider),
                               _provider_args(provider))
        return [ConnectionConfigInfo(*r) for r in rows]

    async def delete_connection(self, name: str) -> bool:
        return await self._delete("connection_config_infos", "config_name", name)

    # ---- IIDs ---------------------------------------------------------------------------------

    async def insert_iids(self, rows: list[IIDRow], *, intent: str = "") -> None:
        """Insert every row or none; an existing key raises DuplicateRow. ``intent`` is closed in the
        same transaction, so a crash leaves either both (mapped, done) or neither (still open)."""
        now = datetime.now(timezone.utc).isoformat()
        stmts = [("INSERT INTO iid_infos (connection_name, resource_type, owner_vpc, name_id, system_id, zone_id, "
                  "created_at) VALUES (?,?,?,?,?,?,?)",
                  (r.connection, r.resource_type, r.owner_vpc, r.name, r.system_id, r.zone,
                   r.created_at or now)) for r in rows]
        stmts += _close_intent(intent)
        try:
            await self._write(stmts)
        except sqlite3.IntegrityError:
            names = ", ".join(f"{r.resource_type} '{r.name}'" for r in rows)
            raise DuplicateRow(f"already registered in the MetaDB: {names}") from None

    async def get_iid(self, connection: str, rtype: str, name: str, owner_vpc: str | None = None) -> IIDRow | None:
        """The row for ``name``; with ``owner_vpc`` None, in any VPC (first by owner)."""
        if owner_vpc is None:
            row = self._one(_SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                  "AND name_id=? ORDER BY owner_vpc LIMIT 1", (connection, rtype, name))
        else:
            row = self._one(_SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                  "AND name_id=? AND owner_vpc=?", (connection, rtype, name, owner_vpc))
        return IIDRow(*row) if row else None

    async def get_iids(self, connection: str, lookups: list[tuple[str, str, str | None]]) -> list[IIDRow | None]:
        """Several ``(type, name, owner_vpc|None)`` lookups in one trip to the DB thread."""
        def work() -> list[IIDRow | None]:
            out: list[IIDRow | None] = []
            for rtype, name, owner in lookups:
                if owner is None:
                    row = self._one(_SELECT_IID + " WHERE connection_name=? AND resource_type=? AND name_id=? "
                                    "ORDER BY owner_vpc LIMIT 1", (connection, rtype, name))
                else:
                    row = self._one(_SELECT_IID + " WHERE connection_name=? AND resource_type=? AND name_id=? "
                                    "AND owner_vpc=?", (connection, rtype, name, owner))
                out.append(IIDRow(*row) if row else None)
            return out
        return work()

    async def list_iids(self, connection: str, rtype: str, owner_vpc: str | None = None) -> list[IIDRow]:
        if owner_vpc is None:
            rows = self._all(_SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                   "ORDER BY name_id, owner_vpc", (connection, rtype))
        else:
            rows = self._all(_SELECT_IID + " INDEXED BY iid_by_owner WHERE connection_name=? AND "
                             "resource_type=? AND owner_vpc=? ORDER BY name_id", (connection, rtype, owner_vpc))
        return [IIDRow(*r) for r in rows]

    async def find_iid_by_csp_id(self, connection: str, rtype: str, csp_id: str) -> IIDRow | None:
        row = self._one(_SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                              "AND (system_id = ? OR system_id LIKE ? ESCAPE '\\') LIMIT 1",
                              (connection, rtype, csp_id, "%:" + _like_escape(csp_id)))
        return IIDRow(*row) if row else None

    async def delete_iids(self, keys: list[tuple[str, str, str, str]], *, intent: str = "") -> int:
        """Delete ``(connection, type, owner_vpc, name)`` rows in one transaction (closing ``intent``)."""
        counts = await self._write([(
            "DELETE FROM iid_infos WHERE connection_name=? AND resource_type=? AND owner_vpc=? AND name_id=?",
            k) for k in keys] + _close_intent(intent))
        return sum(counts[:len(keys)])

    async def delete_iid_with_children(self, connection: str, rtype: str, name: str, owner_vpc: str,
                                       child_type: str, *, intent: str = "") -> None:
        """Delete a row and every ``child_type`` row it owns (a VPC and its subnets), atomically."""
        await self._write([
            ("DELETE FROM iid_infos WHERE connection_name=? AND resource_type=? AND owner_vpc=? AND name_id=?",
             (connection, rtype, owner_vpc, name)),
            ("DELETE FROM iid_infos WHERE connection_name=? AND resource_type=? AND owner_vpc=?",
             (connection, child_type, name)),
        ] + _close_intent(intent))

    async def count_iids(self, rtype: str, connection: str = "") -> int:
        if connection:
            row = self._one("SELECT COUNT(*) FROM iid_infos WHERE resource_type=? AND "
                                  "connection_name=?", (rtype, connection))
        else:
            row = self._one("SELECT COUNT(*) FROM iid_infos WHERE resource_type=?", (rtype,))
        return int(row[0]) if row else 0

    # ---- intents -------------------------------------------------------------------------------

    async def open_intent(self, intent: IntentRow) -> None:
        """Record a create/delete before its cloud call; the caller awaits the commit first."""
        await self._write([(
            "INSERT INTO intents (id, job_id, op, connection_name, resource_type, owner_vpc, name_id, sp_uuid, "
            "system_id, detail, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (intent.id, intent.job_id, intent.op, intent.connection, intent.resource_type, intent.owner_vpc,
             intent.name, intent.sp_uuid, intent.system_id, json.dumps(intent.detail),
             intent.created_at or _now()))])

    async def close_intent(self, intent_id: str) -> None:
        await self._write(_close_intent(intent_id))

    def count_open_intents(self) -> int:
        row = self._one("SELECT COUNT(*) FROM intents")
        return int(row[0]) if row else 0

    async def list_intents(self) -> list[IntentRow]:
        rows = self._all("SELECT id, op, connection_name, resource_type, name_id, owner_vpc, sp_uuid, system_id, "
                         "detail, job_id, created_at FROM intents ORDER BY created_at, id")
        return [IntentRow(*r[:8], json.loads(r[8] or "{}"), *r[9:]) for r in rows]  # type: ignore[misc]

    # ---- jobs ---------------------------------------------------------------------------------

    async def put_job(self, job: JobRow) -> None:
        await self._write([("INSERT INTO jobs (id, operation, resource, name, connection_name, status, origin, "
                            "request, result, error, created_at, started_at, finished_at) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _job_params(job))])

    async def update_job(self, job: JobRow) -> None:
        """Write a job's status, result, error and times (the request never changes)."""
        await self._write([("UPDATE jobs SET status=?, result=?, error=?, started_at=?, finished_at=? WHERE id=?",
                            (job.status, _dump(job.result), job.error, job.started_at, job.finished_at,
                             job.id))])

    async def set_job_status(self, job_id: str, status: str, *, only_if: str) -> bool:
        """Change a job's status only if it still has ``only_if`` (cancelling a queued job)."""
        counts = await self._write([("UPDATE jobs SET status=?, finished_at=? WHERE id=? AND status=?",
                                     (status, _now(), job_id, only_if))])
        return counts[0] > 0

    async def get_job(self, job_id: str) -> JobRow | None:
        row = self._one(_SELECT_JOB + " WHERE id=?", (job_id,))
        return _job(row) if row else None

    async def list_jobs(self, *, connection: str = "", statuses: tuple[str, ...] = (),
                        limit: int = 1000) -> list[JobRow]:
        """Jobs newest first, filtered by connection and status."""
        where, params = [], []
        if connection:
            where.append("connection_name=?")
            params.append(connection)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        sql = _SELECT_JOB + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        return [_job(r) for r in self._all(sql, (*params, limit))]

    async def count_jobs(self, status: str) -> int:
        row = self._one("SELECT COUNT(*) FROM jobs WHERE status=?", (status,))
        return int(row[0]) if row else 0

    async def prune_jobs(self, before_iso: str) -> int:
        """Forget finished jobs older than ``before_iso``."""
        counts = await self._write([("DELETE FROM jobs WHERE status IN ('done','failed','cancelled') "
                                     "AND finished_at < ?", (before_iso,))])
        return counts[0]

    # ---- VM image+spec favourites and recents ------------------------------------------------------

    async def put_imagespec(self, kind: str, key: tuple[str, str, str, str, str], record: dict, *,
                            only_new: bool = False) -> bool:
        """Store one record under ``(csp, region, zone, image, spec)``; ``only_new`` keeps an existing one
        (answers False then)."""
        verb = "INSERT OR IGNORE" if only_new else "INSERT OR REPLACE"
        counts = await self._write([(f"{verb} INTO vm_imagespec_infos (kind, csp, region, zone, image_name, "
                                     "spec_name, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (kind, *key, json.dumps(record)))])
        return counts[0] > 0

    async def get_imagespec(self, kind: str, key: tuple[str, str, str, str, str]) -> dict | None:
        row = self._one("SELECT record FROM vm_imagespec_infos WHERE kind=? AND csp=? AND region=? AND zone=? "
                        "AND image_name=? AND spec_name=?", (kind, *key))
        return json.loads(row[0]) if row else None

    async def list_imagespec(self, kind: str) -> list[dict]:
        return [json.loads(r[0]) for r in self._all("SELECT record FROM vm_imagespec_infos WHERE kind=?", (kind,))]

    async def delete_imagespec(self, kind: str, key: tuple[str, str, str, str, str]) -> bool:
        counts = await self._write([("DELETE FROM vm_imagespec_infos WHERE kind=? AND csp=? AND region=? AND zone=? "
                                     "AND image_name=? AND spec_name=?", (kind, *key))])
        return counts[0] > 0

    async def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table (tests compare before/after a failed call)."""
        def work() -> dict[str, list[tuple]]:
            tables = ["cloud_driver_infos", "credential_infos", "region_infos", "connection_config_infos",
                      "iid_infos", "vm_imagespec_infos"]
            return {t: sorted(self._read().execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
        return work()

    # ---- small helpers ------------------------------------------------------------------------

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise SpiderError("MetaDB is not open")
        return self._reader

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self._read().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._read().execute(sql, params).fetchall()

    async def _delete(self, table: str, key: str, value: str) -> bool:
        counts = await self._write([(f"DELETE FROM {table} WHERE {key}=?", (value,))])
        return counts[0] > 0


_SELECT_JOB = ("SELECT id, operation, resource, name, connection_name, status, origin, request, result, error, "
               "created_at, started_at, finished_at FROM jobs")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _job_params(job: JobRow) -> tuple:
    return (job.id, job.operation, job.resource, job.name, job.connection, job.status, job.origin,
            json.dumps(job.request), _dump(job.result), job.error, job.created_at or _now(), job.started_at,
            job.finished_at)


def _job(row: tuple) -> JobRow:
    return JobRow(*row[:7], json.loads(row[7]), None if row[8] is None else json.loads(row[8]),  # type: ignore[misc]
                  *row[9:])


def _close_intent(intent_id: str) -> list[tuple[str, tuple]]:
    return [("DELETE FROM intents WHERE id=?", (intent_id,))] if intent_id else []


_SELECT_IID = ("SELECT connection_name, resource_type, name_id, system_id, owner_vpc, zone_id, created_at "
               "FROM iid_infos")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _provider_filter(provider: str) -> str:
    return " WHERE upper(provider_name)=upper(?) ORDER BY 1" if provider else " ORDER BY 1"


def _provider_args(provider: str) -> tuple:
    return (provider,) if provider else ()


def _region(row: tuple) -> RegionInfo:
    kvs = [KeyValue(k, v) for k, v in json.loads(row[2])]
    zones = None if row[3] is None else json.loads(row[3])
    return RegionInfo(row[0], row[1], kvs, zones)

