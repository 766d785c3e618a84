"""The monitoring case, phase by phase, with the checks that make it a test.

1. ``n`` VMs are created through Spider (CLOUDTWIN connection; the twin runs its data plane, so each
   VM is a small machine with real OpenSSH).
2. The agent (``agent.py``) is installed in every VM over SSH and reports once a second to the
   collector on the host link.                         check: the collector sees ``n`` distinct hosts.
3. Steady reporting for ``observe`` seconds.
4. A control-plane outage (a region ``outage`` fault on the cloud) for ``outage`` seconds: Spider's
   calls fail with the cloud's 503, and the VMs go on reporting, as running VMs do on a real cloud when
   the API is down.                    checks: a Spider call fails; every host reports through the window.
5. A ``crash`` fault on ``crash`` VMs; the twin's events name the servers it crashed.
                                   check: exactly those hosts stop reporting, every other host goes on.
6. The per-host table and a one-line summary; everything made through Spider is deleted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from examples.monitoring import fleet as fleet_mod
from examples.monitoring.collector import Collector
from examples.monitoring.metering import Metering
from examples.monitoring.stack import Stack, ensure_cloud
from spider_core.client import AsyncSpiderClient, SpiderAPIError

AGENT = Path(__file__).with_name("agent.py")
Progress = Callable[[str], None]


@dataclass
class Options:
    n: int = 100
    crash: int = 10
    outage: float = 5.0          # seconds of control-plane outage (0: skip the phase)
    observe: float = 5.0         # seconds of steady reporting before the faults
    silent_after: float = 3.0    # a host with no report for this long counts as silent
    meter_every: float = 5.0     # seconds between two readings of one VM's cgroup from the twin
    cloud: str = "monitoring"
    prefix: str = "mon"
    parallel: int = 100          # VM creates in flight at once through Spider
    keep: bool = False           # leave the VMs (and their agents) running


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class HostRow:
    """One line of the per-host table."""

    vm: str
    hostname: str
    public_ip: str
    server_id: str
    reports: int
    lost: int
    processes: int | None             # the agent's count of its VM's processes
    cpu_pct: float | None             # the VM's cgroup, from the twin (metering.py), % of one core
    memory_mib: float | None          # the VM's cgroup, from the twin
    running: bool                     # the twin's view: the VM's processes run
    gaps: list[tuple[float, int]]     # (seconds after its first report, reports missing)
    rx_bytes: int
    tx_bytes: int
    crashed: bool
    reporting: bool


@dataclass
class Result:
    n: int
    connection: str
    collector: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    hosts_seen: int = 0
    outage_reporting: int | None = None
    outage_spider_error: str | None = None
    crashed: list[str] = field(default_factory=list)        # hostnames the twin crashed
    silent: list[str] = field(default_factory=list)         # hostnames that stopped reporting
    rows: list[HostRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    cleanup_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks) and not self.cleanup_problems

    def check(self, name: str, ok: bool, detail: str, progress: Progress) -> None:
        self.checks.append(Check(name, ok, detail))
        progress(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        return doc


async def _watch(collector: Collector, seconds: float, expect: int, label: str, progress: Progress,
                 window: float) -> None:
    """Wait ``seconds``, printing once a second how many hosts reported in the last ``window`` s."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))
        now = time.monotonic()
        live = len(collector.reporting(now - window, now))
        rate = collector.reports_between(now - 1.0, now)
        progress(f"  {label}: {live} hosts reported in the last {window:g} s (expected {expect}), "
                 f"{rate} reports in the last second")


async def _wait_hosts(collector: Collector, n: int, timeout: float, progress: Progress) -> bool:
    end = time.monotonic() + timeout
    last = -1
    while len(collector.hosts) < n and time.monotonic() < end:
        if len(collector.hosts) != last:
            last = len(collector.hosts)
            progress(f"  collector: {last}/{n} hosts reporting")
        await asyncio.sleep(0.2)
    return len(collector.hosts) >= n


