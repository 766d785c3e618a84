"""Shared fixtures for the Spider server tests.

* ``spider_root``      a fresh SPIDER_ROOT per test (also exported as $SPIDER_ROOT for the test).
* ``mock_server``      in-process aiohttp TestServer around ``create_app(Spider)`` with MOCK registered
                       (``register_mock_connection``, connection ``mock-config01``). The credential's
                       MockName is made unique per test so the process-wide moto state of one test can
                       never leak into another.
* ``null_server``      the same with a NULL connection ``null-config01`` (credential key ``Name``,
                       region key ``Region``).
* ``SpiderProcess``    a real ``python -m spider_core.cli serve`` subprocess: waits for /spider/readyz and
                       is always killed (context manager + fixture finaliser), so no process leaks.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from spider_helpers import InProcess, SpiderProcess
from spider_core.cli import MOCK_CONNECTION, register_mock_connection
from spider_core.model import ConnectionConfigInfo, KeyValue
from spider_core.rest.app import create_app
from spider_core.services import connection as conn_svc
from spider_core.services.context import Settings, Spider

NULL_CONNECTION = "null-config01"
JSON = {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------------------------------
# per-test state directory
# ---------------------------------------------------------------------------------------------------

@pytest.fixture
def spider_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "spider-root"
    root.mkdir()
    monkeypatch.setenv("SPIDER_ROOT", str(root))
    return root


# ---------------------------------------------------------------------------------------------------
# in-process server
# ---------------------------------------------------------------------------------------------------

async def _start(sp: Spider, conn: str, **auth: Any):
    client = TestClient(TestServer(create_app(sp, **auth)))
    await client.start_server()
    return InProcess(client, sp, conn)


@pytest.fixture
async def spider(spider_root):
    sp = await Spider.start(Settings(root=spider_root))
    try:
        yield sp
    finally:
        await sp.close()


@pytest.fixture
def mock_name() -> str:
    return f"mock-{uuid.uuid4().hex[:12]}"


async def register_null_connection(sp: Spider, name: str = NULL_CONNECTION, cloud: str | None = None) -> None:
    await conn_svc.register_driver(sp, "null-driver01", "NULL", "null-driver-v1.0.so")
    await conn_svc.register_credential(sp, "null-credential01", "NULL",
                                       [KeyValue("Name", cloud or f"null-{uuid.uuid4().hex[:8]}")])
    await conn_svc.register_region(sp, "null-region01", "NULL", [KeyValue("Region", "null-region")], None)
    await conn_svc.register_connection(sp, ConnectionConfigInfo(name, "NULL", "null-driver01", "null-credential01",
                                                                "null-region01"))


@pytest.fixture
async def mock_server(spider, mock_name):
    await register_mock_connection(spider)
    # same registration, but a MockName of our own: isolated moto account for this test
    await conn_svc.register_credential(spider, "mock-credential01", "MOCK", [KeyValue("MockName", mock_name)])
    srv = await _start(spider, MOCK_CONNECTION)
    # connect before the test (starts the moto worker if needed), so timing-sensitive tests see a warm MOCK
    await srv.call("GET", "vpc", params={"ConnectionName": MOCK_CONNECTION})
    try:
        yield srv
    finally:
        await srv.client.close()


@pytest.fixture(scope="session", autouse=True)
def _shared_moto_worker():
    """One MOCK moto worker for the whole session (each test's Spider close would otherwise stop it and
    the next test would wait ~3 s for a new one); stopped at the end."""
    from mock_driver.driver import MockDriver
    from mock_driver.backends import shutdown_backend
    MockDriver.keep_backend_on_close = True
    yield
    MockDriver.keep_backend_on_close = False
    shutdown_backend()


@pytest.fixture
async def null_server(spider):
    await register_null_connection(spider)
    srv = await _start(spider, NULL_CONNECTION)
    try:
        yield srv
    finally:
        await srv.client.close()


@pytest.fixture
def spider_process(spider_root):
    """Factory: ``spider_process(port=None, command="serve", env=None)``; every process is killed at teardown."""
    made: list[SpiderProcess] = []

    def make(port: int | None = None, *, command: str = "serve", env: dict | None = None,
             root: Path | None = None) -> SpiderProcess:
        p = SpiderProcess(root or spider_root, port, command=command, env=env)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.stop()
