"""Forget a namespace's tracked connections, as Neutron does when a security-group rule goes away.

The rulesets are stateful: a packet of a tracked flow passes on ``ct state established`` whatever the
rules say now. Neutron's firewall drivers therefore delete the conntrack entries a removed rule allowed;
without that, a UDP exchange that reuses a 5-tuple within conntrack's 30 s (an ephemeral source port
drawn again, an ICMP id repeated) would still pass after the rule that allowed it was removed.

The twin flushes the VM namespace's whole table when its ruleset loses a line (coarser than Neutron,
which deletes only the removed rule's entries: a flow that a remaining rule allows is picked up again
as new, and is accepted if its first packet after the flush is in the direction the rules allow).

One ctnetlink message per address family (``IPCTNL_MSG_CT_DELETE`` without attributes flushes), over a
``NETLINK_NETFILTER`` socket opened in the calling thread's namespace: no ``conntrack`` binary needed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
_HEADER = struct.Struct("=IHHII")   # nlmsghdr: length, type, flags, sequence, port id
_NFGEN = struct.Struct("=BBH")      # nfgenmsg: family, version, resource id (big-endian, 0 here)


def flush_message(family: int, seq: int) -> bytes:
    """The ctnetlink request that deletes every entry of ``family`` (AF_INET or AF_INET6)."""
    body = _NFGEN.pack(family, 0, 0)
    kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def ack_error(reply: bytes, seq: int) -> int:
    """The errno of the kernel's acknowledgement of request ``seq`` (0: done)."""
    offset = 0
    while offset + _HEADER.size <= len(reply):
        length, kind, _flags, rseq, _pid = _HEADER.unpack_from(reply, offset)
        if kind == NLMSG_ERROR and rseq == seq:
            (code,) = struct.unpack_from("=i", reply, offset + _HEADER.size)
            return -code
        if length < _HEADER.size:
            break
        offset += (length + 3) & ~3
    raise OSError(errno.EPROTO, f"no acknowledgement for conntrack flush {seq} in the kernel's reply")


def flush_here() -> None:
    """Delete every conntrack entry of the calling thread's namespace (run on a ``NetnsThreads`` worker)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        sock.settimeout(2.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            sock.send(flush_message(family, seq))
            code = ack_error(sock.recv(65536), seq)
            if code not in (0, errno.ENOENT):  # ENOENT: nothing tracked, nothing to forget
                raise OSError(code, f"conntrack flush ({'IPv4' if family == socket.AF_INET else 'IPv6'}): "
                                    f"{os.strerror(code)}")
