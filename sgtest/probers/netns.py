"""The ``netns`` prober: real packets through Cloud-Twin's data plane, driven by its admin API.

Cloud-Twin runs every VM and every test client in a network namespace and compiles each port's
security groups into nftables; ``POST /_twin/dataplane/probe`` runs a batch of probes concurrently
(TCP with a banner/echo exchange, UDP echo, ICMP echo), so a blocked probe is decided by the batch's
one timeout. Inbound probes go from the client namespace to the VM's public IP; outbound probes go
from the VM's namespace to the client's IP (CB-Spider's CLIENT1_IP).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from sgtest.expect import SkipPolicy
from sgtest.probers.base import ProbeBatch, ProberError, ProberInfo, ProbeResult, VMTarget

DEFAULT_TWIN = "http://127.0.0.1:8192"
DEFAULT_TIMEOUT_MS = 150  # >= 100 ms never misclassified with static neighbours (measured); blocked = timeout


def choose_client(clients: list[dict[str, Any]], cloud: str = "", region: str = "") -> dict[str, Any]:
    """The client namespace to probe from: the one in the VM's cloud/region if given, else the first."""
    if not clients:
        raise ProberError("the data plane reports no client namespace")
    for c in clients:
        if (not cloud or c.get("cloud") == cloud) and (not region or c.get("region") == region):
            return c
    return clients[0]


def probe_body(batch: ProbeBatch, timeout_ms: int, cloud: str = "", region: str = "") -> dict[str, Any]:
    """The ``/_twin/dataplane/probe`` request for one batch (the admin API's exact field names)."""
    probes = []
    for p in batch.probes:
        item: dict[str, Any] = {"id": p.id, "vm_ip": batch.vm.public_ip, "proto": p.proto}
        if p.direction == "inbound":
            item.update({"from": "client", "to": batch.vm.public_ip})
        else:
            item.update({"from": "vm", "to": p.client_ip})
        if p.port is not None:
            item["port"] = p.port
        if cloud:
            item["cloud"] = cloud
        if region:
            item["region"] = region
        probes.append(item)
    return {"timeout_ms": timeout_ms, "probes": probes}


class NetnsProber:
    def __init__(self, twin: str = DEFAULT_TWIN, *, timeout_ms: int = DEFAULT_TIMEOUT_MS, cloud: str = "",
                 region: str = "") -> None:
        self.twin = twin.rstrip("/")
        self.timeout_ms = timeout_ms
        self.cloud, self.region = cloud, region
        self.info = ProberInfo("netns", SkipPolicy(False, False))
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.twin + "/_twin/dataplane" + path
        try:
            async with self._http().request(method, url, json=body) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise ProberError(f"{method} {url}: HTTP {resp.status} {text.strip()[:300]}")
                return await resp.json(content_type=None) if text.strip() else {}
        except aiohttp.ClientError as exc:
            raise ProberError(f"{method} {url}: {exc}") from None

    async def status(self) -> dict[str, Any]:
        return await self._call("GET", "")

    async def prepare(self) -> None:
        state = await self.status()
        if not state.get("enabled"):
            raise ProberError(f"Cloud-Twin's data plane at {self.twin} is off (start the twin with --dataplane netns)")
        client = choose_client(list(state.get("clients") or []), self.cloud, self.region)
        self.info.client_ip = str(client["ip"])

    async def start(self, vm: VMTarget) -> None:
        """Pin the VM's cloud and region (public IPs repeat across twin clouds) from the data plane's
        server list, by the server id Spider reports."""
        if self.cloud or not vm.system_id:
            return
        state = await self.status()
        server = next((s for s in state.get("servers") or [] if s.get("server_id") == vm.system_id), None)
        if server is None:
            return
        self.cloud, self.region = str(server.get("cloud", "")), str(server.get("region", ""))
        client = choose_client(list(state.get("clients") or []), self.cloud, self.region)
        self.info.client_ip = str(client["ip"])      # the runner follows it (or refuses, when it cannot)

    async def probe(self, batch: ProbeBatch) -> list[ProbeResult]:
        if not batch.probes:
            return []
        answer = await self._call("POST", "/probe", probe_body(batch, self.timeout_ms, self.cloud, self.region))
        by_id = {str(r.get("id")): r for r in answer.get("results") or []}
        out = []
        for p in batch.probes:
            r = by_id.get(p.id)
            if r is None:
                raise ProberError(f"the data plane returned no result for probe {p.id}")
            out.append(ProbeResult(p.id, bool(r.get("ok")), r.get("latency_ms"), str(r.get("detail") or "")))
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
