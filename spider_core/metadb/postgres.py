"""The PostgreSQL MetaDB engine: one database shared by every Spider replica (asyncpg).

Selected by CB-Spider's variables ``SPIDER_METADB_ENDPOINT`` (host:port), ``SPIDER_METADB_USER``,
``SPIDER_METADB_PASSWORD`` and ``SPIDER_METADB_DATABASE`` (``spider_core.metadb.from_env``).

* A bounded pool (``SPIDER_METADB_POOL``, default 16 sessions) serves the reads and writes; each write
  is one statement (several become one with data-modifying WITH clauses): one round trip, atomic.
  Nothing holds a session across a cloud call: the sponge lock is rows in ``splocks`` taken and
  given back by server-side functions in one round trip each (``spider_core.cluster_lock``), so 500
  long cloud calls in flight need no more sessions than 5.
* A create's hot steps are server-side functions too, and what concurrent requests have waiting goes
  in one round trip (``Grouped``, ``spider_steps``): locks given back, IID rows with their intents'
  close (``spider_store_iids``), locks with their duplicate checks and intents
  (``spider_lock_open_intents``). That stream keeps a session of its own (``HeldSession``).
* One more session listens (LISTEN) for what other replicas announce: a lock given back that a local
  request waits for (``spider_splock``), connection information changed (``spider_conninfo``).
* Migrations run at open inside one transaction under an advisory lock, so replicas starting together
  apply each one once.
* Credential values are sealed with the installation key (``secret.key``) before they are sent: the
  database never sees them in clear. Every replica needs the same key file.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from spider_core.cluster_lock import DEFERRED, settle_deferred
from spider_core.errors import SpiderError
from spider_core.metadb import migrations
from spider_core.metadb.base import (INSERT_INTENT, SELECT_IID, IIDRow, IntentRow, MetaStore, deliver, duplicate,
                                     now_iso)

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x5350494445524442  # "SPIDERDB": the advisory lock migrations run under
NOTIFY_SPLOCK = "spider_splock"
NOTIFY_CONNINFO = "spider_conninfo"
_PARAM = re.compile(r"\?")
GROUP_LIMIT = 50   # calls per grouped round trip


class Grouped:
    """Calls of concurrent requests that go to the database together, as SQLite's writer groups its
    commits: the calls that arrive while one round trip is out go in the next (two out at once
    measured no better on 2 cores, with more round trips). ``together(calls)``, a lone call's too,
    answers each call's outcome in order (an exception instance: that call fails); if it raises for a
    group, each call goes ``alone``, so one call's bad value never fails its neighbours. A caller
    cancelled while its call is out waits for that round trip to end first: what it wrote is then
    known to be written (a lock it took is given back after, not before)."""

    def __init__(self, name: str, together: Callable[[list[Any]], Awaitable[list[Any]]],
                 alone: Callable[[Any], Awaitable[Any]]) -> None:
        self.name = name
        self._together = together
        self._alone = alone
        self._queue: list[tuple[Any, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def __call__(self, call: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.append((call, fut))
        # done() turns true the moment _run returns (its done callbacks run later): a call queued after
        # _run saw an empty queue always starts a new one
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name=self.name)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if not fut.done():
                await asyncio.wait([fut])
            raise

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:GROUP_LIMIT], self._queue[GROUP_LIMIT:]
            futures = [fut for _, fut in batch]
            try:
                deliver(futures, await self._outcomes([call for call, _ in batch]))
            except BaseException:  # this task itself was cancelled (shutdown): no call waits forever
                for fut in futures + [fut for _, fut in self._queue]:
                    fut.cancel()
                self._queue = []
                raise

    async def _outcomes(self, calls: list[Any]) -> list[Any]:
        try:
            outcomes = await self._together(calls)
            if len(outcomes) == len(calls):
                return outcomes
            log.error("%s: %d answers for a group of %d; each call alone", self.name, len(outcomes), len(calls))
        except Exception as exc:  # noqa: BLE001 - each call again alone: only a bad one fails
            if len(calls) == 1:
                return [exc]
            log.debug("%s: a group of %d failed (%s); each call alone", self.name, len(calls), exc)
        return [await self._alone_outcome(call) for call in calls]

    async def _alone_outcome(self, call: Any) -> Any:
        try:
            return await self._alone(call)
        except Exception as exc:  # noqa: BLE001 - handed to that call's caller
            return exc


class HeldSession:
    """A session of its own for a stream of round trips that never overlap (a ``Grouped`` stream),
    kept between them. A session taken from asyncpg's pool and given back each time costs the client
    more CPU than a short query (the release runs as a shielded task): ``SELECT 1`` measured 0.31 ms
    of client CPU through the pool against 0.06 ms on a kept session, on uvloop. A session that
    breaks or is interrupted is dropped and the next call opens a fresh one; a statement's own error
    leaves it in use."""

    def __init__(self, connect: Callable[[], Awaitable[Any]]) -> None:
        self._connect = connect
        self._conn: Any = None
        self._mutex = asyncio.Lock()   # the streams never overlap; this makes sure of it

    async def call(self, method: str, sql: str, *args: Any) -> Any:
        import asyncpg
        async with self._mutex:
            if self._conn is not None and self._conn.is_closed():   # ended while idle, and known
                self._conn = None
            if self._conn is None:
                self._conn = await self._connect()
            try:
                return await getattr(self._conn, method)(sql, *args)
            except asyncpg.PostgresError as exc:
                # the server ended the session (restart, pg_terminate_backend) or it is gone
                if self._conn.is_closed() or isinstance(exc, (asyncpg.PostgresConnectionError,
                                                              asyncpg.exceptions.OperatorInterventionError)):
                    self._drop()
                raise
            except BaseException:     # the session broke, or the call was cancelled halfway
                self._drop()
                raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()          # no round trip: a broken or interrupted session is not reused

    async def close(self) -> None:
        async with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except Exception:  # noqa: BLE001 - closing anyway
                    conn.terminate()


@dataclass(frozen=True)
class PostgresSettings:
    """Where the shared MetaDB is (CB-Spider's four variables) and how many sessions to use."""

    host: str
    port: int
    user: str
    password: str
    database: str
    pool_size: int = 16

    @property
    def location(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def numbered(sql: str) -> str:
    """``?`` parameters as PostgreSQL's ``$1, $2, ...``."""
    counter = itertools.count(1)
    return _PARAM.sub(lambda _m: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdecimal() else 0


class PostgresMetaDB(MetaStore):
    engine = "postgres"
    shared = True

    def __init__(self, root: Path, settings: PostgresSettings) -> None:
        super().__init__(root)
        self.settings = settings
        self.pool: Any = None
        self._listener: Any = None
        self._sql: dict[str, str] = {}
        self._closed = False
        self.on_splock_released: list[Callable[[str], None]] = []   # payload: released keys, '' = any
        # Calls of concurrent requests that go to the database together (see Grouped)
        self._steps_session = HeldSession(self._session)
        self.steps = Grouped("metadb-steps", self._steps_together, self._step_alone)

    @property
    def location(self) -> str:
        return self.settings.location

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        import asyncpg
        s = self.settings
        try:
            self.pool = await asyncpg.create_pool(host=s.host, port=s.port, user=s.user, password=s.password,
                                                  database=s.database, min_size=1, max_size=s.pool_size,
                                                  command_timeout=60, reset=_keep_session)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            raise SpiderError(f"MetaDB {s.location} is not reachable: {exc}") from None
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await _migrate(conn)
        await self._listen()

    async def _session(self) -> Any:
        """A session outside the pool (the LISTEN session, the grouped steps' session)."""
        import asyncpg
        if self._closed:
            raise SpiderError("MetaDB is closed")
        s = self.settings
        return await asyncpg.connect(host=s.host, port=s.port, user=s.user, password=s.password,
                                     database=s.database, command_timeout=60)

    async def _listen(self) -> None:
        self._listener = await self._session()
        await self._listener.add_listener(NOTIFY_SPLOCK, self._splock_released)
        await self._listener.add_listener(NOTIFY_CONNINFO, self._conninfo_changed)

    async def ensure_listening(self) -> None:
        """Reconnect the LISTEN session if it was lost (called by the heartbeat)."""
        if self._closed or (self._listener is not None and not self._listener.is_closed()):
            return
        await self._listen()
        self._splock_released(None, 0, NOTIFY_SPLOCK, "")  # anything given back meanwhile: waiters look again

    def _splock_released(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for callback in list(self.on_splock_released):
            callback(payload)

    def _conninfo_changed(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.replica:
            for callback in list(self.on_connection_info_changed):
                callback()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            try:
                await self._listener.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        await self._steps_session.close()
        if self.pool is not None:
            await self.pool.close()

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    # ---- primitives ----------------------------------------------------------------------------

    def _text(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = numbered(sql)
        return text

    def _pool(self) -> Any:
        if self._closed or self.pool is None:
            raise SpiderError("MetaDB is closed")
        return self.pool

    def _is_duplicate(self, exc: BaseException) -> bool:
        import asyncpg
        return isinstance(exc, asyncpg.UniqueViolationError)

    async def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        await settle_deferred()
        row = await self._pool().fetchrow(self._text(sql), *params)
        return tuple(row) if row is not None else None

    async def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        await settle_deferred()
        return [tuple(r) for r in await self._pool().fetch(self._text(sql), *params)]

    async def _write(self, statements: list[tuple[str, tuple]]) -> list[int]:
        """One round trip: several statements become one (data-modifying WITH clauses), which
        PostgreSQL runs atomically; the answer is each one's row count."""
        await settle_deferred()
        if len(statements) == 1:
            sql, params = statements[0]
            return [_rowcount(await self._pool().execute(self._text(sql), *params))]
        sql = self._combined(tuple(s for s, _ in statements))
        row = await self._pool().fetchrow(sql, *(p for _, params in statements for p in params))
        return [int(v) for v in row]

    def _combined(self, texts: tuple[str, ...]) -> str:
        key = "\x00".join(texts)
        found = self._sql.get(key)
        if found is None:
            parts = [f"s{i} AS ({t}{'' if t.lstrip().upper().startswith('SELECT') else ' RETURNING 1'})"
                     for i, t in enumerate(texts)]
            counts = ", ".join(f"(SELECT count(*) FROM s{i})" for i in range(len(texts)))
            found = self._sql[key] = numbered("WITH " + ", ".join(parts) + " SELECT " + counts)
        return found

    async def open_intent_unless_mapped(self, intent: IntentRow, owner_vpc: str | None = None) -> IIDRow | None:
        """The check and the intent in one statement: the INSERT runs only when the lookup finds nothing
        (the caller's lock keeps the name from changing meanwhile). When the request's cluster locks
        are still deferred, they are taken in the same round trip (``spider_lock_open_intent``)."""
        deferred = DEFERRED.get()
        if deferred is not None and not deferred.holder:
            params = self._intent_params(intent)
            took, found = await deferred.take(lambda holder, keys: self.steps(
                LockStep(holder, keys, deferred.request, deferred.lock.lease, owner_vpc, params)))
            if took:
                return found
        row = await self._one(_OPEN_UNLESS_MAPPED[owner_vpc is not None],
                              (intent.connection, intent.resource_type, intent.name,
                               *(() if owner_vpc is None else (owner_vpc,)), *self._intent_params(intent)))
        return IIDRow(*row) if row else None

    async def insert_iids(self, rows: list[IIDRow], *, intent: str = "") -> None:
        """``MetaStore.insert_iids``, grouped: the calls that arrive while one round trip is out go
        together in the next (``spider_store_iids``: a duplicate fails only its own call), as the
        SQLite engine groups its commits."""
        await settle_deferred()
        await self.steps(Store(rows, intent))

    async def release_locks(self, holders: list[str]) -> None:
        """Cluster locks given back (``spider_unlock``), in the stream's next round trip."""
        await self.steps(Release(holders))

    async def _step_alone(self, step: "Release | Store | LockStep") -> Any:
        if isinstance(step, Release):
            return await self.fetchval("SELECT spider_unlock(?)", step.holders)
        if isinstance(step, Store):
            return await MetaStore.insert_iids(self, step.rows, intent=step.intent)
        return await ClusterStore(self).lock_open_intent(step.holder, step.keys, step.request, step.lease,
                                                         step.owner_vpc, step.intent)

    async def _steps_together(self, steps: list["Release | Store | LockStep"]) -> list[Any]:
        """``spider_steps``: every waiting step in one round trip; each step's own answer, in order."""
        stores = [step for step in steps if isinstance(step, Store)]
        locks = [step for step in steps if isinstance(step, LockStep)]
        row = await self._steps_session.call("fetchrow", "SELECT * FROM spider_steps($1, $2, $3)", self.replica,
                                             min((step.lease for step in locks), default=0.0),
                                             _steps_document(steps, stores, locks))
        codes = iter(row["store_codes"] or ())
        granted = iter(zip(*(row[c] or () for c in ("granted", "hit_system_ids", "hit_owner_vpcs", "hit_zone_ids",
                                                     "hit_created"))))
        out: list[Any] = []
        for step in steps:
            if isinstance(step, Release):
                out.append(None)
            elif isinstance(step, Store):
                out.append(None if next(codes) == "" else duplicate(step.rows))
            else:
                out.append(_lock_answer(next(granted), step.intent))
        return out

    def _connection_info_write(self) -> list[tuple[str, tuple]]:
        return [("SELECT pg_notify('" + NOTIFY_CONNINFO + "', ?)", (self.replica,))]

    async def fetchval(self, sql: str, *params: Any) -> Any:
        """One value (the cluster lock and the replica registry use this)."""
        return await self._pool().fetchval(self._text(sql), *params)

    async def fetch(self, sql: str, *params: Any) -> list[tuple]:
        return [tuple(r) for r in await self._pool().fetch(self._text(sql), *params)]

    async def transaction(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        """Several statements in one transaction, each one's rows returned (claiming a dead replica)."""
        async with self._pool().acquire() as conn:
            async with conn.transaction():
                return [[tuple(r) for r in await conn.fetch(self._text(sql), *params)] for sql, params in statements]


@dataclass(frozen=True)
class Release:
    """Cluster locks given back (holder ids)."""

    holders: list[str]


@dataclass(frozen=True)
class Store:
    """One create's IID rows, with its intent (closed in the same transaction; '' = none)."""

    rows: list[IIDRow]
    intent: str


@dataclass(frozen=True)
class LockStep:
    """One create's cluster locks, duplicate check and intent (``intent``: ``_intent_params``)."""

    holder: str
    keys: list[tuple[str, str, str, bool]]
    request: str
    lease: float
    owner_vpc: str | None
    intent: tuple


def _steps_document(steps: list[Any], stores: list[Store], locks: list[LockStep]) -> str:
    """``spider_steps``'s JSON document (its layout is described in migration 10). One text parameter:
    asyncpg type-checks every element of an array parameter, which cost the replica more CPU than
    the rest of the round trip."""
    now = now_iso()
    return json.dumps({
        "release": [h for step in steps if isinstance(step, Release) for h in step.holders],
        "store": [[g, r.connection, r.resource_type, r.owner_vpc, r.name, r.system_id, r.zone, r.created_at or now]
                  for g, store in enumerate(stores, 1) for r in store.rows],
        "store_intents": [store.intent for store in stores],
        "keys": [[g, *key[:3], int(key[3])] for g, step in enumerate(locks, 1) for key in step.keys],
        "locks": [[step.holder, step.request, step.owner_vpc, *step.intent[:11]] for step in locks],
    }, separators=(",", ":"))


def _lock_answer(row: Any, intent: tuple) -> tuple[bool, IIDRow | None]:
    """(locks taken, the IID row found under the intent's name) from a lock-and-intent answer:
    (locked, found system id, owner VPC, zone, created at)."""
    locked, system_id, owner_vpc, zone, created_at = tuple(row)
    if not locked:
        return False, None
    if system_id is None:
        return True, None
    _, _, _, conn, rtype, _, name = intent[:7]
    return True, IIDRow(conn, rtype, name, system_id, owner_vpc, zone, created_at)


def _open_unless_mapped(by_owner: bool) -> str:
    where = " AND owner_vpc=?" if by_owner else ""
    return (f"WITH found AS ({SELECT_IID} WHERE connection_name=? AND resource_type=? AND name_id=?{where} "
            f"ORDER BY owner_vpc LIMIT 1), opened AS ({INSERT_INTENT} SELECT ?,?,?,?,?,?,?,?,?,?,?,? "
            "WHERE NOT EXISTS (SELECT 1 FROM found)) SELECT * FROM found")


_OPEN_UNLESS_MAPPED = {False: _open_unless_mapped(False), True: _open_unless_mapped(True)}


async def _keep_session(_conn: Any) -> None:
    """The pool's reset between uses: nothing to undo (pooled sessions never LISTEN, SET or keep session
    advisory locks), so no extra round trip on every release."""


async def _migrate(conn: Any) -> None:
    await conn.execute(migrations.VERSION_TABLE)
    applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    for migration in migrations.pending(applied):
        for sql in migrations.statements(migration, "postgres"):
            await conn.execute(sql)
        await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3)", migration.version,
                           migration.description, datetime.now(timezone.utc).isoformat())
        log.info("MetaDB migration %d applied: %s", migration.version, migration.description)


# ---- the replica registry and the cluster-wide lock (SQL only; the logic is in spider_core.replicas
# ---- and spider_core.cluster_lock) -------------------------------------------------------------------

_NOW = "extract(epoch FROM clock_timestamp())"


class ClusterStore:
    """The cluster's rows in a PostgreSQL MetaDB: replicas, their heartbeats, lock holders and waiters."""

    def __init__(self, db: PostgresMetaDB) -> None:
        self.db = db

    async def join(self, replica: str, url: str) -> None:
        """Register (or re-register after a restart: locks of the previous life are dropped)."""
        await self.db.transaction([
            (f"INSERT INTO replicas (id, url, started_at, last_seen) VALUES (?, ?, {_NOW}, {_NOW}) "
             f"ON CONFLICT (id) DO UPDATE SET url = excluded.url, started_at = excluded.started_at, "
             "last_seen = excluded.last_seen", (replica, url)),
            ("DELETE FROM splocks WHERE replica = ?", (replica,)),
            ("DELETE FROM splock_waiters WHERE replica = ?", (replica,)),
        ])

    async def heartbeat(self, replica: str) -> bool:
        """Renew the lease; False when the replica was declared dead meanwhile (its work was taken)."""
        counts = await self.db._write([(f"UPDATE replicas SET last_seen = {_NOW} WHERE id = ?", (replica,))])
        return counts[0] == 1

    async def leave(self, replica: str) -> None:
        """A clean stop: the lease ends now, so a survivor takes the queued jobs at once."""
        await self.db._write([("UPDATE replicas SET last_seen = 0 WHERE id = ?", (replica,))])

    async def expired(self, replica: str, lease: float) -> list[str]:
        rows = await self.db.fetch(f"SELECT id FROM replicas WHERE id <> ? AND last_seen < {_NOW} - ? ORDER BY id",
                                   replica, lease)
        return [r[0] for r in rows]

    async def claim(self, dead: str, me: str, lease: float) -> tuple[list[str], list[str]] | None:
        """Take a dead replica's open intents and unfinished jobs, and drop its locks, in one
        transaction; None when it is alive again or another survivor claimed it first."""
        async with self.db._pool().acquire() as conn:
            async with conn.transaction():
                gone = await conn.fetchval(numbered(f"DELETE FROM replicas WHERE id = ? AND last_seen < {_NOW} - ? "
                                                    "RETURNING id"), dead, lease)
                if gone is None:
                    return None
                intents = await conn.fetch("UPDATE intents SET owner = $1 WHERE owner = $2 RETURNING id", me, dead)
                jobs = await conn.fetch("UPDATE jobs SET owner = $1 WHERE owner = $2 AND status IN "
                                        "('queued', 'running') RETURNING id", me, dead)
                await conn.execute("DELETE FROM splocks WHERE replica = $1", dead)
                await conn.execute("DELETE FROM splock_waiters WHERE replica = $1", dead)
        return [r[0] for r in intents], [r[0] for r in jobs]

    async def replicas(self, lease: float) -> list[tuple[str, str, float, bool]]:
        """(id, url, seconds since its last heartbeat, alive) of every registered replica."""
        return await self.db.fetch(f"SELECT id, url, {_NOW} - last_seen, last_seen > {_NOW} - ? FROM replicas "
                                   "ORDER BY id", lease)

    async def try_lock(self, replica: str, holder: str, keys: list[tuple[str, str, str, bool]], request: str,
                       lease: float) -> bool:
        fams, conns, names, writes = (list(x) for x in zip(*keys))
        return bool(await self.db.fetchval("SELECT spider_try_lock(?, ?, ?, ?, ?, ?, ?, ?)", replica, holder, fams,
                                           conns, names, [int(w) for w in writes], request, lease))

    async def lock_open_intent(self, holder: str, keys: list[tuple[str, str, str, bool]], request: str,
                               lease: float, owner_vpc: str | None, intent: tuple) -> tuple[bool, IIDRow | None]:
        """``try_lock``, then (locks taken) the create's duplicate check and its intent: one round trip.
        (taken, the IID row already mapped under the intent's name or None once the intent is recorded)."""
        fams, conns, names, writes = (list(x) for x in zip(*keys))
        row = await self.db._pool().fetchrow(
            "SELECT * FROM spider_lock_open_intent($1, $2, $3, $4, $5, $6, $7, $8, $9, "
            "$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            self.db.replica, holder, fams, conns, names, [int(w) for w in writes], request, lease, owner_vpc,
            *intent[:11])
        return _lock_answer(row, intent)

    async def unlock(self, holders: list[str]) -> None:
        await self.db.release_locks(holders)

    async def lock_rows(self) -> tuple[list[tuple], list[tuple]]:
        """Every (family, connection, name, replica, write, request, since-seconds-ago) holder and waiter."""
        sql = (f"SELECT family, connection_name, name, replica, write, request, {_NOW} - since FROM {{}} "
               "ORDER BY family, connection_name, name, since")
        return await self.db.fetch(sql.format("splocks")), await self.db.fetch(sql.format("splock_waiters"))
