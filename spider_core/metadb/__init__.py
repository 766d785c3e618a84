"""The MetaDB: connection information, the IID tables, intents and jobs.

SQLite is the default (``sqlite.SQLiteMetaDB``, a file under ``$SPIDER_ROOT``); CB-Spider's
``SPIDER_METADB_ENDPOINT`` / ``_USER`` / ``_PASSWORD`` / ``_DATABASE`` select PostgreSQL
(``postgres.PostgresMetaDB``), which several Spider replicas can share. Both speak the API of
``base.MetaStore`` over the schema of ``migrations``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from spider_core.errors import SpiderError
from spider_core.metadb.base import TABLES, DuplicateRow, IIDRow, IntentRow, JobRow, MetaStore
from spider_core.metadb.sqlite import SQLiteMetaDB

__all__ = ["DuplicateRow", "IIDRow", "IntentRow", "JobRow", "MetaDB", "MetaStore", "SQLiteMetaDB", "TABLES",
           "from_env", "postgres_settings"]

MetaDB = SQLiteMetaDB  # the default engine, by its historical name

ENV_KEYS = ("SPIDER_METADB_ENDPOINT", "SPIDER_METADB_USER", "SPIDER_METADB_PASSWORD", "SPIDER_METADB_DATABASE")


def postgres_settings(environ: Mapping[str, str] | None = None):
    """The PostgreSQL settings CB-Spider's variables give, or None when ``SPIDER_METADB_ENDPOINT`` is unset."""
    from spider_core.metadb.postgres import PostgresSettings
    env = os.environ if environ is None else environ
    endpoint = env.get("SPIDER_METADB_ENDPOINT", "").strip()
    if not endpoint:
        return None
    host, sep, port = endpoint.rpartition(":")  # a host starting with / is a unix-socket directory (libpq's rule)
    if not sep:
        host, port = endpoint, "5432"
    if not port.isascii() or not port.isdecimal() or not 0 < int(port) < 65536:
        raise SpiderError(f"SPIDER_METADB_ENDPOINT={endpoint!r}: expected host:port")
    missing = [k for k in ENV_KEYS[1:] if k != "SPIDER_METADB_PASSWORD" and not env.get(k, "").strip()]
    if missing:
        raise SpiderError(f"SPIDER_METADB_ENDPOINT is set but {', '.join(missing)} is not")
    pool = env.get("SPIDER_METADB_POOL", "16").strip() or "16"
    if not pool.isascii() or not pool.isdecimal() or int(pool) < 2:
        raise SpiderError(f"SPIDER_METADB_POOL={pool!r}: a number of sessions >= 2")
    return PostgresSettings(host=host.strip("[]") or "127.0.0.1", port=int(port),
                            user=env["SPIDER_METADB_USER"].strip(), password=env.get("SPIDER_METADB_PASSWORD", ""),
                            database=env["SPIDER_METADB_DATABASE"].strip(), pool_size=int(pool))


def from_env(root: Path, environ: Mapping[str, str] | None = None) -> MetaStore:
    """The engine the environment selects: PostgreSQL when ``SPIDER_METADB_ENDPOINT`` is set, else SQLite."""
    settings = postgres_settings(environ)
    if settings is None:
        return SQLiteMetaDB(root)
    from spider_core.metadb.postgres import PostgresMetaDB
    return PostgresMetaDB(root, settings)
