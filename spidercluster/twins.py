"""Cloud-Twin shards for ``spider cluster up --twin-shards N``, and the clouds the replicas use on them.

It writes what a multi-host deployment writes by hand (docs/cluster.md): a cluster file
(``twin-cluster.yaml``) giving ``spider demo``'s three clouds to the shards in turn and spreading any
other cloud over all of them, and one Fernet key repository (``twin-keys/``) every shard reads. Then
it starts ``spider twin --cluster FILE --shard shard-i`` per shard and, once the replicas are up,
registers the CLOUDTWIN connections (``cloudtwin-cloud-1-config`` ...) through HAProxy, each with its
Keystone at the cloud's own shard.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spidercluster.procs import Child, StartError, free_port, spawn, stop_all, wait_http

CLUSTER_FILE = "twin-cluster.yaml"
KEY_DIR = "twin-keys"


def write_cluster_file(state_dir: Path, shards: int, clouds: tuple[tuple[str, str], ...]) -> Path:
    """The cluster file and the shared keys; ``clouds`` (name, profile) go to the shards in turn."""
    from cloudtwin import cluster
    from cloudtwin.identity.fernet import KeyRepository

    names = [f"shard-{i}" for i in range(1, shards + 1)]
    KeyRepository(state_dir / KEY_DIR)         # Keystone's fernet_setup, once, before any shard reads it
    placements = [{"match": cloud, "shard": names[i % shards], "profile": profile}
                  for i, (cloud, profile) in enumerate(clouds)]
    placements.append({"match": "*", "spread": names})
    path = state_dir / CLUSTER_FILE
    path.write_text(cluster.dump({n: f"127.0.0.1:{free_port()}" for n in names}, placements, key_repo=KEY_DIR))
    return path


def start_shards(state_dir: Path, shards: int, clouds: tuple[tuple[str, str], ...],
                 timeout: float = 60.0) -> list[Child]:
    """Every shard of a fresh cluster file, started at once, each waited for."""
    from cloudtwin import cluster

    path = write_cluster_file(state_dir, shards, clouds)
    started: list[Child] = []
    try:
        for shard in cluster.load(path).shards.values():
            child = spawn(f"twin-{shard.name}", [sys.executable, "-m", "cloudtwin", "--cluster", str(path),
                                                 "--shard", shard.name],
                          state_dir / "logs" / f"twin-{shard.name}.log")
            child.url = shard.url
            child.meta.update(shard=shard.name, cluster_file=str(path))
            started.append(child)
        for child in started:
            wait_http(child, child.url + "/_twin/health", timeout=timeout)
    except BaseException:
        stop_all(started)
        raise
    return started


def register_clouds(spider_url: str, cluster_file: str, clouds: tuple[tuple[str, str], ...]) -> list[str]:
    """CB-Spider's CLOUDTWIN registration (driver, region, credential, config) of each cloud, its
    Keystone at the cloud's own shard: any shard answers a login, but this way a dead shard stops no
    login of another shard's clouds."""
    from cloudtwin import cluster
    from concurrency.scenario import Rest, register_cloudtwin

    owners = cluster.load(cluster_file)
    rest = Rest(spider_url.removesuffix("/spider"))
    try:
        return [register_cloudtwin(rest, owners.owner(cloud).url, cloud) for cloud, _ in clouds]  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - any failure to register is a start failure
        raise StartError(f"registering the Cloud-Twin connections through {spider_url} failed: "
                         f"{getattr(exc, 'message', exc)}") from None
