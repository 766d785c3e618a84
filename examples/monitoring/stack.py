"""Cloud-Twin (with its data plane) and Spider for the example: started here as loopback subprocesses,
or attached to when they already run.

Processes this module starts are stopped by :meth:`Stack.close` on every exit path (SIGTERM, then
SIGKILL); the twin's own shutdown removes its namespaces, machines and host links. Attached servers are
left running. The twin is started with ``--parent-pid`` so it also goes if this process is killed.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]


class StackError(RuntimeError):
    """The twin or Spider could not be started or reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SPIDER_USERNAME", "SPIDER_PASSWORD")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def _wait(url: str, proc: subprocess.Popen[bytes] | None, what: str, log: Path | None, timeout: float,
          ok: Any = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise StackError(f"{what} exited with {proc.returncode}:\n{tail}")
        try:
            r = requests.get(url, timeout=1)
            if r.status_code == 200 and (ok is None or ok(r)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise StackError(f"{what} did not answer {url} within {timeout:g} s")


@dataclass
class Stack:
    """Where the twin and Spider are, and the processes this run owns."""

    twin_url: str
    spider_url: str                                   # ends with /spider
    workdir: Path
    twin_proc: subprocess.Popen[bytes] | None = None
    spider_proc: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def twin_pid(self) -> int | None:
        return self.twin_proc.pid if self.twin_proc else None

    @property
    def spider_pid(self) -> int | None:
        return self.spider_proc.pid if self.spider_proc else None

    def twin(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """One call of the twin's admin API (``/_twin`` + path); raises on an error answer."""
        r = requests.request(method, self.twin_url + "/_twin" + path, json=body, timeout=timeout,
                             headers=_admin_headers())
        if r.status_code >= 300:
            raise StackError(f"{method} /_twin{path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def close(self) -> None:
        for proc in (self.spider_proc, self.twin_proc):      # Spider first: it still talks to the twin
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.spider_proc = self.twin_proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _admin_headers() -> dict[str, str]:
    token = os.environ.get("CLOUDTWIN_ADMIN_TOKEN")
    return {"X-Twin-Admin-Token": token} if token else {}


def open_stack(twin_url: str | None, spider_url: str | None, *, time_scale: float = 1.0,
               workdir: Path | None = None) -> Stack:
    """Attach to the given URLs; start what is not given. The twin must run its netns data plane."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="spidertwin-monitoring-")
        workdir = Path(tmp.name)
    stack = Stack(twin_url or "", (spider_url or "").rstrip("/"), workdir, _tmp=tmp)
    try:
        if not twin_url:
            port = free_port()
            log = workdir / "twin.log"
            with open(log, "ab") as fh:
                stack.twin_proc = subprocess.Popen(
                    [sys.executable, "-m", "cloudtwin", "--port", str(port), "--dataplane", "netns",
                     "--time-scale", str(time_scale), "--parent-pid", str(os.getpid())],
                    env=_env(), cwd=str(REPO), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            stack.twin_url = f"http://127.0.0.1:{port}"
            _wait(stack.twin_url + "/_twin/health", stack.twin_proc, "cloudtwin", log, 60)
        dp = stack.twin("GET", "/dataplane")
        if not dp.get("enabled"):
            raise StackError(f"the twin at {stack.twin_url} runs without a data plane (start it with "
                             "--dataplane netns, as root)")
        if not spider_url:
            port = free_port()
            root = workdir / "spider"
            root.mkdir(parents=True, exist_ok=True)
            log = workdir / "spider.log"
            env = _env()
            env["SPIDER_ROOT"] = str(root)
            with open(log, "ab") as fh:
                stack.spider_proc = subprocess.Popen(
                    [sys.executable, "-m", "spider_core.cli", "serve", "--address", f"127.0.0.1:{port}"],
                    env=env, cwd=str(REPO), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            stack.spider_url = f"http://127.0.0.1:{port}/spider"
            _wait(stack.spider_url + "/readyz", stack.spider_proc, "spider", log, 60,
                  ok=lambda r: r.json().get("message") == "CB-Spider is ready")
        elif not stack.spider_url.endswith("/spider"):
            stack.spider_url += "/spider"
    except BaseException:
        stack.close()
        raise
    return stack


def ensure_cloud(stack: Stack, cloud: str) -> str:
    """Make ``cloud`` in the twin (default profile) unless it exists; returns its public /24. The twin
    gives each region a /24 of 198.18.0.0/15 that nothing on this host routes yet (another twin's
    ranges included), so the host reaches its floating IPs."""
    if not any(c.get("name") == cloud for c in stack.twin("GET", "/clouds").get("clouds", [])):
        stack.twin("POST", "/clouds", {"name": cloud, "profile": "openstack"})
    ips = [x["ip"] for x in stack.twin("GET", "/dataplane")["clients"] if x["cloud"] == cloud]
    if not ips:
        raise StackError(f"the twin reports no public network for cloud {cloud}")
    return str(ipaddress.ip_network(f"{ips[0]}/24", strict=False))
