#!/usr/bin/env python3
"""Sponge lock vs the old global lock: N concurrent creates of distinct VPCs on a slow cloud.

CB-Spider replaced one lock per resource type with SP-Lock (a lock per resource name) and published:
5 concurrent Azure VPC creates took 69 s with the old lock and 27 s with SP-Lock. This is the same
experiment on Cloud-Twin, where the create latency is fixed: a latency fault makes every Neutron network
create take ``--latency`` s (1 s; the subnet create of each VPC stays fast), so one VPC create takes
about that long. One Cloud-Twin and, per lock mode, one ``spider serve`` subprocess (``--lock-mode
sponge`` then ``global``) with a CLOUDTWIN connection; per mode:

1. single-create latency: one VPC create, timed (median of ``--repeat``);
2. for each N in ``--ns`` (5, 50, 200): N creates of distinct VPCs sent at once (one client connection
   each), wall time from the first send to the last answer (median of ``--repeat``), while the lock
   monitor (``concurrency.monitor``) samples holders and waiters;
3. after each N (untimed): delete the N VPCs, check ``countvpc`` is 0 and no lock entry is left.

Target (issue 5): with the sponge lock N distinct creates finish within 1.5x the single-create latency
for every N up to 200; with the global lock they take about N x.

    python bench/splock_vs_global.py                         # N = 5, 50, 200, both modes, once
    python bench/splock_vs_global.py --repeat 3 --json out.json
    python bench/splock_vs_global.py --global-max-n 50       # global N=200 projected (N x single), not run
    python bench/splock_vs_global.py --modes sponge --max-inflight 64     # a tighter request limiter

Two bounds besides the lock are printed with the figures: the connection's request limiter
(``max_inflight``, 256 by default; ``--max-inflight`` writes a SPIDER_LIMITS_FILE setting it) and the
OpenStack driver's HTTP pool (256 connections per Spider connection). The smaller of the two sets the
*in-flight floor*, ``ceil(N / bound) x latency``: the least any lock mode can do.

``--one-parent sg,subnet,vm`` (or ``all``) runs the "one parent" scenarios instead (``bench/one_parent.py``):
100 SG creates in one VPC, 50 subnet adds to one VPC, 100 VM creates sharing one subnet, SG and key
pair, each at ``--latency`` on its create call, reported as wall / one create for the sponge lock
hierarchy against ``--lock-mode cbspider`` (CB-Spider's exact lock use), side by side in one run:

    python bench/splock_vs_global.py --one-parent all                  # sponge vs cbspider, ~5 min
    python bench/splock_vs_global.py --one-parent sg --repeat 3 --json /tmp/one-parent.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # concurrency/ when run as a script

from concurrency.monitor import LockMonitor  # noqa: E402
from core_throughput import PROVIDERS, Server, call, count_vpcs, register, wait_http  # noqa: E402
from httpload import RawConn, Req, _cpu_s, build, free_port, pct  # noqa: E402

KEY = "cloudtwin"
CONN = PROVIDERS[KEY]["conn"]
HTTP_POOL = 256             # spider_core.drivers.openstack.driver.OpenStackDriver.HTTP_CONNECTIONS
INFLIGHT_DEFAULT = 256      # spider_core/data/limits.yaml default max_inflight
TARGET_RATIO = 1.5
CBSPIDER = "CB-Spider (published): 5 concurrent Azure VPC creates, old lock 69 s, SP-Lock 27 s (ratio 2.6)"


@dataclass
class BurstResult:
    """One burst of N concurrent creates."""

    n: int
    wall_s: float
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    p50_s: float = 0.0
    max_s: float = 0.0
    peak_holders: int = 0
    peak_waiters: int = 0
    long_holds: int = 0          # keys held longer than TARGET_RATIO x the single-create latency
    server_cpu_s: float = 0.0    # Spider process CPU (all threads) during the burst
    twin_cpu_s: float = 0.0
    left_vpcs: int = 0
    left_lock_entries: int = 0


@dataclass
class ModeResult:
    mode: str
    single_s: list[float] = field(default_factory=list)
    bursts: dict[int, list[BurstResult]] = field(default_factory=dict)
    projected: list[int] = field(default_factory=list)   # Ns not run (``--global-max-n``)
    limiter: dict[str, Any] = field(default_factory=dict)  # limitinfo after the last burst
    problems: list[str] = field(default_factory=list)

    @property
    def single(self) -> float:
        return statistics.median(self.single_s) if self.single_s else float("nan")

    def wall(self, n: int) -> float:
        if n in self.projected:
            return n * self.single
        return statistics.median(b.wall_s for b in self.bursts[n])


def create_req(host: str, name: str) -> Req:
    body = json.dumps({"ConnectionName": CONN, "ReqInfo": {
        "Name": name, "IPv4_CIDR": "10.0.0.0/16",
        "SubnetInfoList": [{"Name": f"{name}-sn", "IPv4_CIDR": "10.0.1.0/24"}]}}, separators=(",", ":")).encode()
    return build(host, Req("POST", "/spider/vpc", body))


async def send_all(port: int, reqs: list[Req]) -> tuple[float, list[float], list[str]]:
    """Every request on its own connection, all at once; (wall s, latencies s, failure texts)."""
    conns = [RawConn("127.0.0.1", port) for _ in reqs]
    await asyncio.gather(*(_open(c) for c in conns))  # connected before the clock starts
    lat: list[float] = []
    failures: list[str] = []

    async def one(conn: RawConn, req: Req) -> None:
        t = time.perf_counter()
        try:
            status, body = await conn.request(req.raw)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            status, body = -1, repr(exc).encode()
        lat.append(time.perf_counter() - t)
        if status != 200:
            failures.append(f"{req.method} {req.path} -> {status} {body[:160]!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c, r) for c, r in zip(conns, reqs)))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return wall, sorted(lat), failures


async def _open(conn: RawConn) -> None:
    conn.reader, conn.writer = await asyncio.open_connection(conn.host, conn.port, limit=1 << 20)


async def delete_all(port: int, names: list[str]) -> list[str]:
    host = f"127.0.0.1:{port}"
    body = json.dumps({"ConnectionName": CONN}).encode()
    _, _, failures = await send_all(port, [build(host, Req("DELETE", f"/spider/vpc/{n}", body)) for n in names])
    return failures


async def lock_entries(port: int) -> int:
    status, view = await call(port, "GET", "/spider/splockinfo?detail=true")
    if status != 200:
        raise RuntimeError(f"splockinfo -> {status} {view}")
    return len(view.get("entries") or [])


async def limiter_view(port: int) -> dict[str, Any]:
    status, view = await call(port, "GET", f"/spider/limitinfo?ConnectionName={CONN}")
    return (view.get("limitinfo") or [{}])[0] if status == 200 else {}


async def burst(server: Server, twin_pid: int, n: int, tag: str, single_s: float) -> BurstResult:
    port = server.port
    host = f"127.0.0.1:{port}"
    names = [f"{tag}-{i}" for i in range(n)]
    reqs = [create_req(host, name) for name in names]
    threshold = max(0.5, TARGET_RATIO * single_s) if single_s == single_s else 1.5
    async with LockMonitor(f"http://{host}", interval=0.1, hold_threshold_s=threshold, grace_s=0.2) as mon:
        cpu0, twin0 = server.cpu_s(), _cpu_s(twin_pid)
        wall, lat, failures = await send_all(port, reqs)
        cpu1, twin1 = server.cpu_s(), _cpu_s(twin_pid)
    s = mon.summary()
    res = BurstResult(n, wall, len(failures), failures[:3], pct(lat, 50), lat[-1] if lat else 0.0,
                      s["peak_holders"], s["peak_waiters"], len(s["long_holds"]), cpu1 - cpu0, twin1 - twin0)
    res.failure_samples += [f"delete: {f}" for f in (await delete_all(port, names))[:3]]
    res.left_vpcs = await count_vpcs(port, CONN)
    res.left_lock_entries = await lock_entries(port)
    return res


async def run_mode(mode: str, args: argparse.Namespace, twin_url: str, twin_pid: int) -> ModeResult:
    out = ModeResult(mode)
    server = Server(mode)
    try:
        server.start()
        await wait_http(server.port, "/spider/readyz", timeout=60)
        await register(server.port, KEY, twin_url)
        status, answer = await call(server.port, "GET", f"/spider/vpc?ConnectionName={CONN}")
        if status != 200:
            raise RuntimeError(f"first call: {status} {answer}")
        host = f"127.0.0.1:{server.port}"
        await send_all(server.port, [create_req(host, f"warm-{mode}")])  # token, endpoints, pools: untimed
        await delete_all(server.port, [f"warm-{mode}"])
        for k in range(args.repeat):
            wall, _, failures = await send_all(server.port, [create_req(host, f"one-{k}")])
            await delete_all(server.port, [f"one-{k}"])
            if failures:
                out.problems.append(f"single create: {failures[0]}")
            out.single_s.append(wall)
        print(f"  {mode}: single-create latency {out.single:.3f} s "
              f"({', '.join(f'{s:.3f}' for s in out.single_s)})", flush=True)
        for n in args.ns:
            if mode == "global" and args.global_max_n and n > args.global_max_n:
                out.projected.append(n)
                print(f"  {mode}: N={n:<4} not run (--global-max-n {args.global_max_n}); "
                      f"PROJECTED {n} x {out.single:.3f} s = {n * out.single:.1f} s", flush=True)
                continue
            for k in range(args.repeat):
                r = await burst(server, twin_pid, n, f"{mode[0]}{n}r{k}", out.single)
                out.bursts.setdefault(n, []).append(r)
                print(f"  {mode}: N={n:<4} run {k + 1}: wall {r.wall_s:7.3f} s, p50 {r.p50_s:.3f} s, "
                      f"max {r.max_s:.3f} s, failures {r.failures}, CPU Spider {r.server_cpu_s:.2f} s "
                      f"twin {r.twin_cpu_s:.2f} s, lock peak holders {r.peak_holders} "
                      f"waiters {r.peak_waiters}, keys held > {TARGET_RATIO}x single {r.long_holds}; after delete: "
                      f"countvpc {r.left_vpcs}, lock entries {r.left_lock_entries}", flush=True)
                for f in r.failure_samples:
                    print(f"      failure: {f}")
                if r.failures or r.left_vpcs or r.left_lock_entries:
                    out.problems.append(f"N={n} run {k + 1}: {r.failures} failures, {r.left_vpcs} VPCs and "
                                        f"{r.left_lock_entries} lock entries left")
        out.limiter = await limiter_view(server.port)
    finally:
        server.stop()
    return out


def start_twin() -> tuple[subprocess.Popen[bytes], str, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", port


async def add_latency(twin_port: int, latency: float, ops: list[str]) -> None:
    for op in ops:
        status, answer = await call(twin_port, "POST", "/_twin/faults",
                                    {"kind": "latency", "match": {"operation": op}, "fixed": latency})
        if status >= 300:
            raise RuntimeError(f"latency fault on {op}: {status} {answer}")


def report(results: list[ModeResult], args: argparse.Namespace) -> None:
    by = {r.mode: r for r in results}
    sp, gl = by.get("sponge"), by.get("global")
    bound = min(HTTP_POOL, args.max_inflight or INFLIGHT_DEFAULT)
    print(f"\n==== results (median of {args.repeat}; latency fault {args.latency:g} s on "
          f"{', '.join(args.latency_ops)}) ====")
    for r in results:
        print(f"single-create latency, {r.mode}: {r.single:.3f} s")
    print(f"\n{'N':>4} {'sponge s':>9} {'global s':>10} {'global/sponge':>13} {'sponge/single':>13} "
          f"{'target':>6} {'floor s':>8}")
    for n in args.ns:
        s_wall = sp.wall(n) if sp and n in sp.bursts else float("nan")
        g_wall = gl.wall(n) if gl and (n in gl.bursts or n in gl.projected) else float("nan")
        g_text = f"{g_wall:9.2f}" + ("*" if gl and n in gl.projected else " ")
        ratio = g_wall / s_wall if s_wall == s_wall and g_wall == g_wall else float("nan")
        vs_single = s_wall / sp.single if sp else float("nan")
        verdict = "" if vs_single != vs_single else ("PASS" if vs_single <= TARGET_RATIO else "MISS")
        floor = math.ceil(n / bound) * args.latency
        print(f"{n:4d} {s_wall:9.2f} {g_text:>10} {ratio:13.1f} {vs_single:13.2f} {verdict:>6} {floor:8.1f}")
    if gl and gl.projected:
        print("  * PROJECTED, not measured: N x the global single-create latency (--global-max-n)")
    print(f"\ntarget: sponge wall <= {TARGET_RATIO}x single-create latency for every N (global: about N x)")
    print(CBSPIDER)
    print("\nbounds besides the lock:")
    print(f"  in flight at once: {bound} CSP calls (the smaller of the driver's HTTP pool, {HTTP_POOL}, and "
          f"max_inflight); 'floor' = ceil(N/{bound}) x {args.latency:g} s, the least any lock mode can do")
    for r in results:
        lim = r.limiter
        if lim:
            pol = lim.get("policy", {})
            print(f"  request limiter ({r.mode}): max_inflight {pol.get('max_inflight')}"
                  f"{' (from --max-inflight limits file)' if args.max_inflight else ' (default)'}, "
                  f"peak in flight {lim.get('peak_inflight')}, peak queued {lim.get('peak_queued')}, "
                  f"throttled {lim.get('throttled')}, retries {lim.get('retries')}"
                  + ("  <- the limiter bounded concurrency"
                     if 0 < (pol.get("max_inflight") or 0) <= (lim.get("peak_inflight") or 0) else ""))
    problems = [f"{r.mode}: {p}" for r in results for p in r.problems]
    print("\ncorrectness: " + ("; ".join(problems) if problems else
                               "0 failures; countvpc 0 and no lock entries after every N"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", default="5,50,200", help="comma list of N (default 5,50,200)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure; medians are reported")
    ap.add_argument("--latency", type=float, default=1.0, help="fixed network-create latency, s (default 1.0)")
    ap.add_argument("--latency-ops", default="network:network:create",
                    help="Cloud-Twin operations that get the latency (comma list; add network:subnet:create "
                         "to slow both POSTs of a VPC create)")
    ap.add_argument("--modes", default=None,
                    help="lock modes to run, in order (default sponge,global; with --one-parent sponge,cbspider)")
    ap.add_argument("--one-parent", default="",
                    help="run the one-parent scenarios instead: comma list of sg, subnet, vm, or all")
    ap.add_argument("--time-scale", type=float, default=0.05,
                    help="--one-parent: Cloud-Twin's stage time scale (a small one keeps VM builds out of the figures)")
    ap.add_argument("--global-max-n", type=int, default=0,
                    help="global mode: do not run N above this; print N x single as a PROJECTION")
    ap.add_argument("--max-inflight", type=int, default=0,
                    help=f"write a SPIDER_LIMITS_FILE with this CLOUDTWIN max_inflight (default: {INFLIGHT_DEFAULT})")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args()
    args.ns = [int(x) for x in args.ns.split(",") if x.strip()]
    args.latency_ops = [x.strip() for x in args.latency_ops.split(",") if x.strip()]
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.one_parent:
        import one_parent
        wanted = [x.strip() for x in args.one_parent.split(",") if x.strip()]
        args.one_parent = list(one_parent.SCENARIOS) if wanted == ["all"] else wanted
        return one_parent.main(args)
    modes = [m.strip() for m in (args.modes or "sponge,global").split(",") if m.strip()]

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    limits_dir = None
    if args.max_inflight:
        limits_dir = tempfile.mkdtemp(prefix="splock-bench-")
        path = Path(limits_dir) / "limits.yaml"
        path.write_text(f"providers:\n  CLOUDTWIN: {{max_inflight: {args.max_inflight}}}\n")
        os.environ["SPIDER_LIMITS_FILE"] = str(path)
    print(f"sponge vs global SP-Lock: N={args.ns}, latency {args.latency:g} s on {', '.join(args.latency_ops)}, "
          f"repeat {args.repeat}, modes {modes}"
          + (f", limits file max_inflight={args.max_inflight}" if args.max_inflight else ""), flush=True)
    twin, twin_url, twin_port = start_twin()
    results: list[ModeResult] = []
    try:
        asyncio.run(wait_http(twin_port, "/_twin/health"))
        asyncio.run(add_latency(twin_port, args.latency, args.latency_ops))
        for mode in modes:
            results.append(asyncio.run(run_mode(mode, args, twin_url, twin.pid)))
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        twin.terminate()
        twin.wait(10)
        if limits_dir:
            Path(limits_dir, "limits.yaml").unlink(missing_ok=True)
            os.rmdir(limits_dir)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "cbspider": CBSPIDER, "modes": [
            {**asdict(r), "single_median_s": r.single,
             "wall_median_s": {n: r.wall(n) for n in args.ns if n in r.bursts or n in r.projected}}
            for r in results]}, indent=1))
        print(f"raw figures: {args.json}")
    return 0 if not any(r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
