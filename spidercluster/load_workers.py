"""Locust workers for ``spider cluster up --load-workers N``: ``spider load --worker`` processes on this
machine, connected to a master on 127.0.0.1 that ``spider load ... --master`` starts later.

A Locust worker ends with its master's run (and gives up after five minutes without one), so the
cluster starts a new one whenever one exits: there are always N waiting for the next run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spidercluster.procs import Child, spawn


def spawn_worker(state_dir: Path, index: int, master_port: int) -> Child:
    name = f"load-worker-{index}"
    child = spawn(name, [sys.executable, "-m", "spider_core.cli", "load", "--worker", "--master-host", "127.0.0.1",
                         "--master-port", str(master_port)], state_dir / "logs" / f"{name}.log")
    child.url = f"(master 127.0.0.1:{master_port})"
    child.meta.update(respawn=lambda: spawn_worker(state_dir, index, master_port))
    return child


def master_command(spider_url: str, workers: int, master_port: int) -> str:
    """What to run for a load test over these workers."""
    return (f"spider load OP CSP N --resource R --server {spider_url.removesuffix('/spider')} --master "
            f"--expect-workers {workers} --master-bind-port {master_port}")
