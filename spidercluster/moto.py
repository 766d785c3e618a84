"""The cluster's one moto server: the MOCK cloud every replica sees (``mock_driver.moto_server``)."""

from __future__ import annotations

import sys
from pathlib import Path

from spidercluster.procs import Child, free_port, ready_or_stop, spawn


def start_moto(state_dir: Path, port: int = 0, timeout: float = 60.0) -> Child:
    port = port or free_port()
    child = spawn("moto-server", [sys.executable, "-m", "mock_driver.moto_server", "--port", str(port)],
                  state_dir / "logs" / "moto-server.log")
    child.url = f"http://127.0.0.1:{port}"
    return ready_or_stop(child, child.url + "/moto-api/data.json", timeout=timeout)


def moto_env(child: Child) -> dict[str, str]:
    """What a replica needs to use it (``mock_driver.backends``)."""
    return {"SPIDERTWIN_MOTO_ENDPOINT": child.url}
