"""The collector on the host: a UDP endpoint on the twin's host link that every VM's agent reports to.

It binds the host's address on the region's public network (``host_ip`` in ``GET /_twin/dataplane``),
the one address outside the cloud that a VM reaches over its floating-IP interface, as a monitoring
server on a real network would be. Each datagram is one JSON report (``agent.py``); the collector keys
hosts by the hostname they report, keeps each host's latest figures and answers "who reported in this
time window", which is what the scenario's checks are made of.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HostRecord:
    """Everything the collector knows about one reporting host."""

    hostname: str
    address: str
    first_seen: float
    last_seen: float
    reports: int = 0
    lost: int = 0                    # gaps in the agent's sequence numbers
    gaps: list[tuple[float, int]] = field(default_factory=list)   # (seconds after the first report, missing)
    last_seq: int = 0
    processes: int | None = None
    net: dict[str, dict[str, int]] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    def update(self, doc: dict[str, Any], address: str, now: float) -> None:
        seq = int(doc.get("seq") or 0)
        if self.last_seq and seq > self.last_seq + 1:
            self.lost += seq - self.last_seq - 1
            self.gaps.append((round(now - self.first_seen, 2), seq - self.last_seq - 1))
        self.last_seq = max(self.last_seq, seq)
        self.address, self.last_seen = address, now
        self.reports += 1
        self.times.append(now)
        procs = doc.get("processes")
        self.processes = procs if isinstance(procs, int) else self.processes
        net = doc.get("net")
        if isinstance(net, dict):
            self.net = net

    def reported_between(self, start: float, end: float) -> bool:
        return any(start <= t <= end for t in self.times)

    @property
    def rx_bytes(self) -> int:
        return sum(int(v.get("rx_bytes", 0)) for v in self.net.values())

    @property
    def tx_bytes(self) -> int:
        return sum(int(v.get("tx_bytes", 0)) for v in self.net.values())


RCVBUF = 8 * 2**20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _large_buffer(sock: socket.socket | None) -> None:
    """A receive buffer for a few seconds of every agent's reports: the default (~208 KiB, about 200
    small datagrams) overflows whenever the collector's loop is busy for a second or two (starting a
    hundred ssh clients is enough), and the kernel then drops reports silently. As root the
    ``net.core.rmem_max`` cap does not apply (SO_RCVBUFFORCE)."""
    if sock is None:
        return
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
            return
        except OSError:
            continue


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, collector: "Collector") -> None:
        self.collector = collector

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.collector.receive(data, addr[0])


class Collector:
    """``await Collector(host).start()``; ``hosts`` by hostname; ``close()`` when done."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.host, self.port = host, port
        self.hosts: dict[str, HostRecord] = {}
        self.datagrams = 0
        self.malformed = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> "Collector":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        _large_buffer(transport.get_extra_info("socket"))
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def receive(self, data: bytes, address: str) -> None:
        self.datagrams += 1
        try:
            doc = json.loads(data)
            hostname = str(doc["hostname"])
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return
        now = time.monotonic()
        rec = self.hosts.get(hostname)
        if rec is None:
            rec = self.hosts[hostname] = HostRecord(hostname, address, now, now)
        rec.update(doc, address, now)

    def reporting(self, since: float, until: float | None = None) -> set[str]:
        """Hostnames with at least one report in [since, until] (monotonic clock)."""
        end = time.monotonic() if until is None else until
        return {h for h, r in self.hosts.items() if r.reported_between(since, end)}

    def reports_between(self, start: float, end: float) -> int:
        return sum(sum(1 for t in r.times if start <= t <= end) for r in self.hosts.values())
