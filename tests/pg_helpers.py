"""A real PostgreSQL for tests (Debian's ``postgresql``), started by the tests themselves.

``postgres_or_skip()`` starts one server per test session in a private temp directory (owned by the
``postgres`` user when the tests run as root), on 127.0.0.1 and an ephemeral port; each test gets a
fresh database from ``fresh_database``. Without the package the tests skip with the reason, except in
CI (``SPIDERTWIN_REQUIRE_ROOT_TESTS=1``), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from spidercluster import postgres

_server: postgres.PostgresServer | None = None
_names = itertools.count(1)


def postgres_or_skip() -> postgres.PostgresServer:
    global _server
    if _server is not None:
        return _server
    if not postgres.available():
        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="spidertwin-pg-"))
    server = postgres.PostgresServer(base)
    server.start()

    def stop() -> None:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    _server = server
    return server


def fresh_database(*, tcp: bool = False) -> dict[str, str]:
    """The four SPIDER_METADB_* variables of a new, empty database (its unix socket, or 127.0.0.1 with ``tcp``)."""
    server = postgres_or_skip()
    return server.create_database(f"t{os.getpid()}_{next(_names)}", tcp=tcp)
