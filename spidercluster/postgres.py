"""A real PostgreSQL server of Debian's ``postgresql`` package, in a directory of our own.

Used by ``spider cluster up`` (the shared MetaDB) and by the tests (the MetaDB suite on PostgreSQL):
``initdb`` into ``<dir>/data`` once, then ``postgres`` in the foreground, listening on 127.0.0.1 and on a
unix socket inside the directory, with password (SCRAM) authentication on TCP. PostgreSQL refuses to
run as root, so under root it runs as the ``postgres`` user the package creates, and the directory is
handed to that user. ``stop()`` asks for a fast shutdown (SIGINT): sessions end, data stays.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from spidercluster.procs import Child, StartError, free_port, spawn

RUN_AS_WHEN_ROOT = "postgres"

# Cluster settings: short transactions from many pooled sessions; nothing here trades safety except
# synchronous_commit, which has the durability of the SQLite MetaDB's WAL with synchronous=NORMAL (a
# power cut may lose the last few hundred milliseconds of commits, never consistency).
DEFAULT_SETTINGS: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "synchronous_commit": "off",
}


def bin_dir() -> Path:
    """Debian installs each major version under /usr/lib/postgresql/<N>/bin; take the newest."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise StartError("PostgreSQL is not installed: apt-get install postgresql (Debian's package)")


def available() -> bool:
    try:
        bin_dir()
    except StartError:
        return False
    return True


def _run_as() -> str | None:
    return RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None


@dataclass
class PostgresServer:
    """One PostgreSQL server; ``env()`` gives the four ``SPIDER_METADB_*`` variables that select it."""

    base_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    user: str = "spider"
    database: str = "spider"
    settings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    child: Child | None = None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def password_file(self) -> Path:
        return self.base_dir / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def socket_endpoint(self) -> str:
        """The unix socket (its directory and the port, as libpq names it): same machine only, and
        much cheaper per round trip than loopback TCP."""
        return f"{self.base_dir}:{self.port}"

    def env(self, *, tcp: bool = False) -> dict[str, str]:
        """CB-Spider's variables, as ``spider serve`` reads them (the unix socket unless ``tcp``)."""
        return {"SPIDER_METADB_ENDPOINT": self.endpoint if tcp else self.socket_endpoint, "SPIDER_METADB_USER": self.user,
                "SPIDER_METADB_PASSWORD": self.password, "SPIDER_METADB_DATABASE": self.database}

    # ---- life cycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Child:
        """initdb (first time), start, create the database; returns the running server."""
        user = _run_as()
        self._prepare_dir(user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        self.port = self.port or free_port(self.host)
        argv = [str(bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.base_dir}"]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        child = spawn("postgresql", argv, self.base_dir / "postgresql.log", user=user)
        child.stop_signal = signal.SIGINT  # fast shutdown: sessions end, data stays
        child.url = f"postgresql://{self.user}@{self.endpoint}/{self.database}"
        self.child = child
        try:
            self._wait_ready(timeout)
            self._create_database()
        except BaseException:
            child.stop()
            raise
        return child

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    def __enter__(self) -> "PostgresServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- steps -----------------------------------------------------------------------------------

    def _prepare_dir(self, user: str | None) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o700)
        if not self.password_file.exists():
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.base_dir, self.password_file, *self.base_dir.rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            probe = subprocess.run(["test", "-w", str(self.base_dir)], user=user, check=False)
            if probe.returncode != 0:
                raise StartError(f"PostgreSQL runs as '{user}', who cannot reach {self.base_dir}: choose a "
                                 "state directory outside a private home (e.g. under /var/tmp)")

    def _initdb(self, user: str | None) -> None:
        done = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--pwfile",
             str(self.password_file), "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
            user=user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StartError(f"initdb failed in {self.data_dir}:\n{done.stdout}{done.stderr}")

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.child is not None
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise StartError(f"PostgreSQL exited with {self.child.proc.returncode}:\n{self.child.log_tail()}")
            ready = subprocess.run([str(bin_dir() / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                                   check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise StartError(f"PostgreSQL did not accept connections within {timeout:.0f} s:\n{self.child.log_tail()}")

    def _create_database(self) -> None:
        exists = subprocess.run(
            [str(bin_dir() / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
             "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            env=self._client_env(), capture_output=True, text=True, check=False)
        if exists.returncode != 0:
            raise StartError(f"PostgreSQL does not answer queries: {exists.stderr.strip()}")
        if exists.stdout.strip() == "1":
            return
        made = subprocess.run([str(bin_dir() / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user,
                               self.database], env=self._client_env(), capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise StartError(f"createdb {self.database} failed: {made.stderr.strip()}")

    def drop_database(self, name: str) -> None:
        """Drop a database (tests give each case a fresh one)."""
        subprocess.run([str(bin_dir() / "dropdb"), "--if-exists", "-h", self.host, "-p", str(self.port), "-U",
                        self.user, name], env=self._client_env(), capture_output=True, check=False)

    def create_database(self, name: str, *, tcp: bool = False) -> dict[str, str]:
        """A fresh database on this server; returns the env that selects it."""
        made = subprocess.run([str(bin_dir() / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user,
                               name], env=self._client_env(), capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise StartError(f"createdb {name} failed: {made.stderr.strip()}")
        return {**self.env(tcp=tcp), "SPIDER_METADB_DATABASE": name}
