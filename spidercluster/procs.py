"""Child processes of a cluster: started with a log file, probed until ready, stopped politely.

Every component of ``spider cluster up`` is one or more ``Child``: a ``subprocess.Popen`` with a name
(for messages), the log file its output goes to, and a stop that sends SIGTERM, waits, then SIGKILLs,
so a Ctrl-C never leaves a process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class StartError(RuntimeError):
    """A component did not come up; the message names it and quotes the end of its log."""


@dataclass
class Child:
    """One process of the cluster."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    url: str = ""
    stop_signal: int = signal.SIGTERM
    stopper: Callable[[], None] | None = None   # a component-specific stop (pg_ctl stop)
    meta: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15.0) -> int | None:
        """Stop and reap: the component's own stop, else ``stop_signal``; SIGKILL after ``grace``."""
        if self.stopper is not None:
            try:
                self.stopper()
            except Exception:  # noqa: BLE001 - fall back to signals below
                pass
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def spawn(name: str, argv: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None,
          cwd: str | None = None, user: str | None = None) -> Child:
    """Start ``argv`` with stdout and stderr in ``log_path`` (appended); ``user`` runs it as that user."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, user=user, start_new_session=True)
    return Child(name, proc, log_path)


def wait_http(child: Child, url: str, *, timeout: float = 60.0,
              ok: Callable[[int, bytes], bool] = lambda status, _body: status == 200) -> None:
    """Poll ``url`` until ``ok(status, body)``; raise StartError if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise StartError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own loopback URL
                if ok(resp.status, resp.read()):
                    return
        except urllib.error.HTTPError as exc:
            if ok(exc.code, exc.read()):
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise StartError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n{child.log_tail()}")


def ready_or_stop(child: Child, url: str, *, timeout: float = 60.0) -> Child:
    """``wait_http`` for a child just started: stopped (never left behind) if it does not come up."""
    try:
        wait_http(child, url, timeout=timeout)
    except BaseException:
        child.stop()
        raise
    return child


def stop_all(children: Sequence[Child]) -> None:
    """Stop children in reverse start order (HAProxy before replicas before their database)."""
    for child in reversed(children):
        child.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
