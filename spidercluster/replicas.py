"""N ``spider serve`` replicas sharing the cluster's PostgreSQL MetaDB (and its moto server).

Each replica has its own ``SPIDER_ROOT`` (call log, logs) holding a copy of the cluster's one
credential key (``secret.key``): credentials are sealed with it, so every replica must have the same.
Replica ids are stable (``replica-1`` ...): a replica restarted under its id settles its own
interrupted work before it says ready.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from spider_core.secrets import KEY_FILE_NAME, load_or_create_key
from spidercluster.procs import Child, free_port, spawn, wait_http


def replica_env(root: Path, replica_id: str, metadb_env: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIDER_METADB_")}
    env.update(metadb_env)
    env.update({"SPIDER_ROOT": str(root), "SPIDER_REPLICA_ID": replica_id, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def share_key(state_dir: Path, root: Path) -> None:
    """Give the replica the cluster's credential key (created once in the state directory)."""
    key = state_dir / KEY_FILE_NAME
    load_or_create_key(key)
    root.mkdir(parents=True, exist_ok=True)
    target = root / KEY_FILE_NAME
    shutil.copyfile(key, target)
    os.chmod(target, 0o600)


def spawn_replica(state_dir: Path, index: int, env: dict[str, str], *, port: int = 0,
                  lock_mode: str = "sponge") -> Child:
    """Start replica ``index`` (not waiting for it); ``wait_ready`` waits."""
    replica_id = f"replica-{index}"
    root = state_dir / replica_id
    share_key(state_dir, root)
    port = port or free_port()
    child = spawn(replica_id, [sys.executable, "-m", "spider_core.cli", "serve", "--address", f"127.0.0.1:{port}",
                               "--lock-mode", lock_mode],
                  state_dir / "logs" / f"{replica_id}.log", env=replica_env(root, replica_id, env, {}))
    child.url = f"http://127.0.0.1:{port}"
    child.meta.update(id=replica_id, port=port, root=str(root))
    return child


def wait_ready(child: Child, timeout: float = 60.0) -> None:
    wait_http(child, child.url + "/spider/readyz", timeout=timeout)
