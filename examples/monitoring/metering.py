"""The hypervisor's side of each VM's figures: CPU and memory of its cgroup, read from the twin.

A VM's agent cannot see its own cgroup (inside a twin VM ``/proc/meminfo`` and ``/proc/stat`` are the
host's, and ``/sys`` has no cgroup filesystem), so these come from ``GET /_twin/vms/{id}``
(``cpu_usec``, ``memory_bytes`` of the VM's cgroup: every process of the VM, sshd and the agent
included), the way a cloud's own metering (Ceilometer, CloudWatch) reports a VM from outside. The
collector joins them to the agents' reports by server id. CPU is the ``cpu_usec`` delta between two
polls, in % of one core.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class VmFigures:
    server_id: str
    running: bool = False
    memory_bytes: int | None = None
    cpu_usec: int | None = None
    cpu_pct: float | None = None
    polled_at: float = 0.0


class Metering:
    """Polls the twin for the given servers every ``period`` seconds (spread over the period)."""

    def __init__(self, twin_url: str, server_ids: list[str], period: float = 5.0) -> None:
        self.url = twin_url.rstrip("/") + "/_twin/vms/"
        self.period = period
        self.figures = {s: VmFigures(s) for s in server_ids}
        token = os.environ.get("CLOUDTWIN_ADMIN_TOKEN")
        self.headers = {"X-Twin-Admin-Token": token} if token else {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def poll(self, server_id: str) -> VmFigures:
        """One reading of one VM (also usable without the background loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), headers=self.headers)
        fig = self.figures.setdefault(server_id, VmFigures(server_id))
        try:
            async with self._session.get(self.url + server_id) as r:
                doc: dict[str, Any] = await r.json() if r.status == 200 else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            doc = {}
        now = time.monotonic()
        fig.running = bool(doc.get("running"))
        cpu = doc.get("cpu_usec") if fig.running else None
        if isinstance(cpu, int) and fig.cpu_usec is not None and now > fig.polled_at:
            fig.cpu_pct = max(0.0, (cpu - fig.cpu_usec) / 1e4 / (now - fig.polled_at))
        fig.cpu_usec = cpu if isinstance(cpu, int) else None
        mem = doc.get("memory_bytes") if fig.running else None
        fig.memory_bytes = mem if isinstance(mem, int) else None
        if not fig.running:
            fig.cpu_pct = None
        fig.polled_at = now
        return fig

    async def poll_all(self) -> None:
        await asyncio.gather(*(self.poll(s) for s in list(self.figures)))

    async def _loop(self) -> None:
        ids = list(self.figures)
        gap = self.period / max(1, len(ids))
        while True:
            for sid in ids:
                await self.poll(sid)
                await asyncio.sleep(gap)

    def start(self) -> "Metering":
        self._task = asyncio.ensure_future(self._loop())
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
