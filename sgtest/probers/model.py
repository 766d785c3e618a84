"""The ``model`` prober: no data plane (e.g. MOCK), so "observed" is the rule model evaluated on the
rules the API reads back. The report then compares the expectation (model on the intended rules)
with what the cloud actually holds, which is all a cloud without traffic can prove."""

from __future__ import annotations

from sgtest.probers.base import ProbeBatch, ProberInfo, ProbeResult, VMTarget
from sgtest.expect import SkipPolicy
from sgtest.rules import Probe, allows

#: The test client's address when nothing better is known (TEST-NET-2, never routed).
DEFAULT_CLIENT_IP = "198.51.100.10"


class ModelProber:
    def __init__(self, client_ip: str = "") -> None:
        self.info = ProberInfo("model", SkipPolicy(False, False), client_ip or DEFAULT_CLIENT_IP)

    async def prepare(self) -> None:
        return None

    async def start(self, vm: VMTarget) -> None:
        return None

    async def probe(self, batch: ProbeBatch) -> list[ProbeResult]:
        out = []
        for p in batch.probes:
            ok = allows(batch.readback, Probe(p.direction, p.proto, p.port, p.client_ip))
            out.append(ProbeResult(p.id, ok, 0.0, "rule model on the API read-back"))
        return out

    async def close(self) -> None:
        return None
