"""Helpers shared by the server tests: a real ``spider serve`` subprocess and port utilities."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from aiohttp.test_utils import TestClient

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------
# subprocess server
# ---------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as s:  # nobody listening on localhost either (e.g. ::1 / 0.0.0.0 binds)
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0


class SpiderProcess:
    """``python -m spider_core.cli serve|demo`` on 127.0.0.1:<port> with SPIDER_ROOT=root."""

    def __init__(self, root: Path, port: int | None = None, *, command: str = "serve",
                 env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.command = command
        self.extra_env = env or {}
        # demo also starts Cloud-Twin on :8192 unless told otherwise; tests keep it off that fixed port
        self.args = args if args is not None else (["--no-twin"] if command == "demo" else [])
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / f"server-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/spider"

    def start(self, timeout: float = 30.0) -> "SpiderProcess":
        env = {k: v for k, v in os.environ.items() if k not in ("SPIDER_USERNAME", "SPIDER_PASSWORD")}
        env.update({"SPIDER_ROOT": str(self.root), "PYTHONUNBUFFERED": "1"})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        env.update(self.extra_env)
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "spider_core.cli", self.command, "--address", f"127.0.0.1:{self.port}",
                 *self.args],
                env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spider exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = requests.get(self.url + "/readyz", timeout=1)
                if r.status_code == 200 and r.json() == {"message": "CB-Spider is ready"}:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"spider did not become ready in {timeout}s:\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM (graceful), then SIGKILL; always reaps the process."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "SpiderProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class TwinSubprocess:
    """``python -m cloudtwin`` on 127.0.0.1:<free port>; stopped (and reaped) on every exit path.

    ``shard=(cluster_file, name, port)`` starts one shard of a cluster instead (it listens where the
    file says, which must be ``port``)."""

    def __init__(self, *args: str, time_scale: float = 0.1, shard: tuple[Path, str, int] | None = None) -> None:
        self.port = shard[2] if shard else free_port()
        where = ["--cluster", str(shard[0]), "--shard", shard[1]] if shard else ["--port", str(self.port)]
        self.args = [*where, *args, "--time-scale", str(time_scale)]
        self.proc: subprocess.Popen | None = None
        self.image_dir: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "TwinSubprocess":
        # Glance's image data in a directory this object owns: the twin removes its own temporary one
        # at stop, but a test that kills it (a dead shard) would leave that behind.
        self.image_dir = self.image_dir or tempfile.mkdtemp(prefix="twin-images-")
        env = dict(os.environ, PYTHONUNBUFFERED="1", CLOUDTWIN_IMAGE_DIR=self.image_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", *self.args],
                                     env=env, cwd=str(REPO), stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cloudtwin exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/_twin/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("cloudtwin did not start")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, self.url + "/_twin" + path, json=body, timeout=10)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        image_dir, self.image_dir = self.image_dir, None
        if image_dir:
            shutil.rmtree(image_dir, ignore_errors=True)

    def __enter__(self) -> "TwinSubprocess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def require_root_dataplane() -> None:
    """Skip a test that needs the netns data plane (root, iproute2, nftables) with a clear reason; under
    ``SPIDERTWIN_REQUIRE_ROOT_TESTS=1`` (CI) fail instead, so such tests can never silently not run."""
    import shutil

    problem = None
    if os.geteuid() != 0:
        problem = "the netns data plane needs root (network namespaces, nftables)"
    else:
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                problem = f"the netns data plane needs '{tool}' (apt-get install iproute2 nftables)"
                break
    if problem:
        import pytest

        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":
            pytest.fail(f"SPIDERTWIN_REQUIRE_ROOT_TESTS=1 but {problem}")
        pytest.skip(problem)


def require_twin_vms(*tools: str) -> None:
    """What twin VMs (``--vm-runtime machine``) need on top of the data plane: OpenSSH's server and
    client, tini, and ``tools`` the test itself runs. Skip with the reason, or fail under
    ``SPIDERTWIN_REQUIRE_ROOT_TESTS=1`` (CI)."""
    import shutil

    require_root_dataplane()
    missing = [t for t in ("ssh", "tini", "unshare", "nsenter", *tools) if shutil.which(t) is None]
    if not Path("/usr/sbin/sshd").exists():
        missing.append("sshd")
    if missing:
        import pytest

        reason = (f"twin VMs need {', '.join(missing)} (apt-get install openssh-server openssh-client tini "
                  "netcat-openbsd sudo iputils-ping)")
        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":
            pytest.fail(f"SPIDERTWIN_REQUIRE_ROOT_TESTS=1 but {reason}")
        pytest.skip(reason)


@dataclass
class Reply:
    status: int
    text: str
    headers: Any

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class InProcess:
    """An aiohttp TestClient bound to one Spider; ``call`` returns a ``Reply`` (status, text, json)."""

    def __init__(self, client: TestClient, sp: Any, conn: str) -> None:
        self.client = client
        self.sp = sp
        self.conn = conn

    async def call(self, method: str, path: str, body: Any = None, *, params: dict | None = None,
                   data: bytes | str | None = None, headers: dict | None = None,
                   allow_redirects: bool = True) -> Reply:
        if not path.startswith("/"):
            path = "/spider/" + path
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, params=params, headers=hdrs,
                                       allow_redirects=allow_redirects) as resp:
            return Reply(resp.status, await resp.text(), resp.headers)

    def body(self, req_info: dict | None = None, **extra: Any) -> dict:
        out: dict[str, Any] = {"ConnectionName": self.conn}
        if req_info is not None:
            out["ReqInfo"] = req_info
        out.update(extra)
        return out

    async def dump(self) -> dict:
        return await self.sp.db.dump()
