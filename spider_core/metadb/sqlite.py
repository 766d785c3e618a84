"""The SQLite MetaDB engine (the default): one file, one server.

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
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, TypeVar

from spider_core.errors import SpiderError
from spider_core.metadb import migrations
from spider_core.metadb.base import MetaStore, deliver

T = TypeVar("T")


class SQLiteMetaDB(MetaStore):
    engine = "sqlite"

    def __init__(self, root: Path, *, file_name: str = "spider.db") -> None:
        super().__init__(root)
        self.path = root / "meta_db" / file_name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadb-writer")
        self._conn: sqlite3.Connection | None = None      # writer, used only on the writer thread
        self._reader: sqlite3.Connection | None = None    # read-only, used only on the loop thread
        self._closed = False
        self._pending: list[tuple[list[tuple[str, tuple]], asyncio.Future]] = []
        self._flushing = False

    @property
    def location(self) -> str:
        return str(self.path)

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
        _migrate(conn)
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

    # ---- primitives ----------------------------------------------------------------------------

    _by_owner_hint = " INDEXED BY iid_by_owner_vpc"

    def _is_duplicate(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _read(self) -> sqlite3.Connection:
        if self._reader is None:
            raise SpiderError("MetaDB is not open")
        return self._reader

    async def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self._read().execute(sql, params).fetchone()

    async def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._read().execute(sql, params).fetchall()

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

        def landed(outcome: asyncio.Future) -> None:
            try:
                results = outcome.result()
            except BaseException as exc:  # noqa: BLE001 - the whole batch failed (e.g. disk full)
                results = [exc] * len(batch)
            deliver([fut for _, fut in batch], results)
            self._flush()  # writes that arrived meanwhile form the next batch

        done.add_done_callback(landed)

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


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the missing migrations in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(migrations.VERSION_TABLE)
        applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for migration in migrations.pending(applied):
            for sql in migrations.statements(migration, "sqlite"):
                conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?,?,?)",
                         (migration.version, migration.description, datetime.now(timezone.utc).isoformat()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
