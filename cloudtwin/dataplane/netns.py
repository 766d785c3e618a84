"""Names and kernel plumbing: namespaces, veths and bridges made with ``ip -batch`` (one process for many
objects), and entering a namespace from a worker thread.

Every object a twin makes carries its prefix (``ctw`` + 4 hex digits, unique per running twin), so
cleanup deletes by exact pattern and never touches anything else. Bridges live in the twin's
``<prefix>-fab`` namespace, and each veth is created inside it with its peer sent straight into the VM's
(or client's) namespace. The one thing in the host's own namespace is each public side's host link
(``<prefix>h####``, the peer of a fabric veth): it dies with the fabric namespace.

Python 3.11 has no ``os.setns``, so ``entered()`` calls ``setns(2)`` through ctypes. It switches only
the calling thread, which is why it must run on ``NetnsThreads`` workers and never on the event loop:
a socket stays in the namespace it was created in, and a process forked from such a thread starts in
that namespace too (``nft -f -`` is run that way, ≈5x cheaper than ``ip netns exec``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

log = logging.getLogger("cloudtwin.dataplane")

PROJECT_PREFIX = "ctw"
PREFIX_RE = re.compile(r"^ctw[0-9a-f]{4}$")
OBJECT_RE = re.compile(r"^(ctw[0-9a-f]{4})-")       # a namespace made by some twin
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MAX_NICS = 10                                          # private interfaces eth0..eth9 per VM
PUBLIC_IF = "pub0"                                     # a VM's interface on the public bridge

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def new_prefix(taken: set[str]) -> str:
    """A prefix no running twin (and no leftover namespace) uses."""
    while True:
        prefix = PROJECT_PREFIX + secrets.token_hex(2)
        if prefix not in taken:
            return prefix


def list_namespaces() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def owner_prefix(namespace: str) -> str | None:
    m = OBJECT_RE.match(namespace)
    return m.group(1) if m else None


def _b36(n: int, width: int = 4) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


@dataclass(frozen=True)
class Names:
    """Every name and locally administered MAC one twin instance uses (interface names <= 15 chars)."""

    prefix: str

    @property
    def fabric(self) -> str:
        return f"{self.prefix}-fab"

    @property
    def table(self) -> str:
        return self.prefix

    def vm_ns(self, i: int) -> str:
        return f"{self.prefix}-vm{_b36(i)}"

    def client_ns(self, i: int) -> str:
        return f"{self.prefix}-cl{_b36(i)}"

    def bridge(self, i: int) -> str:
        return f"{self.prefix}b{_b36(i)}"

    def public_bridge(self, i: int) -> str:
        return f"{self.prefix}p{_b36(i)}"

    def vm_link(self, i: int, nic: int) -> str:
        """The fabric end of VM ``i``'s private interface ``eth<nic>``."""
        return f"{self.prefix}v{_b36(i)}{nic}"

    def vm_public_link(self, i: int) -> str:
        return f"{self.prefix}v{_b36(i)}p"

    def client_link(self, i: int) -> str:
        return f"{self.prefix}c{_b36(i)}"

    def host_link(self, i: int) -> str:
        """The host's end of public side ``i``'s link from the host shell (in the twin's own namespace)."""
        return f"{self.prefix}h{_b36(i)}"

    def host_peer(self, i: int) -> str:
        """The fabric end of that link, on the public bridge."""
        return f"{self.prefix}g{_b36(i)}"

    def _mac(self, kind: int, i: int) -> str:
        inst = int(self.prefix[len(PROJECT_PREFIX):], 16)
        octets = [0x02, inst >> 8, inst & 0xFF, kind, (i >> 8) & 0xFF, i & 0xFF]
        return ":".join(f"{o:02x}" for o in octets)

    def vm_public_mac(self, i: int) -> str:
        return self._mac(0x01, i)

    def client_mac(self, i: int) -> str:
        return self._mac(0x02, i)


# ---- ip -batch ----------------------------------------------------------------------------------

def _ip_argv(netns: str | None) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), "-force", "-batch", "-"]


def _report(lines: list[str], netns: str | None, rc: int, err: str) -> bool:
    if rc != 0:
        log.warning("ip -batch (%s, %d lines) exited %d: %s", netns or "root", len(lines), rc, err.strip()[:500])
    return rc == 0


async def ip_batch(lines: list[str], netns: str | None = None) -> bool:
    """Run ``lines`` in one ``ip [-n NS] -force -batch -`` (every line is tried; failures are logged)."""
    if not lines:
        return True
    proc = await asyncio.create_subprocess_exec(*_ip_argv(netns), stdin=subprocess.PIPE,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await proc.communicate(("\n".join(lines) + "\n").encode())
    return _report(lines, netns, proc.returncode or 0, err.decode(errors="replace"))


def ip_batch_sync(lines: list[str], netns: str | None = None) -> bool:
    """The blocking form, for start-up and exit paths that run without an event loop."""
    if not lines:
        return True
    done = subprocess.run(_ip_argv(netns), input="\n".join(lines) + "\n", text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return _report(lines, netns, done.returncode, done.stderr)


def delete_namespaces_sync(names: list[str]) -> None:
    """Delete namespaces (and with them every veth end, bridge and nft table inside)."""
    ip_batch_sync([f"netns delete {n}" for n in names])


def host_links(prefix: str) -> list[str]:
    """``prefix``'s links in the host's own namespace (the public sides' host links)."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(prefix) and OBJECT_RE.match(n) is None]


def delete_host_links_sync(prefix: str) -> None:
    """Delete them now: a veth whose peer's namespace is being deleted goes only when the kernel's
    asynchronous namespace cleanup gets to it."""
    links = host_links(prefix)
    if links:
        ip_batch_sync([f"link delete {n}" for n in links])


# ---- entering a namespace -------------------------------------------------------------------------

def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Switch the calling thread into ``namespace`` and back (never call it on the event loop thread)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(NETNS_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


class NetnsThreads:
    """Worker threads that run a function inside a namespace and return its result to the loop."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctw-netns")

    def _inside(self, namespace: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with entered(namespace):
            return fn(*args)

    async def run(self, namespace: str, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._inside, namespace, fn, args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
