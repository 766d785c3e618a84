"""What ``spider cluster up`` starts: a typed config from flags or from a YAML file users edit.

Example ``cluster.yaml`` (every key optional; see docs/cluster.md)::

    state_dir: /var/tmp/spidertwin-cluster   # PostgreSQL data, replica roots, logs, haproxy.cfg
    listen: 127.0.0.1:1024                    # HAProxy's front end: the one URL clients use
    replicas: 3                               # spider serve processes
    lock_mode: sponge
    moto: true                                # one shared moto server for the MOCK provider
    lease_seconds: 6                          # a silent replica is dead after this long
    postgres: {port: 0, settings: {max_connections: "200"}}
    replica_env: {SPIDER_JOB_WORKERS: "512"}  # extra environment for every replica
    twin_shards: 2                            # Cloud-Twin shards (cloud-1..3 registered through HAProxy)
    load_workers: 2                           # spider load --worker processes, always waiting for a master
    load_master_port: 5557                    # where they look for it (spider load ... --master)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from spidercluster.postgres import DEFAULT_SETTINGS


def default_state_dir() -> Path:
    """Outside any private home: PostgreSQL runs as its own user when we are root."""
    return Path(tempfile.gettempdir()) / "spidertwin-cluster"


@dataclass
class PostgresConfig:
    port: int = 0                     # 0: a free port
    settings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))


@dataclass
class ClusterConfig:
    state_dir: Path = field(default_factory=default_state_dir)
    listen: str = "127.0.0.1:1024"
    replicas: int = 3
    lock_mode: str = "sponge"
    moto: bool = True
    lease_seconds: float = 6.0
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    replica_env: dict[str, str] = field(default_factory=dict)
    twin_shards: int = 0              # Cloud-Twin shards (spidercluster.twins)
    load_workers: int = 0             # Locust workers waiting for a `spider load --master` (spidercluster.load_workers)
    load_master_port: int = 5557

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0] or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def validate(self) -> "ClusterConfig":
        for name in ("replicas", "twin_shards", "load_workers", "load_master_port"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name}: a whole number, not {value!r}")
        if not isinstance(self.lease_seconds, (int, float)) or isinstance(self.lease_seconds, bool):
            raise ValueError(f"lease_seconds: a number of seconds, not {self.lease_seconds!r}")
        if not isinstance(self.listen, str) or not isinstance(self.lock_mode, str) or not isinstance(self.moto, bool):
            raise ValueError("listen and lock_mode are text, moto is true or false")
        if not 1 <= self.replicas <= 64:
            raise ValueError(f"replicas: 1..64, not {self.replicas}")
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isascii() or not port.isdecimal() or not 0 < int(port) < 65536:
            raise ValueError(f"listen: host:port, not {self.listen!r}")
        if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            raise ValueError("listen: spider cluster up binds loopback only (the replicas have no auth); "
                             "for several hosts follow docs/cluster.md")
        if self.lease_seconds < 1:
            raise ValueError("lease_seconds: at least 1")
        if not 0 <= self.twin_shards <= 64:
            raise ValueError(f"twin_shards: 0..64, not {self.twin_shards}")
        if not 0 <= self.load_workers <= 256:
            raise ValueError(f"load_workers: 0..256, not {self.load_workers}")
        if not 0 < self.load_master_port < 65536:
            raise ValueError(f"load_master_port: 1..65535, not {self.load_master_port}")
        return self


def load(path: Path | None, **overrides: Any) -> ClusterConfig:
    """The config from ``path`` (YAML), then the flags given (None = not given)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a mapping of settings is expected")
        raw = loaded
    known = {f.name for f in fields(ClusterConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    pg = raw.pop("postgres", None) or {}
    if not isinstance(pg, dict) or set(pg) - {"port", "settings"}:
        raise ValueError(f"{path}: postgres takes port and settings")
    cfg = ClusterConfig(**raw)
    cfg.state_dir = Path(cfg.state_dir).expanduser()
    cfg.postgres = PostgresConfig(port=int(pg.get("port", 0)),
                                  settings={**DEFAULT_SETTINGS, **{k: str(v) for k, v in (pg.get("settings") or {}).items()}})
    cfg.replica_env = {str(k): str(v) for k, v in (cfg.replica_env or {}).items()}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, Path(value) if key == "state_dir" else value)
    return cfg.validate()
