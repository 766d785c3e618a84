"""The services every VM and client namespace offers: TCP 22 (an SSH-style banner, where no real sshd
runs), TCP 1000 (echo) and UDP 2000 (echo); ICMP echo is answered by the kernel.

Sockets are made inside the namespace on a worker thread (``open_sockets`` runs under
``netns.entered``) and served from the twin's event loop: a socket keeps its namespace for life, so
hundreds of namespaces cost three file descriptors each and no thread or process.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

SSH_PORT = 22
ECHO_TCP_PORT = 1000
ECHO_UDP_PORT = 2000
BANNER = b"SSH-2.0-CloudTwin_1.0\r\n"
MAX_ECHO = 4096


def _bind(kind: int, port: int) -> socket.socket:
    """Dual-stack when the namespace has IPv6, IPv4 otherwise."""
    try:
        sock = socket.socket(socket.AF_INET6, kind)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        addr: tuple[Any, ...] = ("::", port)
    except OSError:
        sock = socket.socket(socket.AF_INET, kind)
        addr = ("0.0.0.0", port)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def open_sockets(banner: bool = True) -> tuple[socket.socket | None, socket.socket, socket.socket]:
    """TCP 22 (unless a real sshd answers there: ``banner=False``), TCP 1000 and UDP 2000 in the calling
    thread's namespace."""
    made: list[socket.socket] = []
    wanted = ([(socket.SOCK_STREAM, SSH_PORT)] if banner else []) + [
        (socket.SOCK_STREAM, ECHO_TCP_PORT), (socket.SOCK_DGRAM, ECHO_UDP_PORT)]
    try:
        for kind, port in wanted:
            made.append(_bind(kind, port))
    except OSError:
        for s in made:
            s.close()
        raise
    if not banner:
        return None, made[0], made[1]
    return made[0], made[1], made[2]


class _Tcp(asyncio.Protocol):
    """TCP 22 sends the SSH identification line and discards input; TCP 1000 echoes. Open connections
    are remembered so closing the responders closes them too."""

    def __init__(self, conns: set[Any], banner: bool) -> None:
        self.conns = conns
        self.banner = banner
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.conns.add(transport)
        if self.banner:
            transport.write(BANNER)

    def data_received(self, data: bytes) -> None:
        if not self.banner:
            self.transport.write(data[:MAX_ECHO])

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.discard(self.transport)


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data[:MAX_ECHO], addr)


@dataclass
class Responders:
    """The served sockets of one namespace; ``close`` must run before the namespace is deleted (an open
    socket keeps a deleted namespace, and its veth, alive)."""

    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    transports: list[Any] = field(default_factory=list)
    conns: set[Any] = field(default_factory=set)

    def close(self) -> None:
        for srv in self.servers:
            srv.close()
        for tr in self.transports:
            tr.close()
        for conn in list(self.conns):
            conn.abort()
        self.servers.clear()
        self.transports.clear()
        self.conns.clear()


async def serve(sockets: tuple[socket.socket | None, socket.socket, socket.socket]) -> Responders:
    loop = asyncio.get_running_loop()
    ssh, echo, udp = sockets
    out = Responders()
    try:
        if ssh is not None:
            out.servers.append(await loop.create_server(lambda: _Tcp(out.conns, True), sock=ssh))
        out.servers.append(await loop.create_server(lambda: _Tcp(out.conns, False), sock=echo))
        transport, _ = await loop.create_datagram_endpoint(_UdpEcho, sock=udp)
        out.transports.append(transport)
    except BaseException:
        out.close()
        for s in sockets:
            if s is not None:
                s.close()
        raise
    return out
