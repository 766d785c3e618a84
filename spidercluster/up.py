"""``spider cluster up``: every component in order, one function each, stopped in reverse.

Order: PostgreSQL (the shared MetaDB), the moto server (the MOCK cloud), then whatever the replicas
need to reach (Cloud-Twin shards), the replicas, HAProxy (it health-checks the replicas), then what
uses HAProxy: the CLOUDTWIN connections, and Locust workers waiting for a ``spider load --master``. Each
step is a function ``step(cluster) -> list[Child]`` in ``STEPS``; a step that fails stops what came
before it. ``cluster.json`` in the state directory records the pids for ``spider cluster down``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from spidercluster.config import ClusterConfig
from spider_core.cli import TWIN_CLOUDS
from spidercluster.haproxy import start_haproxy
from spidercluster.load_workers import master_command, spawn_worker
from spidercluster.moto import moto_env, start_moto
from spidercluster.postgres import PostgresServer
from spidercluster.procs import Child, pid_alive, stop_all
from spidercluster.replicas import spawn_replica, wait_ready
from spidercluster.twins import register_clouds, start_shards

STATE_FILE = "cluster.json"


@dataclass
class Cluster:
    config: ClusterConfig
    children: list[Child] = field(default_factory=list)
    replica_env: dict[str, str] = field(default_factory=dict)   # what every replica gets (steps add to it)
    postgres: PostgresServer | None = None
    replicas: list[Child] = field(default_factory=list)
    twins: list[Child] = field(default_factory=list)
    url: str = ""
    notes: list[str] = field(default_factory=list)   # what the user needs to know to use what started

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    def stop(self) -> None:
        stop_all(self.children)
        self.children.clear()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)

    def respawn(self) -> list[Child]:
        """Start again the children that are meant to come back (Locust workers end with each run)."""
        again = []
        for i, child in enumerate(self.children):
            make = child.meta.get("respawn")
            if make is not None and not child.alive():
                child.stop()
                self.children[i] = make()
                again.append(self.children[i])
        if again:
            self.record()
        return again

    def record(self) -> None:
        state = {"url": self.url, "pids": [{"name": c.name, "pid": c.pid} for c in self.children]}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


def step_postgres(cluster: Cluster) -> list[Child]:
    cfg = cluster.config
    if os.geteuid() == 0:  # PostgreSQL runs as its own user: it must be able to pass through the state dir
        os.chmod(cfg.state_dir, cfg.state_dir.stat().st_mode | 0o011)
    server = PostgresServer(cfg.state_dir / "postgres", port=cfg.postgres.port, settings=dict(cfg.postgres.settings))
    child = server.start()
    cluster.postgres = server
    cluster.replica_env.update(server.env())
    return [child]


def step_moto(cluster: Cluster) -> list[Child]:
    if not cluster.config.moto:
        return []
    child = start_moto(cluster.state_dir)
    cluster.replica_env.update(moto_env(child))
    return [child]


def step_twins(cluster: Cluster) -> list[Child]:
    """Cloud-Twin shards (``spidercluster.twins``): the replicas' CLOUDTWIN clouds live on them."""
    if not cluster.config.twin_shards:
        return []
    cluster.twins = start_shards(cluster.state_dir, cluster.config.twin_shards, TWIN_CLOUDS)
    return cluster.twins


def step_replicas(cluster: Cluster) -> list[Child]:
    cfg = cluster.config
    env = {**cluster.replica_env, "SPIDER_REPLICA_LEASE": str(cfg.lease_seconds), **cfg.replica_env}
    started: list[Child] = []
    try:
        for index in range(1, cfg.replicas + 1):  # all at once: each imports for a few seconds
            started.append(spawn_replica(cfg.state_dir, index, env, lock_mode=cfg.lock_mode))
        for child in started:
            wait_ready(child)
    except BaseException:
        stop_all(started)
        raise
    cluster.replicas = started
    return started


def step_haproxy(cluster: Cluster) -> list[Child]:
    cfg = cluster.config
    servers = [(c.meta["id"], f"127.0.0.1:{c.meta['port']}") for c in cluster.replicas]
    child = start_haproxy(cfg.state_dir, cfg.listen, servers)
    cluster.url = child.url + "/spider"
    return [child]


def step_connections(cluster: Cluster) -> list[Child]:
    """With twin shards: the CLOUDTWIN connections, registered once through HAProxy (MetaDB is shared)."""
    if cluster.twins:
        cluster_file = cluster.twins[0].meta["cluster_file"]
        names = register_clouds(cluster.url, cluster_file, TWIN_CLOUDS)
        cluster.notes.append(f"connections {', '.join(names)} (Keystone at each cloud's own shard; any shard "
                             f"answers a login; map in {cluster_file})")
    return []


def step_load_workers(cluster: Cluster) -> list[Child]:
    cfg = cluster.config
    workers = [spawn_worker(cfg.state_dir, i, cfg.load_master_port) for i in range(1, cfg.load_workers + 1)]
    if workers:
        cluster.notes.append("load: " + master_command(cluster.url, len(workers), cfg.load_master_port))
    return workers


Step = Callable[[Cluster], list[Child]]
STEPS: list[tuple[str, Step]] = [
    ("postgres", step_postgres),
    ("moto", step_moto),
    ("twins", step_twins),
    ("replicas", step_replicas),
    ("haproxy", step_haproxy),
    ("connections", step_connections),
    ("workers", step_load_workers),
]


def up(config: ClusterConfig, *, log: Callable[[str], None] = print) -> Cluster:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(config)
    try:
        for name, step in STEPS:
            started = time.monotonic()
            children = step(cluster)
            cluster.children.extend(children)
            for child in children:
                log(f"  {name:9s} {child.name:14s} pid {child.pid:<7d} {child.url}  "
                    f"({time.monotonic() - started:.1f} s, log {child.log_path})")
    except BaseException:
        cluster.stop()
        raise
    cluster.record()
    return cluster


def down(state_dir: Path, grace: float = 20.0) -> int:
    """Stop a cluster another ``spider cluster up`` started (its pids from ``cluster.json``)."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return 0
    pids = [p["pid"] for p in json.loads(path.read_text())["pids"]]
    for pid in reversed(pids):  # HAProxy first, PostgreSQL last
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return len(pids)
