"""Probes sent from inside a namespace: TCP (connect, then a banner or an echo must come back), UDP (the
echoed payload must come back) and ICMP (a raw-socket echo request, the matching reply).

A connect alone proves nothing when return traffic is broken, and a silent UDP port proves nothing at
all, so every probe needs data back. Security groups drop rather than reject, so "blocked" is decided by
the timeout; all probes of a batch run concurrently and share it (a batch costs one timeout).
Sockets are opened inside the source namespace on a worker thread and then driven from the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from cloudtwin.dataplane.netns import NetnsThreads

PROTOCOLS = ("tcp", "udp", "icmp")
DRAIN_STEP = 0.005        # after the timeout: keep waiting in steps this long while answers still arrive


@dataclass
class ProbeSpec:
    id: str
    namespace: str | None           # None: not resolved, ``error`` says why
    to: str
    proto: str
    port: int | None = None
    error: str | None = None


@dataclass
class ProbeResult:
    id: str
    ok: bool
    latency_ms: float | None
    detail: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "latency_ms": self.latency_ms, "detail": self.detail}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes, v6: bool = False) -> bytes:
    kind = 128 if v6 else 8                 # the kernel fills the ICMPv6 checksum itself
    head = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return head + payload
    return struct.pack("!BBHHH", kind, 0, _checksum(head + payload), ident, seq) + payload


def _open(proto: str, to: str) -> socket.socket:
    """Runs inside the source namespace."""
    family = socket.AF_INET6 if ipaddress.ip_address(to).version == 6 else socket.AF_INET
    if proto == "tcp":
        sock = socket.socket(family, socket.SOCK_STREAM)
    elif proto == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
    else:
        sock = socket.socket(family, socket.SOCK_RAW,
                             socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP)
        try:
            sock.connect((to, 0))      # only sets the peer (and filters replies by it); never blocks
        except OSError:
            sock.close()
            raise
    sock.setblocking(False)
    return sock


def _open_many(items: list[tuple[str, str]]) -> list[socket.socket | OSError]:
    out: list[socket.socket | OSError] = []
    for proto, to in items:
        try:
            out.append(_open(proto, to))
        except OSError as exc:
            out.append(exc)
    return out


async def _tcp(sock: socket.socket, to: str, port: int, nonce: bytes) -> str:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (to, port))
    await loop.sock_sendall(sock, nonce)
    buf = b""
    while True:
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise ConnectionError("connected, but closed without sending data")
        buf += data
        if buf.startswith(b"SSH-") and b"\n" in buf:
            return "banner " + buf.split(b"\n", 1)[0].strip().decode(errors="replace")
        if nonce in buf:
            return f"echo {len(nonce)} bytes"
        if len(buf) >= 1024:
            return f"data {len(buf)} bytes"


async def _udp(sock: socket.socket, to: str, port: int, nonce: bytes) -> str:
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (to, port))
    await loop.sock_sendall(sock, nonce)
    while True:
        data = await loop.sock_recv(sock, 4096)
        if data == nonce:
            return f"echo {len(nonce)} bytes"


async def _icmp(sock: socket.socket, to: str) -> str:
    loop = asyncio.get_running_loop()
    v6 = sock.family == socket.AF_INET6
    ident, seq = secrets.randbits(16), 1
    await loop.sock_sendall(sock, echo_request(ident, seq, b"cloudtwin-probe", v6))
    while True:
        data = await loop.sock_recv(sock, 2048)
        icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
        if len(icmp) < 8:
            continue
        kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
        if kind == (129 if v6 else 0) and rid == ident and rseq == seq:
            return "echo reply"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def _attempt(spec: ProbeSpec, sock: socket.socket) -> ProbeResult:
    nonce = f"cloudtwin-probe-{spec.id}-{secrets.token_hex(4)}\n".encode()
    started = time.perf_counter()
    try:
        if spec.proto == "tcp":
            detail = await _tcp(sock, spec.to, spec.port or 0, nonce)
        elif spec.proto == "udp":
            detail = await _udp(sock, spec.to, spec.port or 0, nonce)
        else:
            detail = await _icmp(sock, spec.to)
    except OSError as exc:
        return ProbeResult(spec.id, False, round((time.perf_counter() - started) * 1000, 3), _describe(exc))
    return ProbeResult(spec.id, True, round((time.perf_counter() - started) * 1000, 3), detail)


async def _race(attempts: dict[int, Any], timeout: float) -> dict[int, ProbeResult | None]:
    """Run the attempts until the batch timeout; then keep going while answers still arrive (a reply
    already in a socket buffer is not "blocked" just because the shared event loop was busy), but at
    most one more timeout. What is left is cancelled: blocked (None)."""
    tasks = {asyncio.ensure_future(coro): i for i, coro in attempts.items()}
    if not tasks:
        return {}
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    grace_end = time.perf_counter() + timeout
    while pending and time.perf_counter() < grace_end:
        finished, pending = await asyncio.wait(pending, timeout=DRAIN_STEP)
        if not finished:
            break
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {i: (None if task in pending else task.result()) for task, i in tasks.items()}


async def run_probes(threads: NetnsThreads, specs: list[ProbeSpec], timeout: float) -> list[ProbeResult]:
    """Every probe of ``specs`` concurrently; results in the same order."""
    by_ns: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        if spec.namespace is not None and spec.error is None:
            by_ns.setdefault(spec.namespace, []).append(i)
    opened: dict[int, socket.socket | OSError] = {}

    async def open_in(ns: str, idx: list[int]) -> None:
        try:
            socks = await threads.run(ns, _open_many, [(specs[i].proto, specs[i].to) for i in idx])
        except OSError as exc:
            socks = [exc] * len(idx)
        opened.update(zip(idx, socks))

    await asyncio.gather(*(open_in(ns, idx) for ns, idx in by_ns.items()))
    try:
        raced = await _race({i: _attempt(specs[i], sock) for i, sock in opened.items()
                             if not isinstance(sock, OSError)}, timeout)
    finally:
        for sock in opened.values():
            if not isinstance(sock, OSError):
                sock.close()
    out = []
    for i, spec in enumerate(specs):
        sock = opened.get(i)
        if spec.error is not None or spec.namespace is None:
            out.append(ProbeResult(spec.id, False, None, spec.error or "no source namespace"))
        elif isinstance(sock, OSError):
            out.append(ProbeResult(spec.id, False, None, f"cannot open a socket: {_describe(sock)}"))
        else:
            out.append(raced.get(i) or ProbeResult(spec.id, False, None, "timeout"))
    return out
