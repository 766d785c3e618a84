"""Shared pieces of the HTTP benchmarks: a lean keep-alive HTTP/1.1 client on raw asyncio streams
(request bytes prebuilt, so the load generator costs ~100-150 µs per request instead of aiohttp's
~400), percentiles, and /proc readers for a server's RSS and CPU."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except OSError:
        return 0.0


# ---- lean HTTP/1.1 keep-alive client ----------------------------------------------------------

@dataclass
class Req:
    method: str
    path: str
    body: bytes = b""
    raw: bytes = b""
    expect_items: int | None = None  # list calls: parse the JSON and count "vpc" entries
    headers: dict[str, str] = field(default_factory=dict)


def build(host: str, req: Req) -> Req:
    head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {host}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
    if req.body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n"
    req.raw = (head + "\r\n").encode() + req.body
    return req


class RawConn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        status_line, _, headers = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise RuntimeError(f"bad status line {status_line!r}")
        status = int(parts[1])
        lower = headers.lower()
        i = lower.find(b"content-length:")
        if i < 0:
            raise RuntimeError("response without Content-Length")
        end = lower.find(b"\r\n", i)
        length = int(lower[i + 15:end if end >= 0 else None])
        body = await self.reader.readexactly(length) if length else b""
        if b"connection: close" in lower:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