async def _check_server_ids(stack: Stack, cloud: str, vms: list[fleet_mod.Vm], progress: Progress) -> None:
    """Spider's ``IId.SystemId`` is the cloud's server id; say so when the twin's data plane puts a
    VM's PublicIP on another server (or on none yet)."""
    dp = await asyncio.to_thread(stack.twin, "GET", "/dataplane")
    by_ip = {ip: s["server_id"] for s in dp["servers"] if s["cloud"] == cloud for ip in s["floating_ips"]}
    odd = [vm.name for vm in vms if by_ip.get(vm.public_ip) != vm.server_id]
    if odd:
        progress(f"  note: the twin's data plane does not (yet) list {len(odd)} of these PublicIPs on the server "
                 f"Spider named: {', '.join(odd[:5])}{' ...' if len(odd) > 5 else ''}")


async def _collector_host(stack: Stack, cloud: str) -> str:
    """The host's address on the cloud's public network: what a VM reaches outside the cloud."""
    dp = await asyncio.to_thread(stack.twin, "GET", "/dataplane")
    for c in dp["clients"]:
        if c["cloud"] == cloud and c.get("host_ip"):
            return str(c["host_ip"])
    raise fleet_mod.FleetError(f"cloud {cloud} has no host link (is its public range already routed on this host?)")


def _require_empty(stack: Stack, opts: Options) -> None:
    """A crash fault picks among every ACTIVE server of the cloud, so the cloud must hold this run's
    servers only (or the crash could hit a server that is not watched, and the check would not say
    anything about the agents)."""
    if opts.crash <= 0:
        return
    state = stack.twin("GET", f"/state?cloud={opts.cloud}")
    servers = sum(r.get("servers", 0) for c in state.get("clouds", []) for r in c.get("objects", {}).values())
    if servers:
        raise fleet_mod.FleetError(f"cloud {opts.cloud} already has {servers} servers: the crash fault would pick among "
                                   "them too; use a fresh --cloud (or --crash 0)")


async def _outage(stack: Stack, client: AsyncSpiderClient, fleet: fleet_mod.Fleet, collector: Collector,
                  opts: Options, result: Result, progress: Progress) -> None:
    progress(f"outage: the control plane of {opts.cloud} is down for {opts.outage:g} s (region outage fault)")
    rule = (await asyncio.to_thread(stack.twin, "POST", "/faults",
                                    {"kind": "outage", "match": {"cloud": opts.cloud}, "duration": opts.outage}))["fault"]
    start = time.monotonic()
    try:
        try:
            await client.get_vm(fleet.conn, fleet.vms[0].name)
            result.outage_spider_error = None
        except SpiderAPIError as exc:
            result.outage_spider_error = f"{exc.status} {exc.message[:120]}"
        await _watch(collector, opts.outage - (time.monotonic() - start), opts.n, "outage", progress,
                     opts.silent_after)
    finally:
        try:
            await asyncio.to_thread(stack.twin, "DELETE", f"/faults/{rule['id']}")
        except Exception:  # noqa: BLE001 - the window has ended anyway; the rule has no effect any more
            pass
    end = time.monotonic()
    through = {h for h in collector.reporting(start, end)} & collector.reporting(end - opts.silent_after, end)
    result.outage_reporting = len(through)
    result.check("control plane down", result.outage_spider_error is not None,
                 f"Spider GET /vm/{fleet.vms[0].name} during the outage: {result.outage_spider_error or 'answered 200'}",
                 progress)
    result.check("running VMs keep reporting through the outage", len(through) == opts.n,
                 f"{len(through)}/{opts.n} hosts reported during and at the end of the {opts.outage:g} s outage",
                 progress)


