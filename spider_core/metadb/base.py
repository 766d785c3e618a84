"""What every MetaDB engine offers, written once: the rows, the queries, credential sealing.

An engine (``sqlite``, ``postgres``) supplies four primitives: ``_write`` (statements applied
atomically, returning rowcounts), ``_one`` and ``_all`` (reads), ``_is_duplicate`` (does an error
mean a primary key was taken); plus ``open``/``close``/``ping``. The SQL here uses ``?`` parameters
and the schema of ``migrations``; the PostgreSQL engine numbers the parameters itself.

``owner`` on intents and jobs names the replica whose cloud calls they stand for. With one server
per database (SQLite) it does not filter anything; on a shared database (PostgreSQL) a replica
reconciles and resumes only its own, and claims a dead replica's (``spider_core.replicas``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spider_core.errors import SpiderError
from spider_core.model import ConnectionConfigInfo, CredentialInfo, DriverInfo, KeyValue, RegionInfo
from spider_core.secrets import CredentialCipher


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


TABLES = ("cloud_driver_infos", "credential_infos", "region_infos", "connection_config_infos", "iid_infos",
          "vm_imagespec_infos")


class MetaStore:
    """The MetaDB API; engines subclass it. ``replica`` is this server's id (owner of its intents/jobs)."""

    engine = "?"
    shared = False          # True when several servers use the same database (owner filters apply)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cipher = CredentialCipher.for_root(root)
        self.replica = ""
        self.on_connection_info_changed: list[Any] = []   # callbacks when another replica changed it

    # ---- engine primitives ---------------------------------------------------------------------

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def ping(self) -> None:
        """A real round trip to the database (health checks)."""
        raise NotImplementedError

    async def _write(self, statements: list[tuple[str, tuple]]) -> list[int]:
        raise NotImplementedError

    async def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        raise NotImplementedError

    async def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def _is_duplicate(self, exc: BaseException) -> bool:
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the data lives, for the start banner (a path or ``postgresql://user@host:port/db``)."""
        raise NotImplementedError

    def _connection_info_write(self) -> list[tuple[str, tuple]]:
        """Statements added to a connection-info change (PostgreSQL tells the other replicas)."""
        return []

    # ---- drivers -----------------------------------------------------------------------------

    async def put_driver(self, info: DriverInfo) -> None:
        await self._write([(
            "INSERT INTO cloud_driver_infos VALUES (?,?,?) ON CONFLICT(driver_name) DO UPDATE SET "
            "provider_name=excluded.provider_name, driver_lib_file_name=excluded.driver_lib_file_name",
            (info.driver_name, info.provider_name, info.driver_lib_file_name))] + self._connection_info_write())

    async def get_driver(self, name: str) -> DriverInfo | None:
        row = await self._one("SELECT * FROM cloud_driver_infos WHERE driver_name=?", (name,))
        return DriverInfo(*row) if row else None

    async def list_drivers(self, provider: str = "") -> list[DriverInfo]:
        rows = await self._all("SELECT * FROM cloud_driver_infos" + _provider_filter(provider), _provider_args(provider))
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
            (info.credential_name, info.provider_name, blob))] + self._connection_info_write())
        return CredentialInfo(info.credential_name, info.provider_name, sealed)

    async def get_credential(self, name: str, *, decrypt: bool = False) -> CredentialInfo | None:
        row = await self._one("SELECT * FROM credential_infos WHERE credential_name=?", (name,))
        return self._credential(row, decrypt) if row else None

    async def list_credentials(self, provider: str = "") -> list[CredentialInfo]:
        rows = await self._all("SELECT * FROM credential_infos" + _provider_filter(provider), _provider_args(provider))
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
            (info.region_name, info.provider_name, kvs, zones))] + self._connection_info_write())

    async def get_region(self, name: str) -> RegionInfo | None:
        row = await self._one("SELECT * FROM region_infos WHERE region_name=?", (name,))
        return _region(row) if row else None

    async def list_regions(self, provider: str = "") -> list[RegionInfo]:
        rows = await self._all("SELECT * FROM region_infos" + _provider_filter(provider), _provider_args(provider))
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
             info.region_name))] + self._connection_info_write())

    async def get_connection(self, name: str) -> ConnectionConfigInfo | None:
        row = await self._one("SELECT * FROM connection_config_infos WHERE config_name=?", (name,))
        return ConnectionConfigInfo(*row) if row else None

    async def list_connections(self, provider: str = "") -> list[ConnectionConfigInfo]:
        rows = await self._all("SELECT * FROM connection_config_infos" + _provider_filter(provider),
                               _provider_args(provider))
        return [ConnectionConfigInfo(*r) for r in rows]

    async def delete_connection(self, name: str) -> bool:
        return await self._delete("connection_config_infos", "config_name", name)

    # ---- IIDs ---------------------------------------------------------------------------------

    async def insert_iids(self, rows: list[IIDRow], *, intent: str = "") -> None:
        """Insert every row or none; an existing key raises DuplicateRow. ``intent`` is closed in the
        same transaction, so a crash leaves either both (mapped, done) or neither (still open)."""
        now = now_iso()
        stmts = [("INSERT INTO iid_infos (connection_name, resource_type, owner_vpc, name_id, system_id, zone_id, "
                  "created_at) VALUES (?,?,?,?,?,?,?)",
                  (r.connection, r.resource_type, r.owner_vpc, r.name, r.system_id, r.zone,
                   r.created_at or now)) for r in rows]
        stmts += _close_intent(intent)
        try:
            await self._write(stmts)
        except Exception as exc:
            if not self._is_duplicate(exc):
                raise
            raise duplicate(rows) from None

    async def get_iid(self, connection: str, rtype: str, name: str, owner_vpc: str | None = None) -> IIDRow | None:
        """The row for ``name``; with ``owner_vpc`` None, in any VPC (first by owner)."""
        if owner_vpc is None:
            row = await self._one(SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                  "AND name_id=? ORDER BY owner_vpc LIMIT 1", (connection, rtype, name))
        else:
            row = await self._one(SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                  "AND name_id=? AND owner_vpc=?", (connection, rtype, name, owner_vpc))
        return IIDRow(*row) if row else None

    async def get_iids(self, connection: str, lookups: list[tuple[str, str, str | None]]) -> list[IIDRow | None]:
        """Several ``(type, name, owner_vpc|None)`` lookups."""
        return [await self.get_iid(connection, rtype, name, owner) for rtype, name, owner in lookups]

    async def list_iids(self, connection: str, rtype: str, owner_vpc: str | None = None) -> list[IIDRow]:
        if owner_vpc is None:
            rows = await self._all(SELECT_IID + " WHERE connection_name=? AND resource_type=? "
                                   "ORDER BY name_id, owner_vpc", (connection, rtype))
        else:
            rows = await self._all(SELECT_IID + self._by_owner_hint + " WHERE connection_name=? AND "
                                   "resource_type=? AND owner_vpc=? ORDER BY name_id", (connection, rtype, owner_vpc))
        return [IIDRow(*r) for r in rows]

    _by_owner_hint = ""  # SQLite names the index its planner would otherwise skip

    async def find_iid_by_csp_id(self, connection: str, rtype: str, csp_id: str) -> IIDRow | None:
        row = await self._one(SELECT_IID + " WHERE connection_name=? AND resource_type=? "
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
            row = await self._one("SELECT COUNT(*) FROM iid_infos WHERE resource_type=? AND connection_name=?",
                                  (rtype, connection))
        else:
            row = await self._one("SELECT COUNT(*) FROM iid_infos WHERE resource_type=?", (rtype,))
        return int(row[0]) if row else 0

    # ---- intents -------------------------------------------------------------------------------

    async def open_intent(self, intent: IntentRow) -> None:
        """Record a create/delete before its cloud call; the caller awaits the commit first."""
        await self._write([(INSERT_INTENT + " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self._intent_params(intent))])

    def _intent_params(self, intent: IntentRow) -> tuple:
        return (intent.id, intent.job_id, intent.op, intent.connection, intent.resource_type, intent.owner_vpc,
                intent.name, intent.sp_uuid, intent.system_id, json.dumps(intent.detail),
                intent.created_at or now_iso(), self.replica)

    async def open_intent_unless_mapped(self, intent: IntentRow, owner_vpc: str | None = None) -> IIDRow | None:
        """A create's check and its intent, under the caller's lock: the IID row already mapped under
        the intent's name (``get_iid``'s ``owner_vpc``: None = in any VPC), or None once the intent is
        committed. A shared database does both in one round trip."""
        row = await self.get_iid(intent.connection, intent.resource_type, intent.name, owner_vpc)
        if row is None:
            await self.open_intent(intent)
        return row

    async def close_intent(self, intent_id: str) -> None:
        await self._write(_close_intent(intent_id))

    async def count_open_intents(self) -> int:
        """Open intents of this server (all of them on a database of its own)."""
        where, params = self._mine()
        row = await self._one("SELECT COUNT(*) FROM intents" + where, params)
        return int(row[0]) if row else 0

    async def list_intents(self, ids: list[str] | None = None) -> list[IntentRow]:
        """This server's open intents, oldest first; ``ids``: only those."""
        where, params = self._mine()
        if ids is not None:
            if not ids:
                return []
            where += (" AND " if where else " WHERE ") + f"id IN ({','.join('?' * len(ids))})"
            params = (*params, *ids)
        rows = await self._all("SELECT id, op, connection_name, resource_type, name_id, owner_vpc, sp_uuid, "
                               "system_id, detail, job_id, created_at FROM intents" + where +
                               " ORDER BY created_at, id", params)
        return [IntentRow(*r[:8], json.loads(r[8] or "{}"), *r[9:]) for r in rows]  # type: ignore[misc]

    def _mine(self) -> tuple[str, tuple]:
        return (" WHERE owner=?", (self.replica,)) if self.shared else ("", ())

    # ---- jobs ---------------------------------------------------------------------------------

    async def put_job(self, job: JobRow) -> None:
        await self._write([("INSERT INTO jobs (id, operation, resource, name, connection_name, status, origin, "
                            "request, result, error, created_at, started_at, finished_at, owner) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (*_job_params(job), self.replica))])

    async def update_job(self, job: JobRow) -> None:
        """Write a job's status, result, error and times (the request never changes)."""
        await self._write([("UPDATE jobs SET status=?, result=?, error=?, started_at=?, finished_at=? WHERE id=?",
                            (job.status, _dump(job.result), job.error, job.started_at, job.finished_at,
                             job.id))])

    async def set_job_status(self, job_id: str, status: str, *, only_if: str) -> bool:
        """Change a job's status only if it still has ``only_if`` (cancelling a queued job)."""
        counts = await self._write([("UPDATE jobs SET status=?, finished_at=? WHERE id=? AND status=?",
                                     (status, now_iso(), job_id, only_if))])
        return counts[0] > 0

    async def get_job(self, job_id: str) -> JobRow | None:
        row = await self._one(_SELECT_JOB + " WHERE id=?", (job_id,))
        return _job(row) if row else None

    async def list_jobs(self, *, connection: str = "", statuses: tuple[str, ...] = (), limit: int = 1000,
                        mine: bool = False, ids: list[str] | None = None) -> list[JobRow]:
        """Jobs newest first, filtered by connection and status; ``mine``: this server's only."""
        where: list[str] = []
        params: list[Any] = []
        if connection:
            where.append("connection_name=?")
            params.append(connection)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        if mine and self.shared:
            where.append("owner=?")
            params.append(self.replica)
        if ids is not None:
            if not ids:
                return []
            where.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        sql = _SELECT_JOB + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        return [_job(r) for r in await self._all(sql, (*params, limit))]

    async def count_jobs(self, status: str) -> int:
        row = await self._one("SELECT COUNT(*) FROM jobs WHERE status=?", (status,))
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
        action = "NOTHING" if only_new else "UPDATE SET record=excluded.record"
        counts = await self._write([("INSERT INTO vm_imagespec_infos (kind, csp, region, zone, image_name, spec_name, "
                                     "record) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, csp, region, zone, "
                                     f"image_name, spec_name) DO {action}", (kind, *key, json.dumps(record)))])
        return counts[0] > 0

    async def get_imagespec(self, kind: str, key: tuple[str, str, str, str, str]) -> dict | None:
        row = await self._one("SELECT record FROM vm_imagespec_infos WHERE kind=? AND csp=? AND region=? AND zone=? "
                              "AND image_name=? AND spec_name=?", (kind, *key))
        return json.loads(row[0]) if row else None

    async def list_imagespec(self, kind: str) -> list[dict]:
        return [json.loads(r[0]) for r in await self._all("SELECT record FROM vm_imagespec_infos WHERE kind=?",
                                                          (kind,))]

    async def delete_imagespec(self, kind: str, key: tuple[str, str, str, str, str]) -> bool:
        counts = await self._write([("DELETE FROM vm_imagespec_infos WHERE kind=? AND csp=? AND region=? AND zone=? "
                                     "AND image_name=? AND spec_name=?", (kind, *key))])
        return counts[0] > 0

    async def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table (tests compare before/after a failed call)."""
        return {t: sorted(tuple(r) for r in await self._all(f"SELECT * FROM {t}")) for t in TABLES}

    # ---- small helpers ------------------------------------------------------------------------

    async def _delete(self, table: str, key: str, value: str) -> bool:
        counts = await self._write([(f"DELETE FROM {table} WHERE {key}=?", (value,))] +
                                   (self._connection_info_write() if table != "iid_infos" else []))
        return counts[0] > 0


_SELECT_JOB = ("SELECT id, operation, resource, name, connection_name, status, origin, request, result, error, "
               "created_at, started_at, finished_at FROM jobs")
INSERT_INTENT = ("INSERT INTO intents (id, job_id, op, connection_name, resource_type, owner_vpc, name_id, sp_uuid, "
                  "system_id, detail, created_at, owner)")
SELECT_IID = ("SELECT connection_name, resource_type, name_id, system_id, owner_vpc, zone_id, created_at "
               "FROM iid_infos")


def deliver(futures: list[Any], outcomes: list[Any]) -> None:
    """Hand each grouped call its outcome (an exception instance: that call failed); a caller that gave
    up meanwhile is skipped."""
    for fut, outcome in zip(futures, outcomes):
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def duplicate(rows: list[IIDRow]) -> DuplicateRow:
    names = ", ".join(f"{r.resource_type} '{r.name}'" for r in rows)
    return DuplicateRow(f"already registered in the MetaDB: {names}")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _job_params(job: JobRow) -> tuple:
    return (job.id, job.operation, job.resource, job.name, job.connection, job.status, job.origin,
            json.dumps(job.request), _dump(job.result), job.error, job.created_at or now_iso(), job.started_at,
            job.finished_at)


def _job(row: tuple) -> JobRow:
    return JobRow(*row[:7], json.loads(row[7]), None if row[8] is None else json.loads(row[8]),  # type: ignore[misc]
                  *row[9:])


def _close_intent(intent_id: str) -> list[tuple[str, tuple]]:
    return [("DELETE FROM intents WHERE id=?", (intent_id,))] if intent_id else []


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
