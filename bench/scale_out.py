"""Spider past one process: creates/s and p99 for 1 replica on SQLite, 1 on PostgreSQL and 3 on
PostgreSQL behind HAProxy, side by side in one run, with the ratios and where the CPU goes; then the
cluster's must-hold checks at full size (300 creates, 100 same-name pairs, kill -9 during 300 async
VM creates) on MOCK with the shared moto server.

    python bench/scale_out.py                    # medians of 5 runs of 1000 creates each + the checks
    python bench/scale_out.py --runs 3 -n 300 --concurrency 64 --no-checks

The throughput phase uses the NULL driver (no cloud latency), so it measures Spider and its MetaDB:
each create is a VPC with one subnet (sponge lock, intent, two IID rows). Every setup gets a fresh
database. "CPU ms/create" splits the machine's CPU between the replicas, PostgreSQL, HAProxy and this
load generator, which is where the time goes on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from spidercluster.config import ClusterConfig  # noqa: E402
from spidercluster.haproxy import start_haproxy  # noqa: E402
from spidercluster.postgres import PostgresServer  # noqa: E402
from spidercluster.procs import Child, free_port, stop_all  # noqa: E402
from spidercluster.replicas import spawn_replica, wait_ready  # noqa: E402
from spidercluster.up import up  # noqa: E402

NULL = "null-config01"


@dataclass
class Result:
    setup: str
    creates_s: float
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_ms: dict[str, float] = field(default_factory=dict)   # per create, by process group


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]


def cpu_of(pids: list[int], *, children: bool = True) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *(proc.children(recursive=True) if children else [])]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def register_null(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for path, body in (("/driver", {"DriverName": "null-driver01", "ProviderName": "NULL", "DriverLibFileName": "x"}),
                           ("/credential", {"CredentialName": "null-cred01", "ProviderName": "NULL",
                                            "KeyValueInfoList": [{"Key": "Name", "Value": "bench"}]}),
                           ("/region", {"RegionName": "null-region01", "ProviderName": "NULL",
                                        "KeyValueInfoList": [{"Key": "Region", "Value": "null-region"}]}),
                           ("/connectionconfig", {"ConfigName": NULL, "ProviderName": "NULL",
                                                  "DriverName": "null-driver01", "CredentialName": "null-cred01",
                                                  "RegionName": "null-region01"})):
            async with s.post(url + path, json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"POST {path}: {r.status} {await r.text()}")


async def storm(url: str, n: int, concurrency: int, prefix: str) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    failed = 0
    names = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            nonlocal failed
            for i in names:
                body = {"ConnectionName": NULL, "ReqInfo": {"Name": f"{prefix}-{i:05d}", "IPv4_CIDR": "10.0.0.0/16",
                                                            "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]}}
                t = time.perf_counter()
                async with s.post(url + "/vpc", json=body) as r:
                    await r.read()
                    failed += r.status != 200
                latencies.append(time.perf_counter() - t)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failed, time.perf_counter() - started


def start_setup(kind: str, state: Path, pg: PostgresServer, db_name: str) -> tuple[str, dict[str, list[int]], list[Child]]:
    """Start one setup; returns its URL, pid groups, and children to stop."""
    env = {} if kind == "1 replica, SQLite" else pg.create_database(db_name)
    count = 3 if kind.startswith("3") else 1
    replicas = [spawn_replica(state, i + 1, env) for i in range(count)]
    children: list[Child] = list(replicas)
    try:
        for child in replicas:
            wait_ready(child)
        url = replicas[0].url + "/spider"
        groups = {"replicas": [c.pid for c in replicas]}
        if count > 1:
            proxy = start_haproxy(state, f"127.0.0.1:{free_port()}", [(c.meta["id"], f"127.0.0.1:{c.meta['port']}")
                                                                      for c in replicas])
            children.append(proxy)
            url = proxy.url + "/spider"
            groups["haproxy"] = [proxy.pid]
    except BaseException:
        stop_all(children)
        raise
    return url, groups, children


def measure(kind: str, pg: PostgresServer, run: int, n: int, concurrency: int) -> Result:
    state = Path(tempfile.mkdtemp(prefix="scale-out-"))
    try:
        url, groups, children = start_setup(kind, state, pg, f"bench_{run}_{len(kind)}_{int(time.time())}")
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    try:
        asyncio.run(register_null(url))
        asyncio.run(storm(url, 50, concurrency, "warm"))  # connections opened, code paths warm
        if pg.child is not None and "PostgreSQL" in kind:
            groups["postgres"] = [pg.child.pid]
        groups["load generator"] = [psutil.Process().pid]  # this process alone (the others are its children)

        def sample() -> dict[str, float]:
            return {k: cpu_of(v, children=k != "load generator") for k, v in groups.items()}

        before = sample()
        latencies, failed, took = asyncio.run(storm(url, n, concurrency, f"r{run}"))
        cpu = {k: round((v - before[k]) * 1000.0 / n, 2) for k, v in sample().items()}
    finally:
        stop_all(children)
        shutil.rmtree(state, ignore_errors=True)
    return Result(kind, n / took, pct(latencies, 50) * 1000, pct(latencies, 99) * 1000, failed, cpu)


SETUPS = ("1 replica, SQLite", "1 replica, PostgreSQL", "3 replicas, PostgreSQL")


def throughput(args: argparse.Namespace, pg: PostgresServer) -> None:
    runs: dict[str, list[Result]] = {k: [] for k in SETUPS}
    for run in range(args.runs):
        for kind in SETUPS:  # interleaved, so a noisy minute hits every setup alike
            r = measure(kind, pg, run, args.n, args.concurrency)
            runs[kind].append(r)
            print(f"  run {run + 1}: {kind:24s} {r.creates_s:7.1f} creates/s  p50 {r.p50_ms:7.1f} ms  "
                  f"p99 {r.p99_ms:7.1f} ms  failed {r.failed}  CPU ms/create {r.cpu_ms}", flush=True)
    print(f"\nmedians of {args.runs} runs, {args.n} VPC creates each at concurrency {args.concurrency} (NULL driver):")
    print(f"  {'setup':24s} {'creates/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s}  CPU ms per create")
    base = None
    sqlite = runs[SETUPS[0]]
    for kind in SETUPS:
        rs = runs[kind]
        rate = statistics.median(r.creates_s for r in rs)
        p50 = statistics.median(r.p50_ms for r in rs)
        p99 = statistics.median(r.p99_ms for r in rs)
        cpu = {k: round(statistics.median(r.cpu_ms.get(k, 0.0) for r in rs), 2) for k in rs[0].cpu_ms}
        base = base or (rate, p99)
        # each run's setups ran back to back, so a run's ratio is the least disturbed by the machine's
        # other load: the median of those ratios is printed beside the ratio of the medians
        paired = statistics.median(r.creates_s / b.creates_s for r, b in zip(rs, sqlite))
        paired_p99 = statistics.median(r.p99_ms / b.p99_ms for r, b in zip(rs, sqlite))
        print(f"  {kind:24s} {rate:10.1f} {p50:8.1f} {p99:8.1f}  {cpu}   "
              f"x{rate / base[0]:.2f} creates/s, x{p99 / base[1]:.2f} p99 vs SQLite "
              f"(per run: x{paired:.2f} creates/s, x{paired_p99:.2f} p99)")
        if any(r.failed for r in rs):
            print(f"  !! {kind}: {sum(r.failed for r in rs)} creates failed")


def checks(args: argparse.Namespace) -> None:
    import cluster_scenarios as scenarios
    state = Path(tempfile.mkdtemp(prefix="scale-out-checks-"))
    cfg = ClusterConfig(state_dir=state, listen=f"127.0.0.1:{free_port()}", replicas=3, lease_seconds=5.0)
    try:
        cluster = up(cfg, log=lambda _line: None)
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    try:
        scenarios.register_mock(cluster.url)
        print("\nmust-hold checks on 3 replicas + HAProxy + PostgreSQL + one moto server (MOCK):")
        print("  ", scenarios.spread_creates(cluster, args.check_creates), flush=True)
        print("  ", scenarios.same_name_pairs(cluster, args.check_pairs), flush=True)
        print("  ", scenarios.kill_during_async_creates(cluster, args.check_async), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-n", type=int, default=1000, help="creates per run and setup (a run of 300 lasts a third "
                                                           "of a second: too short for a steady figure)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-checks", dest="checks", action="store_false")
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument("--check-creates", type=int, default=300)
    parser.add_argument("--check-pairs", type=int, default=100)
    parser.add_argument("--check-async", type=int, default=300)
    args = parser.parse_args()
    if args.throughput:
        base = Path(tempfile.mkdtemp(prefix="scale-out-pg-"))
        pg = PostgresServer(base)
        pg.start()
        try:
            throughput(args, pg)
        finally:
            pg.stop()
            shutil.rmtree(base, ignore_errors=True)
    if args.checks:
        checks(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
