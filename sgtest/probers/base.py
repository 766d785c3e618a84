"""The prober interface: one batch of probes per case, answered all at once.

A batch is every probe of one case (so a blocked probe costs one timeout per case, not per probe),
together with what the prober may need to know about the VM and the group as the API reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sgtest.expect import SkipPolicy
from sgtest.rules import Rule


@dataclass(frozen=True)
class VMTarget:
    """The VM under test, as Spider reports it."""

    name: str
    public_ip: str
    private_ip: str = ""
    user: str = "cb-user"
    key_file: str = ""       # the keypair's private key (.pem, mode 600), for the ssh prober
    system_id: str = ""      # the cloud's id of the VM (the twin's server id)


@dataclass(frozen=True)
class ProbeRequest:
    """One probe: ``direction`` inbound = client -> VM, outbound = VM -> client."""

    id: str
    direction: str
    proto: str               # tcp | udp | icmp
    port: int | None
    client_ip: str


@dataclass(frozen=True)
class ProbeBatch:
    vm: VMTarget
    probes: tuple[ProbeRequest, ...]
    readback: tuple[Rule, ...] = ()   # the group's rules as the API read them back (the model prober's input)


@dataclass(frozen=True)
class ProbeResult:
    id: str
    ok: bool
    latency_ms: float | None = None
    detail: str = ""


@dataclass
class ProberInfo:
    """What the runner needs to know about a prober before it plans expectations."""

    name: str
    policy: SkipPolicy = field(default_factory=lambda: SkipPolicy(False, False))
    client_ip: str = ""


class Prober(Protocol):
    info: ProberInfo

    async def prepare(self) -> None:
        """Learn what planning needs before any resource exists (the client IP), or fail early."""

    async def start(self, vm: VMTarget) -> None:
        """Get ready to probe this VM (learn the client IP, warm ARP caches, ...)."""

    async def probe(self, batch: ProbeBatch) -> list[ProbeResult]:
        """Run every probe of the batch (concurrently where possible); one result per probe, same ids."""

    async def close(self) -> None:
        """Release sessions and processes."""


class ProberError(RuntimeError):
    """The prober could not run (data plane off, unknown VM, ssh unusable); the message says why."""