async def _crash(stack: Stack, fleet: fleet_mod.Fleet, collector: Collector, opts: Options, result: Result,
                 progress: Progress) -> None:
    progress(f"crash: a crash fault takes down {opts.crash} of the {opts.n} VMs")
    since = (await asyncio.to_thread(stack.twin, "GET", "/events?limit=1"))["last_seq"]
    rule = (await asyncio.to_thread(stack.twin, "POST", "/faults",
                                    {"kind": "crash", "count": opts.crash, "match": {"cloud": opts.cloud}}))["fault"]
    crashed_at = time.monotonic()
    server_ids: set[str] = set()
    end = crashed_at + 10
    while len(server_ids) < opts.crash and time.monotonic() < end:
        events = (await asyncio.to_thread(stack.twin, "GET", f"/events?since={since}&kind=fault.crash"))["events"]
        server_ids = {e["detail"]["server"] for e in events if e.get("rule") == rule["id"]}
        await asyncio.sleep(0.1)
    by_id = {vm.server_id: vm for vm in fleet.vms}
    result.crashed = sorted(by_id[s].hostname if s in by_id else f"(a server of another run: {s})" for s in server_ids)
    progress(f"  the twin crashed {len(server_ids)} servers: {', '.join(result.crashed)}")
    await _watch(collector, opts.silent_after + 1.5, opts.n - opts.crash, "after the crash", progress,
                 opts.silent_after)
    now = time.monotonic()
    live = collector.reporting(now - opts.silent_after, now)
    result.silent = sorted(set(collector.hosts) - live)
    result.check("exactly the crashed VMs stop reporting",
                 len(result.crashed) == opts.crash and set(result.silent) == set(result.crashed),
                 f"{len(result.silent)} silent, {len(result.crashed)} crashed"
                 + ("" if set(result.silent) == set(result.crashed) else
                    f"; silent but not crashed: {sorted(set(result.silent) - set(result.crashed))}, "
                    f"crashed but reporting: {sorted(set(result.crashed) - set(result.silent))}"), progress)
    result.check("every other VM goes on reporting", len(live) == opts.n - opts.crash,
                 f"{len(live)}/{opts.n - opts.crash} hosts reported in the last {opts.silent_after:g} s", progress)


async def _rows(fleet: fleet_mod.Fleet, collector: Collector, metering: Metering, result: Result) -> list[HostRow]:
    await metering.poll_all()
    rows = []
    silent = set(result.silent)
    for vm in fleet.vms:
        rec = collector.hosts.get(vm.hostname)
        fig = metering.figures.get(vm.server_id)
        rows.append(HostRow(
            vm.name, vm.hostname, vm.public_ip, vm.server_id, rec.reports if rec else 0, rec.lost if rec else 0,
            rec.processes if rec else None,
            round(fig.cpu_pct, 2) if fig and fig.cpu_pct is not None else None,
            round(fig.memory_bytes / 2**20, 1) if fig and fig.memory_bytes is not None else None,
            bool(fig and fig.running), list(rec.gaps) if rec else [], rec.rx_bytes if rec else 0, rec.tx_bytes if rec else 0,
            vm.hostname in result.crashed, rec is not None and vm.hostname not in silent))
    return rows


def table(rows: list[HostRow]) -> str:
    """The per-host figures as a fixed-width table: the agent's (reports, processes, interface
    counters) and the twin's (the cgroup's CPU in % of one core, memory; ``-`` for a VM that is off)."""
    head = ("VM", "hostname", "public IP", "reports", "lost", "procs", "CPU %", "mem MiB", "rx KiB", "tx KiB", "state")
    lines = []
    for r in rows:
        state = ("crashed, silent" if r.crashed and not r.reporting else "CRASHED, REPORTING" if r.crashed
                 else "reporting" if r.reporting else "SILENT")
        lines.append((r.vm, r.hostname, r.public_ip, str(r.reports), str(r.lost),
                      "-" if r.processes is None else str(r.processes),
                      "-" if r.cpu_pct is None else f"{r.cpu_pct:.2f}",
                      "-" if r.memory_mib is None else f"{r.memory_mib:.1f}",
                      f"{r.rx_bytes / 1024:.1f}", f"{r.tx_bytes / 1024:.1f}", state))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 1, 2, 10) else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*line) for line in lines)])


