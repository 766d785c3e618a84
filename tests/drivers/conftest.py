import uuid

import pytest

from mock_driver.driver import MockDriver
from spider_core.drivers.base import ConnectionInfo


@pytest.fixture
def mock_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def conn(mock_name):
    c = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name}, "default",
                                                  connection_name=f"conn-{mock_name}"))
    yield c
    await c.close()
