"""The "one parent" scenarios of ``splock_vs_global.py --one-parent``: many creates under one VPC.

Creates that share a parent are where the lock modes part: CB-Spider (``--lock-mode cbspider``) takes
the VPC's *write* lock for an SG create and a subnet add, so N of them in one VPC queue one after the
other (N x one create); the sponge lock hierarchy takes a *read* lock on the VPC, so they run together.
A VM create locks only its own name in CB-Spider and reads its VPC, subnet, SG and key in the sponge
mode: both run together, and the scenario shows what the hierarchy's extra read locks cost.

Per lock mode, one ``spider serve --lock-mode MODE`` with a CLOUDTWIN connection on one Cloud-Twin
(``--time-scale`` small, so a VM build is not what is timed); per scenario a Cloud-Twin latency fault
makes that create's cloud call take ``--latency`` (1 s), then:

1. one create, timed (median of ``--repeat``): the single-create latency;
2. N creates at once (one client connection each), wall from the first send to the last answer
   (median of ``--repeat``), per-request p50/p95/p99, the server's RSS, the lock monitor's peaks;
3. untimed: the N children deleted, the count checked, no lock entry left.

| scenario | N | cloud call slowed |
|---|---|---|
| sg | 100 SG creates in one VPC | ``network:security_group:create`` |
| subnet | 50 subnet adds to one VPC | ``network:subnet:create`` |
| vm | 100 VM creates sharing one subnet, SG and key pair | ``compute:server:create`` |

Each row: wall / one create per mode and their ratio; target <= 1.5x in sponge mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable

from concurrency.monitor import LockMonitor
from core_throughput import PROVIDERS, Server, call, register, wait_http
from httpload import Req, build, free_port, pct

CONN = PROVIDERS["cloudtwin"]["conn"]
TARGET = 1.5
IMAGE, SPEC = "cirros-0.6.2", "m1.tiny"
VPC, SUBNET, SG, KEY = "op-vpc", "op-subnet", "op-sg", "op-key"


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int
    operation: str                               # the Cloud-Twin operation that gets the latency
    create: Callable[[str], tuple[str, dict]]    # child name -> (path, ReqInfo)
    delete: Callable[[str], str]                 # child name -> DELETE path
    count_path: str                              # a GET answering the children that exist
    title: str


def _sg(name: str) -> tuple[str, dict]:
    return "/spider/securitygroup", {"Name": name, "VPCName": VPC, "SecurityRules": [
        {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}]}


def _subnet(name: str) -> tuple[str, dict]:
    index = int(name.rsplit("-", 1)[1])
    return f"/spider/vpc/{VPC}/subnet", {"Name": name, "IPv4_CIDR": f"10.0.{10 + index}.0/24"}


def _vm(name: str) -> tuple[str, dict]:
    return "/spider/vm", {"Name": name, "ImageName": IMAGE, "VMSpecName": SPEC, "VPCName": VPC,
                          "SubnetName": SUBNET, "SecurityGroupNames": [SG], "KeyPairName": KEY}


SCENARIOS = {
    "sg": Scenario("sg", 100, "network:security_group:create", _sg, lambda n: f"/spider/securitygroup/{n}",
                   f"/spider/securitygroup/vpc/{VPC}?ConnectionName={CONN}", "SG creates in one VPC"),
    "subnet": Scenario("subnet", 50, "network:subnet:create", _subnet, lambda n: f"/spider/vpc/{VPC}/subnet/{n}",
                       f"/spider/vpc/{VPC}?ConnectionName={CONN}", "subnet adds to one VPC"),
    "vm": Scenario("vm", 100, "compute:server:create", _vm, lambda n: f"/spider/vm/{n}",
                   f"/spider/vm?ConnectionName={CONN}", "VM creates sharing one subnet, SG and key"),
}


@dataclass
class Run:
    wall_s: float
    failures: int
    p50_s: float
    p95_s: float
    p99_s: float
    rss_mib: float
    peak_holders: int
    peak_waiters: int
    failure_samples: list[str] = field(default_factory=list)


@dataclass
class Figures:
    mode: str
    scenario: str
    n: int
    single_s: list[float] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def single(self) -> float:
        return statistics.median(self.single_s) if self.single_s else float("nan")

    @property
    def wall(self) -> float:
        return statistics.median(r.wall_s for r in self.runs) if self.runs else float("nan")

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs) if self.runs else float("nan")


def _req(port: int, method: str, path: str, req_info: dict | None) -> Req:
    body = {"ConnectionName": CONN, **({"ReqInfo": req_info} if req_info is not None else {})}
    return build(f"127.0.0.1:{port}", Req(method, path, json.dumps(body, separators=(",", ":")).encode()))


async def _post(port: int, path: str, req_info: dict) -> None:
    status, answer = await call(port, "POST", path, {"ConnectionName": CONN, "ReqInfo": req_info})
    if status != 200:
        raise RuntimeError(f"POST {path}: {status} {answer}")


async def parents(port: int) -> None:
    """The one VPC (with the subnet VMs use), SG and key pair every scenario shares; untimed."""
    await _post(port, "/spider/vpc", {"Name": VPC, "IPv4_CIDR": "10.0.0.0/16",
                                      "SubnetInfoList": [{"Name": SUBNET, "IPv4_CIDR": "10.0.1.0/24"}]})
    await _post(port, "/spider/securitygroup", _sg(SG)[1])
    await _post(port, "/spider/keypair", {"Name": KEY})


async def _latency(twin_port: int, operation: str | None, latency: float) -> None:
    status, answer = await call(twin_port, "DELETE", "/_twin/faults")
    if status >= 300:
        raise RuntimeError(f"clearing faults: {status} {answer}")
    if operation:
        status, answer = await call(twin_port, "POST", "/_twin/faults",
                                    {"kind": "latency", "match": {"operation": operation}, "fixed": latency})
        if status >= 300:
            raise RuntimeError(f"latency fault on {operation}: {status} {answer}")


async def _children(port: int, sc: Scenario, names: list[str]) -> int:
    status, answer = await call(port, "GET", sc.count_path)
    if status != 200:
        raise RuntimeError(f"GET {sc.count_path}: {status} {answer}")
    text = json.dumps(answer)
    return sum(f'"{n}"' in text for n in names)


async def burst(server: Server, sc: Scenario, names: list[str]) -> tuple[Run, list[str]]:
    from splock_vs_global import send_all  # the same client as the distinct-VPC bursts

    port = server.port
    reqs = [_req(port, "POST", *sc.create(n)) for n in names]
    async with LockMonitor(f"http://127.0.0.1:{port}", interval=0.1, hold_threshold_s=3600, grace_s=0.2) as mon:
        wall, lat, failures = await send_all(port, reqs)
    s = mon.summary()
    run = Run(wall, len(failures), pct(lat, 50), pct(lat, 95), pct(lat, 99), server.rss_mb(), s["peak_holders"],
              s["peak_waiters"], failures[:3])
    _, _, delete_failures = await send_all(port, [_req(port, "DELETE", sc.delete(n), None) for n in names])
    return run, delete_failures


async def scenario(server: Server, twin_port: int, sc: Scenario, mode: str, args: argparse.Namespace) -> Figures:
    out = Figures(mode, sc.name, sc.n)
    await _latency(twin_port, sc.operation, args.latency)
    try:
        for k in range(args.repeat):
            name = f"{sc.name}-one{k}-0"
            run, delete_failures = await burst(server, sc, [name])
            out.single_s.append(run.wall_s)
            out.problems += [f"single create: {f}" for f in run.failure_samples]
            out.problems += [f"single delete: {f}" for f in delete_failures[:1]]
        for k in range(args.repeat):
            names = [f"{sc.name}-r{k}-{i}" for i in range(sc.n)]
            run, delete_failures = await burst(server, sc, names)
            out.runs.append(run)
            left = await _children(server.port, sc, names)
            _, view = await call(server.port, "GET", "/spider/splockinfo?detail=true")
            entries = len(view.get("entries") or [])
            print(f"  {mode:8s} {sc.name:6s} N={sc.n:<3} run {k + 1}: wall {run.wall_s:7.2f} s "
                  f"({run.wall_s / out.single:.2f}x one create), p50/p95/p99 {run.p50_s:.2f}/{run.p95_s:.2f}/"
                  f"{run.p99_s:.2f} s, failures {run.failures}, lock peak holders {run.peak_holders} waiters "
                  f"{run.peak_waiters}, RSS {run.rss_mib:.0f} MiB; after delete: {left} left, lock entries "
                  f"{entries}", flush=True)
            for f in run.failure_samples:
                print(f"      failure: {f}")
            if run.failures or delete_failures or left or entries:
                out.problems.append(f"run {k + 1}: {run.failures} failures, {len(delete_failures)} failed "
                                    f"deletes, {left} children and {entries} lock entries left")
    finally:
        await _latency(twin_port, None, 0.0)
    return out


def start_twin(time_scale: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(port), "--time-scale", str(time_scale)],
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, port


async def run_mode(mode: str, names: list[str], twin_port: int, args: argparse.Namespace) -> list[Figures]:
    server = Server(mode)
    server.extra_env = {"SPIDER_VM_IP_TIMEOUT": "120"}
    try:
        server.start()
        await wait_http(server.port, "/spider/readyz", timeout=60)
        await register(server.port, "cloudtwin", f"http://127.0.0.1:{twin_port}")
        await parents(server.port)
        out = []
        for name in names:
            figures = await scenario(server, twin_port, SCENARIOS[name], mode, args)
            print(f"  {mode:8s} {name:6s} single create {figures.single:.3f} s "
                  f"({', '.join(f'{s:.3f}' for s in figures.single_s)})", flush=True)
            out.append(figures)
        return out
    finally:
        server.stop()


def report(results: list[Figures], args: argparse.Namespace) -> bool:
    by = {(f.mode, f.scenario): f for f in results}
    modes = list(dict.fromkeys(f.mode for f in results))
    print(f"\n==== one parent (median of {args.repeat}; latency fault {args.latency:g} s on the scenario's "
          f"create call) ====")
    head = f"{'scenario':48s} {'N':>4}"
    for m in modes:
        head += f" {m + ' one s':>14} {m + ' wall s':>15} {m + ' x one':>14}"
    if len(modes) == 2:
        head += f" {modes[1] + '/' + modes[0]:>18} {'target':>6}"
    print(head)
    ok = True
    for name in args.one_parent:
        sc = SCENARIOS[name]
        row = f"{sc.n} {sc.title}"
        row = f"{row:48s} {sc.n:4d}"
        for m in modes:
            f = by[(m, name)]
            row += f" {f.single:14.3f} {f.wall:15.2f} {f.wall / f.single:14.2f}"
        if len(modes) == 2:
            a, b = by[(modes[0], name)], by[(modes[1], name)]
            sponge = by.get(("sponge", name))
            verdict = ""
            if sponge is not None:
                verdict = "PASS" if sponge.wall / sponge.single <= TARGET else "MISS"
            row += f" {b.wall / a.wall:18.1f} {verdict:>6}"
        print(row)
    print(f"\ntarget: sponge wall <= {TARGET}x one create for every scenario")
    print("\nper mode: ops/s, per-request p50/p95/p99 s, server RSS MiB, lock peak holders / waiters (medians)")
    for f in results:
        print(f"  {f.mode:8s} {f.scenario:6s} {f.n / f.wall:7.1f} ops/s  p50/p95/p99 {f.median('p50_s'):.2f}/"
              f"{f.median('p95_s'):.2f}/{f.median('p99_s'):.2f}  RSS {f.median('rss_mib'):.0f}  "
              f"holders {f.median('peak_holders'):.0f} waiters {f.median('peak_waiters'):.0f}")
        ok = ok and not f.problems
        for p in f.problems:
            print(f"    problem: {p}")
    print("\ncorrectness: " + ("0 failures; every child deleted, no lock entry left after every run" if ok
                               else "see the problems above"))
    return ok


def main(args: argparse.Namespace) -> int:
    unknown = [n for n in args.one_parent if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}: choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    modes = [m.strip() for m in (args.modes or "sponge,cbspider").split(",") if m.strip()]
    print(f"one parent: {', '.join(args.one_parent)}; modes {modes}; latency {args.latency:g} s; "
          f"repeat {args.repeat}; twin time scale {args.time_scale:g}", flush=True)
    twin, twin_port = start_twin(args.time_scale)
    results: list[Figures] = []
    try:
        asyncio.run(wait_http(twin_port, "/_twin/health"))
        for mode in modes:
            results += asyncio.run(run_mode(mode, args.one_parent, twin_port, args))
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        twin.terminate()
        twin.wait(10)
    ok = report(results, args)
    if args.json:
        from dataclasses import asdict
        with open(args.json, "w") as fh:
            json.dump({"config": {k: v for k, v in vars(args).items()}, "one_parent": [
                {**asdict(f), "single_median_s": f.single, "wall_median_s": f.wall,
                 "wall_over_single": f.wall / f.single} for f in results]}, fh, indent=1)
        print(f"raw figures: {args.json}")
    return 0 if ok else 1