async def run(stack: Stack, opts: Options, progress: Progress = print) -> Result:
    """Run every phase against ``stack``; cleans up what it made through Spider unless ``opts.keep``."""
    conn = f"{opts.cloud}-monitoring-config"
    result = Result(opts.n, conn)
    collector: Collector | None = None
    metering: Metering | None = None
    fleet: fleet_mod.Fleet | None = None
    async with AsyncSpiderClient(stack.spider_url, timeout=900) as client:
        try:
            public = await asyncio.to_thread(ensure_cloud, stack, opts.cloud)
            await asyncio.to_thread(_require_empty, stack, opts)
            await fleet_mod.register_connection(client, stack.twin_url, opts.cloud, conn)
            progress(f"create: {opts.n} VMs through Spider ({stack.spider_url}, connection {conn}) "
                     f"on Cloud-Twin {stack.twin_url}, cloud {opts.cloud} (public range {public})")
            t0 = time.monotonic()
            holder: list[fleet_mod.Fleet] = []
            try:
                fleet = await fleet_mod.create(client, conn, opts.prefix, opts.n, stack.workdir,
                                               parallel=opts.parallel, progress=progress, made=holder)
            finally:
                fleet = fleet or (holder[0] if holder else None)
            result.timings["create_s"] = round(time.monotonic() - t0, 2)
            progress(f"  Spider answered for all {opts.n} VMs (ACTIVE, with a PublicIP) in {result.timings['create_s']:.1f} s; "
                     "they are still booting")
            await _check_server_ids(stack, opts.cloud, fleet.vms, progress)
            host = await _collector_host(stack, opts.cloud)
            collector = await Collector(host).start()
            result.collector = f"{host}:{collector.port}"
            progress(f"agents: installing over ssh (cb-user, the key Spider returned); collector on udp {result.collector}")
            t1 = time.monotonic()
            await fleet_mod.install_agents(fleet, AGENT, (host, collector.port), progress=progress)
            all_in = await _wait_hosts(collector, opts.n, 30, progress)
            result.timings["agents_s"] = round(time.monotonic() - t1, 2)
            result.hosts_seen = len(collector.hosts)
            metering = Metering(stack.twin_url, [vm.server_id for vm in fleet.vms], period=opts.meter_every).start()
            result.check("the collector sees every VM as a distinct host", all_in and result.hosts_seen == opts.n,
                         f"{result.hosts_seen}/{opts.n} distinct hostnames, "
                         f"{len({r.address for r in collector.hosts.values()})} distinct source addresses", progress)
            progress(f"steady: {opts.observe:g} s of reporting")
            await _watch(collector, opts.observe, opts.n, "steady", progress, opts.silent_after)
            if opts.outage > 0:
                await _outage(stack, client, fleet, collector, opts, result, progress)
            if opts.crash > 0:
                await _crash(stack, fleet, collector, opts, result, progress)
            result.rows = await _rows(fleet, collector, metering, result)
            if opts.crash > 0:
                off = sorted(r.hostname for r in result.rows if not r.running)
                result.check("the twin shows the crashed VMs' processes gone, the others running",
                             off == result.crashed, f"{len(off)} VMs without processes: "
                             f"{'the crashed ones' if off == result.crashed else off}", progress)
        finally:
            if metering is not None:
                await metering.close()
            if collector is not None:
                collector.close()
            if fleet is not None and not opts.keep:
                progress("cleanup: deleting through Spider")
                result.cleanup_problems = await fleet_mod.delete(fleet, progress)
    return result


def summary(result: Result, opts: Options) -> str:
    verdict = "PASS" if result.ok else "FAIL"
    failed = [c.name for c in result.checks if not c.ok]
    parts = [f"monitoring {verdict}: {result.n} VMs through Spider in {result.timings.get('create_s', 0):.1f} s",
             f"{result.hosts_seen}/{result.n} hosts reported"]
    if result.outage_reporting is not None:
        parts.append(f"outage {opts.outage:g} s: {result.outage_reporting}/{result.n} kept reporting")
    if opts.crash:
        parts.append(f"crash {opts.crash}: {len(result.silent)} went silent"
                     f" ({'exactly the crashed ones' if set(result.silent) == set(result.crashed) else 'NOT the crashed ones'})")
    if failed:
        parts.append("failed: " + "; ".join(failed))
    if result.cleanup_problems:
        parts.append(f"{len(result.cleanup_problems)} cleanup problems")
    return ", ".join(parts)
