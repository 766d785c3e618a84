"""Cloud-Twin fixtures: an in-process twin for async tests and a twin on a background thread for
blocking clients (openstacksdk). Helpers live in ``twin_helpers``."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from twin_helpers import FAST, ThreadedTwin


@pytest.fixture
async def twin() -> Any:
    """A twin on 127.0.0.1:<free port> in the test's own event loop."""
    srv = await TwinServer(port=0, config=TwinConfig(time_scale=FAST)).start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def threaded_twin() -> Iterator[ThreadedTwin]:
    t = ThreadedTwin(TwinConfig(time_scale=FAST)).start()
    try:
        yield t
    finally:
        t.stop()
