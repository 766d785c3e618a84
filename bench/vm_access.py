#!/usr/bin/env python3
"""Twin VMs you can log into, at 100 VMs: creation to SSH-ready, memory per VM, parallel ssh, agents.

Each run starts Cloud-Twin (``--dataplane netns``, VM runtime ``machine``) and Spider as loopback
subprocesses (``examples/monitoring/stack.py``), registers a CLOUDTWIN connection and measures:

1. **create**: N ``POST /spider/vm`` at once (key pair, VPC and SG made first, untimed), from the first
   request until the twin says every VM is ``ssh_ready`` (``GET /_twin/vms/{id}``, polled every 0.5 s);
   also when the last Spider create answered (Spider probes SSH before it answers) and the creates'
   latency percentiles.
2. **memory per VM**, with the N VMs idle (tini, sh, sshd, sleep): the VMs' cgroups (``memory.usage_in_bytes``
   on cgroup v1, ``memory.current`` on v2: their processes plus the kernel memory charged to them),
   plus the kernel's share that no VM cgroup is charged for (network namespaces, veths, bridges ports,
   nftables tables, mounts): the growth of ``Slab + KernelStack + PageTables + Percpu`` in
   ``/proc/meminfo`` from before the first create, minus the kernel memory the VMs' cgroups were
   charged (``memory.kmem.usage_in_bytes`` / ``memory.stat``), so nothing is counted twice. Reported
   apart, not in the total: the VMs' disks (their overlay upper directories, on the twin's tmpfs) and
   the twin's RSS growth. The machine is shared, so the kernel figure has noise: take the median.
3. **ssh**: N ``ssh -i key cb-user@<PublicIP> hostname`` started at once with the real client (each
   target checked to be routed over the twin's link first); wall time, latency percentiles, and every
   answer must be the VM's own name.
4. **agents**: the monitoring example's agent installed over ssh in every VM, then ``--report-seconds``
   (60) of every agent reporting once a second to a UDP collector on the host link: reports received
   against expected, hosts, and CPU in % of one core of the twin process, of all the VMs' cgroups
   together, and of this process (the collector).

Then everything is deleted through Spider and both servers are stopped. ``--repeat K`` prints every run
and the medians. Needs root, iproute2, nftables, openssh-server/-client and tini.

    sudo python bench/vm_access.py                 # N=100, once
    sudo python bench/vm_access.py --repeat 3
    sudo python bench/vm_access.py -n 20 --report-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from httpload import _cpu_s, _rss_mb, pct  # noqa: E402

from cloudtwin.dataplane import cgroups  # noqa: E402
from examples.monitoring import fleet as fleet_mod  # noqa: E402
from examples.monitoring.collector import Collector  # noqa: E402
from examples.monitoring.scenario import AGENT  # noqa: E402
from examples.monitoring.stack import Stack, ensure_cloud, open_stack  # noqa: E402
from spider_core.client import AsyncSpiderClient  # noqa: E402

KERNEL_FIELDS = ("Slab", "KernelStack", "PageTables", "Percpu")
MIB = 2 ** 20
TARGETS = [("ready_s", 30.0, "<=", "create to all SSH-ready <= 30 s"),
           ("mem_per_vm_mib", 8.0, "<=", "memory per VM (cgroup + kernel share) <= 8 MiB"),
           ("ssh_wall_s", 10.0, "<=", "N parallel ssh ... hostname <= 10 s")]


@dataclass
class Result:
    n: int = 0
    ready_s: float = 0.0            # first create request -> every VM ssh_ready (twin)
    spider_done_s: float = 0.0      # first create request -> last Spider create answered
    create_per_s: float = 0.0
    create_p50: float = 0.0         # seconds per Spider VM create
    create_p95: float = 0.0
    create_p99: float = 0.0
    cg_per_vm_mib: float = 0.0      # the VM's cgroup: processes + kernel memory charged to it
    kernel_per_vm_mib: float = 0.0  # kernel memory no VM cgroup is charged for
    mem_per_vm_mib: float = 0.0     # the two together
    disk_per_vm_mib: float = 0.0    # the VM's overlay upper dir on the twin's tmpfs (not in the total)
    twin_rss_per_vm_mib: float = 0.0
    twin_rss_mib: float = 0.0
    spider_rss_mib: float = 0.0
    ssh_wall_s: float = 0.0
    ssh_per_s: float = 0.0
    ssh_p50: float = 0.0
    ssh_p95: float = 0.0
    ssh_p99: float = 0.0
    ssh_fail: int = 0
    install_s: float = 0.0
    report_s: float = 0.0
    reports: int = 0
    reports_expected: int = 0
    report_hosts: int = 0
    twin_cpu_pct: float = 0.0       # of one core, during the reporting window
    vms_cpu_pct: float = 0.0
    collector_cpu_pct: float = 0.0
    host_busy_pct: float = 0.0      # the whole machine (all cores, every user), for context


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) * 1024
    return out


def kernel_bytes(info: dict[str, int]) -> int:
    return sum(info.get(k, 0) for k in KERNEL_FIELDS)


def host_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def vm_groups(prefix: str) -> list[cgroups.VmCgroup]:
    layout = cgroups.detect()
    if layout is None:
        return []
    base = layout.unified / cgroups.TOP / prefix
    return [cgroups.VmCgroup(layout, prefix, d.name) for d in sorted(base.iterdir()) if d.is_dir()] \
        if base.is_dir() else []


def cgroup_kmem(g: cgroups.VmCgroup) -> int:
    """Kernel memory charged to one VM's cgroup (already inside its usage figure)."""
    mem = g.layout.memory
    if mem is None:
        return 0
    try:
        if not g.layout.pure_v2:
            return int((mem / g.rel / "memory.kmem.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (mem / g.rel / "memory.stat").read_text().splitlines())
        return int(stat.get("kernel", 0)) or sum(int(stat.get(k, 0)) for k in
                                                  ("slab", "kernel_stack", "pagetables", "percpu", "sock"))
    except (OSError, ValueError):
        return 0


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


async def wait_ready(session: aiohttp.ClientSession, stack: Stack, cloud: str, n: int, started: float,
                     say: Any) -> float:
    """Seconds from ``started`` until the twin reports ``n`` ssh-ready VMs in ``cloud``."""
    ready: set[str] = set()
    last = time.monotonic()
    while len(ready) < n:
        async with session.get(stack.twin_url + "/_twin/dataplane") as r:
            servers = [s["server_id"] for s in (await r.json())["servers"] if s["cloud"] == cloud]

        async def one(sid: str) -> None:
            async with session.get(stack.twin_url + f"/_twin/vms/{sid}") as r:
                if r.status == 200:
                    info = await r.json()
                    if info.get("ssh_ready") and info.get("host_reachable"):
                        ready.add(sid)

        await asyncio.gather(*(one(s) for s in servers if s not in ready))
        if time.monotonic() - last >= 2:
            last = time.monotonic()
            say(f"    {len(ready)}/{n} VMs ssh-ready after {last - started:.1f} s")
        if len(ready) < n:
            await asyncio.sleep(0.5)
    return time.monotonic() - started


async def parallel_ssh(fleet: fleet_mod.Fleet, res: Result) -> None:
    for vm in fleet.vms:                              # untimed: never connect where the twin does not route
        if not await fleet_mod.routed_by_twin(vm.public_ip):
            raise fleet_mod.FleetError(f"{vm.public_ip} is not routed over the twin's link")
    lat: list[float] = []
    fails: list[str] = []

    async def one(vm: fleet_mod.Vm) -> None:
        t = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "ssh", "-i", str(fleet.key_file), *fleet_mod.SSH_OPTS, f"{vm.user}@{vm.public_ip}", "hostname",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        lat.append(time.monotonic() - t)
        if proc.returncode != 0 or not out.decode().strip().startswith(vm.name + "-"):
            fails.append(f"{vm.name}: rc {proc.returncode} {out.decode().strip()!r} {err.decode().strip()[:100]}")

    t0 = time.monotonic()
    await asyncio.gather(*(one(vm) for vm in fleet.vms))
    res.ssh_wall_s = time.monotonic() - t0
    lat.sort()
    res.ssh_per_s = len(lat) / res.ssh_wall_s
    res.ssh_p50, res.ssh_p95, res.ssh_p99 = pct(lat, 50), pct(lat, 95), pct(lat, 99)
    res.ssh_fail = len(fails)
    for f in fails[:5]:
        print(f"    ssh failed: {f}", flush=True)


async def agents(stack: Stack, fleet: fleet_mod.Fleet, cloud: str, prefix: str, seconds: float,
                 res: Result, say: Any) -> None:
    dp = await asyncio.to_thread(stack.twin, "GET", "/dataplane")
    host = next(c["host_ip"] for c in dp["clients"] if c["cloud"] == cloud and c.get("host_ip"))
    collector = await Collector(host).start()
    try:
        t = time.monotonic()
        await fleet_mod.install_agents(fleet, AGENT, (host, collector.port), progress=lambda s: None)
        while len(collector.hosts) < res.n and time.monotonic() - t < 30:
            await asyncio.sleep(0.1)
        res.install_s = time.monotonic() - t
        await asyncio.sleep(2)                        # every agent past its first report
        groups = vm_groups(prefix)
        twin0, self0 = _cpu_s(stack.twin_pid or 0), resource.getrusage(resource.RUSAGE_SELF)
        vms0 = sum(g.cpu_usec() or 0 for g in groups)
        busy0 = host_busy()
        start = time.monotonic()
        say(f"    {len(collector.hosts)} agents installed in {res.install_s:.1f} s; {seconds:g} s of reporting")
        next_line = start + 10
        while (now := time.monotonic()) < start + seconds:
            await asyncio.sleep(min(1.0, start + seconds - now))
            if time.monotonic() >= next_line:
                next_line += 10
                say(f"    {time.monotonic() - start:.0f} s: {collector.reports_between(start, time.monotonic())} reports")
        end = time.monotonic()
        wall = end - start
        twin1, self1 = _cpu_s(stack.twin_pid or 0), resource.getrusage(resource.RUSAGE_SELF)
        vms1 = sum(g.cpu_usec() or 0 for g in groups)
        busy1 = host_busy()
        res.report_s = wall
        res.reports = collector.reports_between(start, end)
        res.reports_expected = int(round(wall)) * res.n
        res.report_hosts = len(collector.reporting(start, end))
        res.twin_cpu_pct = 100 * (twin1 - twin0) / wall
        res.vms_cpu_pct = (vms1 - vms0) / 1e4 / wall
        res.collector_cpu_pct = 100 * ((self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) / wall
        res.host_busy_pct = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    finally:
        collector.close()


async def one_run(args: argparse.Namespace, run: int, say: Any) -> Result:
    res = Result(n=args.vms)
    stack = await asyncio.to_thread(open_stack, None, None, time_scale=args.time_scale)
    cloud, prefix = f"bench-{run}", f"b{run}"
    fleet: fleet_mod.Fleet | None = None
    try:
        twin_prefix = (await asyncio.to_thread(stack.twin, "GET", "/dataplane"))["prefix"]
        await asyncio.to_thread(ensure_cloud, stack, cloud)
        conn = f"{cloud}-config"
        async with AsyncSpiderClient(stack.spider_url, timeout=900) as client, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await fleet_mod.register_connection(client, stack.twin_url, cloud, conn)
            rss0 = _rss_mb(stack.twin_pid or 0)
            mem0 = meminfo()
            lat: list[float] = []
            holder: list[fleet_mod.Fleet] = []
            say(f"  create: {args.vms} VMs through Spider")
            t0 = time.monotonic()
            created = asyncio.ensure_future(fleet_mod.create(
                client, conn, prefix, args.vms, stack.workdir, parallel=args.vms, progress=lambda s: None,
                made=holder, latencies=lat))
            try:
                while not holder or "vm" not in holder[0].made:     # the key, VPC and SG are not timed
                    await asyncio.sleep(0.01)
                t0 = time.monotonic()
                res.ready_s = await wait_ready(session, stack, cloud, args.vms, t0, say)
                fleet = await created
            finally:
                fleet = fleet or (holder[0] if holder else None)
            lat.sort()
            res.spider_done_s = _last_answer(lat)
            res.create_per_s = args.vms / res.spider_done_s
            res.create_p50, res.create_p95, res.create_p99 = pct(lat, 50), pct(lat, 95), pct(lat, 99)
            say(f"  memory: settling {args.settle:g} s")
            await asyncio.sleep(args.settle)
            groups = vm_groups(twin_prefix)
            mem1 = meminfo()
            usage = sum(g.memory_bytes() or 0 for g in groups)
            kmem = sum(cgroup_kmem(g) for g in groups)
            kernel = kernel_bytes(mem1) - kernel_bytes(mem0) - kmem     # may come out negative: noise
            say(f"    cgroups {usage / MIB:.1f} MiB (kernel memory charged to them {kmem / MIB:.1f}); "
                + ", ".join(f"{k} {(mem1.get(k, 0) - mem0.get(k, 0)) / MIB:+.1f}" for k in (*KERNEL_FIELDS, "SUnreclaim", "Shmem"))
                + f" MiB; MemAvailable {(mem1['MemAvailable'] - mem0['MemAvailable']) / MIB:+.1f} MiB")
            res.cg_per_vm_mib = usage / len(groups) / MIB if groups else 0.0
            res.kernel_per_vm_mib = kernel / args.vms / MIB
            res.mem_per_vm_mib = res.cg_per_vm_mib + res.kernel_per_vm_mib
            res.disk_per_vm_mib = dir_bytes(Path("/run/cloudtwin") / twin_prefix) / args.vms / MIB
            res.twin_rss_mib = _rss_mb(stack.twin_pid or 0)
            res.twin_rss_per_vm_mib = (res.twin_rss_mib - rss0) / args.vms
            res.spider_rss_mib = _rss_mb(stack.spider_pid or 0)
            say(f"  ssh: {args.vms} x ssh cb-user@<PublicIP> hostname at once")
            await parallel_ssh(fleet, res)
            say("  agents")
            await agents(stack, fleet, cloud, twin_prefix, args.report_seconds, res, say)
    finally:
        if fleet is not None:
            async with AsyncSpiderClient(stack.spider_url, timeout=900) as client:
                fleet.client = client
                problems = await fleet_mod.delete(fleet, progress=lambda s: None)
            for p in problems:
                say(f"  cleanup problem: {p}")
        await asyncio.to_thread(stack.close)
    return res


def _last_answer(lat: list[float]) -> float:
    """Seconds from the first create to the last Spider answer (every create starts within ms of t0)."""
    return max(lat) if lat else 0.0


def show(r: Result, label: str) -> None:
    print(f"{label}: {r.n} VMs | create -> all SSH-ready {r.ready_s:.1f} s (last Spider answer {r.spider_done_s:.1f} s, "
          f"{r.create_per_s:.1f} VMs/s, create p50/p95/p99 {r.create_p50:.1f}/{r.create_p95:.1f}/{r.create_p99:.1f} s) | "
          f"memory/VM {r.mem_per_vm_mib:.2f} MiB = cgroup {r.cg_per_vm_mib:.2f} + kernel {r.kernel_per_vm_mib:.2f} "
          f"(disk {r.disk_per_vm_mib:.2f}, twin RSS +{r.twin_rss_per_vm_mib:.2f}; twin RSS {r.twin_rss_mib:.0f} MiB, "
          f"Spider RSS {r.spider_rss_mib:.0f} MiB) | ssh x{r.n}: {r.ssh_wall_s:.2f} s, {r.ssh_per_s:.1f}/s, "
          f"p50/p95/p99 {r.ssh_p50:.2f}/{r.ssh_p95:.2f}/{r.ssh_p99:.2f} s, {r.ssh_fail} failed | agents: installed "
          f"in {r.install_s:.1f} s, {r.reports}/{r.reports_expected} reports from {r.report_hosts} hosts in "
          f"{r.report_s:.0f} s, CPU % of one core: twin {r.twin_cpu_pct:.1f}, VMs {r.vms_cpu_pct:.1f}, collector "
          f"{r.collector_cpu_pct:.1f}; machine busy {r.host_busy_pct:.0f}%", flush=True)


def table(med: Result) -> str:
    rows = [("create -> all SSH-ready", f"{med.ready_s:.1f} s", "<= 30 s"),
            ("last Spider create answered", f"{med.spider_done_s:.1f} s ({med.create_per_s:.1f} VMs/s)", ""),
            ("Spider VM create p50 / p95 / p99", f"{med.create_p50:.1f} / {med.create_p95:.1f} / {med.create_p99:.1f} s", ""),
            ("memory per VM (cgroup + kernel)", f"{med.mem_per_vm_mib:.2f} MiB", "<= 8 MiB"),
            ("  of which cgroup / kernel", f"{med.cg_per_vm_mib:.2f} / {med.kernel_per_vm_mib:.2f} MiB", ""),
            ("  disk (tmpfs) / twin RSS per VM", f"{med.disk_per_vm_mib:.2f} / {med.twin_rss_per_vm_mib:.2f} MiB", ""),
            (f"{med.n} parallel ssh ... hostname", f"{med.ssh_wall_s:.2f} s ({med.ssh_per_s:.1f}/s)", "<= 10 s"),
            ("  ssh p50 / p95 / p99", f"{med.ssh_p50:.2f} / {med.ssh_p95:.2f} / {med.ssh_p99:.2f} s", ""),
            ("agents reporting", f"{med.reports:.0f}/{med.reports_expected:.0f} reports, {med.report_hosts:.0f} hosts", ""),
            ("CPU during reporting (% of one core)", f"twin {med.twin_cpu_pct:.1f}, VMs {med.vms_cpu_pct:.1f}, "
             f"collector {med.collector_cpu_pct:.1f}", "")]
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    return "\n".join(f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--vms", type=int, default=100)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--report-seconds", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=3.0, help="seconds between all-ready and the memory reading")
    p.add_argument("--time-scale", type=float, default=1.0, help="the twin's lifecycle delays (BUILD is ~1 s)")
    p.add_argument("--json", default=None, help="write every run and the medians to this file")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("vm_access: needs root (the twin's netns data plane)", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    say = lambda s: print(s, flush=True)  # noqa: E731
    runs = []
    for i in range(args.repeat):
        say(f"run {i + 1}/{args.repeat}")
        r = asyncio.run(one_run(args, i + 1, say))
        show(r, f"run {i + 1}")
        runs.append(r)
    med = Result(**{k: statistics.median(getattr(r, k) for r in runs) for k in asdict(runs[0])})
    show(med, f"median of {len(runs)}")
    print(table(med))
    for key, limit, op, label in TARGETS:
        value = getattr(med, key)
        print(f"  {'PASS' if value <= limit else 'MISS'}  {label}: {value:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": [asdict(r) for r in runs], "median": asdict(med)}, fh, indent=2)
    broken = sum(r.ssh_fail for r in runs) + sum(r.n - r.report_hosts for r in runs)
    print(f"vm_access: {len(runs)} run(s) of {args.vms} VMs, medians: SSH-ready {med.ready_s:.1f} s, "
          f"{med.mem_per_vm_mib:.2f} MiB/VM, {args.vms} ssh in {med.ssh_wall_s:.2f} s, twin CPU "
          f"{med.twin_cpu_pct:.1f}% with {args.vms} agents; {'no failures' if not broken else f'{broken} failures'}")
    return 0 if not broken else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
