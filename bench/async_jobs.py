#!/usr/bin/env python3
"""Async jobs and load management: 300 VM creates on a 5 s-build cloud, sync against async; then goodput
past the admission bound.

One Cloud-Twin (``--time-scale 5``: a server build takes ~5 s) and, per run, fresh ``spider serve``
subprocesses with a CLOUDTWIN connection (prerequisites: one VPC, one security group, one key pair).

1. **sync**: ``--vms`` (300) ``POST /spider/vm`` at once, one client connection each; wall time from the
   first send to the last answer, per-request latency p50/p95/p99.
2. **async**: the same creates with ``?async=true``: every job id is back after the *submit* wall time
   (latency p50/p95/p99 of the submits), each job is then long-polled (``GET /spider/job/{id}?wait=``)
   to its end: *completion* wall time, jobs/s, and how many ended done / failed.
3. **goodput**: the admission bound is set to ``--bound`` (100) requests in flight + as many waiting; a
   network create takes ``--latency`` (1 s). For offered concurrency 1x, 2x, 5x and 10x the bound,
   closed-loop clients create VPCs for ``--duration`` s, honouring ``Retry-After`` on 503; goodput is
   successful creates per second. Target: at 2x, 5x and 10x goodput stays >= 90% of its peak, and no
   answer is anything but 200 or 503.

Every figure is printed with ops/s, p50/p95/p99 and the server's RSS; ``--repeat`` runs everything that
many times and prints medians.

    python bench/async_jobs.py                      # the reference run (300 VMs, bound 100)
    python bench/async_jobs.py --repeat 3 --json out.json
    python bench/async_jobs.py --vms 50 --duration 5 --skip-goodput
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core_throughput import PROVIDERS, Server, register, wait_http  # noqa: E402
from httpload import free_port, pct  # noqa: E402

CONN = PROVIDERS["cloudtwin"]["conn"]
IMAGE, SPEC = "cirros-0.6.2", "m1.tiny"
MULTIPLES = (1, 2, 5, 10)
TARGET = 0.9


def stats(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": round(pct(ordered, 50) * 1000, 1), "p95_ms": round(pct(ordered, 95) * 1000, 1),
            "p99_ms": round(pct(ordered, 99) * 1000, 1)}


async def _post(session: aiohttp.ClientSession, url: str, body: dict, params: dict | None = None
                ) -> tuple[int, Any, dict]:
    async with session.post(url, json=body, params=params) as resp:
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


async def prerequisites(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        for path, info in (("/vpc", {"Name": "bench-vpc", "IPv4_CIDR": "10.0.0.0/16",
                                     "SubnetInfoList": [{"Name": "bench-subnet", "IPv4_CIDR": "10.0.0.0/18"}]}),
                           ("/securitygroup", {"Name": "bench-sg", "VPCName": "bench-vpc", "SecurityRules": [
                               {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22",
                                "CIDR": "0.0.0.0/0"}]}),
                           ("/keypair", {"Name": "bench-key"})):
            status, answer, _ = await _post(s, base + path, {"ConnectionName": CONN, "ReqInfo": info})
            if status != 200:
                raise RuntimeError(f"prerequisite {path}: {status} {answer}")


def vm_body(name: str) -> dict:
    return {"ConnectionName": CONN, "ReqInfo": {"Name": name, "ImageName": IMAGE, "VMSpecName": SPEC,
                                                "VPCName": "bench-vpc", "SubnetName": "bench-subnet",
                                                "SecurityGroupNames": ["bench-sg"], "KeyPairName": "bench-key"}}


async def vm_storm(server: Server, n: int, run_async: bool, tag: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{server.port}/spider"
    names = [f"{tag}-{i:04d}" for i in range(n)]
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as s:
        async def submit(name: str) -> tuple[float, int, Any]:
            t = time.perf_counter()
            status, answer, _ = await _post(s, base + "/vm", vm_body(name), {"async": "true"} if run_async else None)
            return time.perf_counter() - t, status, answer

        started = time.perf_counter()
        answers = await asyncio.gather(*(submit(nm) for nm in names))
        submitted = time.perf_counter() - started
        out: dict[str, Any] = {"n": n, **stats([a[0] for a in answers])}
        if not run_async:
            out.update(wall_s=round(submitted, 2), ok=sum(a[1] == 200 for a in answers),
                       ops_s=round(n / submitted, 1))
            return out
        bad = [a for a in answers if a[1] != 202]
        if bad:
            raise RuntimeError(f"{len(bad)} submits were not 202: {bad[:2]}")

        async def finish(job_id: str) -> dict:
            while True:
                async with s.get(f"{base}/job/{job_id}", params={"wait": "60"}) as resp:
                    job = await resp.json()
                if job["Status"] in ("done", "failed", "cancelled"):
                    return job

        jobs = await asyncio.gather(*(finish(a[2]["Id"]) for a in answers))
        completed = time.perf_counter() - started
        out.update(submit_wall_s=round(submitted, 2), submit_ops_s=round(n / submitted, 1),
                   completion_wall_s=round(completed, 2), jobs_s=round(n / completed, 1),
                   done=sum(j["Status"] == "done" for j in jobs), failed=sum(j["Status"] == "failed" for j in jobs),
                   errors=sorted({j["Error"] for j in jobs if j["Error"]})[:3])
        return out


async def goodput(server: Server, clients: int, seconds: float, tag: str) -> dict[str, Any]:
    base = f"http://127.0.0.1:{server.port}/spider"
    ok, refused, other, latencies = 0, 0, [], []
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300),
                                     connector=aiohttp.TCPConnector(limit=0)) as s:
        async def client() -> None:
            nonlocal ok, refused
            while time.monotonic() < deadline:
                name = f"{tag}-{next(counter)}"
                t = time.perf_counter()
                body = {"ConnectionName": CONN, "ReqInfo": {"Name": name, "IPv4_CIDR": "10.0.0.0/16"}}
                try:
                    status, answer, headers = await _post(s, base + "/vpc", body)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    other.append(repr(exc))
                    continue
                if status == 200:
                    if time.monotonic() <= deadline:
                        ok += 1
                        latencies.append(time.perf_counter() - t)
                elif status == 503 and headers.get("Retry-After"):
                    refused += 1
                    await asyncio.sleep(float(headers["Retry-After"]) * random.uniform(0.5, 1.0))
                else:
                    other.append(f"{status} {answer}")

        await asyncio.gather(*(client() for _ in range(clients)))
    return {"clients": clients, "goodput_s": round(ok / seconds, 1), "ok": ok, "refused_503": refused,
            "other": len(other), "other_examples": other[:3], **stats(latencies or [0.0]),
            "rss_mib": round(server.rss_mb(), 1)}


def start_twin(time_scale: float, profiles: Path) -> tuple[subprocess.Popen, str]:
    """A twin whose profile catalogue is ``profiles`` (the caller's directory, removed by the caller)."""
    port = free_port()
    (profiles / "roomy.yaml").write_text("name: roomy\nextends: openstack\nquotas: {networks: -1, subnets: -1}\n"
                                         "network: {public_cidr: 198.19.0.0/20}\n")  # 4,094 floating IPs
    proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(port), "--time-scale", str(time_scale),
                             "--profiles", str(profiles), "--cloud", "cloud-1=roomy"],
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


async def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    profiles = Path(tempfile.mkdtemp(prefix="bench-async-profiles-"))
    twin, twin_url = start_twin(args.time_scale, profiles)
    try:
        await wait_http(int(twin_url.rsplit(":", 1)[1]), "/_twin/health")
        for mode in () if args.skip_vms else ("sync", "async"):
            server = Server(None)
            try:
                server.start()
                await wait_http(server.port, "/spider/readyz")
                await register(server.port, "cloudtwin", twin_url)
                await prerequisites(f"http://127.0.0.1:{server.port}/spider")
                figures = await vm_storm(server, args.vms, mode == "async", f"r{run}{mode[0]}")
                figures["rss_mib"] = round(server.rss_mb(), 1)
                result[mode] = figures
                print(f"  run {run} {mode:5s} {json.dumps(figures)}", flush=True)
            finally:
                server.stop()
        if not args.skip_goodput:
            async with aiohttp.ClientSession() as s:
                async with s.post(twin_url + "/_twin/faults", json={
                        "kind": "latency", "match": {"operation": "network:network:create"},
                        "fixed": args.latency}) as resp:
                    resp.raise_for_status()
            server = Server(None)
            server.extra_env = {"SPIDER_MAX_INFLIGHT": str(args.bound), "SPIDER_MAX_QUEUED": str(args.bound),
                                "SPIDER_CONN_MAX_INFLIGHT": str(args.bound), "SPIDER_CONN_MAX_QUEUED": str(args.bound)}
            try:
                server.start()
                await wait_http(server.port, "/spider/readyz")
                await register(server.port, "cloudtwin", twin_url)
                result["goodput"] = []
                for multiple in MULTIPLES:
                    g = await goodput(server, args.bound * multiple, args.duration, f"g{run}x{multiple}")
                    g["multiple"] = multiple
                    result["goodput"].append(g)
                    print(f"  run {run} goodput {multiple:2d}x {json.dumps(g)}", flush=True)
            finally:
                server.stop()
    finally:
        os.killpg(twin.pid, signal.SIGTERM)
        twin.wait(20)
        shutil.rmtree(profiles, ignore_errors=True)
    return result


def median_of(runs: list[dict[str, Any]], path: list[Any]) -> float:
    values = []
    for r in runs:
        v: Any = r
        for key in path:
            v = v[key]
        values.append(v)
    return statistics.median(values)


def summary(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    m = lambda *p: median_of(runs, list(p))  # noqa: E731
    if not args.skip_vms:
        vm_summary(m, args)
    if args.skip_goodput:
        return
    goodput_summary(runs, m, args)


def vm_summary(m: Any, args: argparse.Namespace) -> None:
    print(f"\nmedians of {args.repeat} run(s), {args.vms} VM creates on a cloud with ~{args.time_scale:g} s builds:")
    print(f"  sync : wall {m('sync', 'wall_s')} s, {m('sync', 'ops_s')} creates/s, latency p50/p95/p99 "
          f"{m('sync', 'p50_ms')}/{m('sync', 'p95_ms')}/{m('sync', 'p99_ms')} ms, RSS {m('sync', 'rss_mib')} MiB")
    print(f"  async: {args.vms} job ids in {m('async', 'submit_wall_s')} s ({m('async', 'submit_ops_s')} submits/s, "
          f"submit p50/p95/p99 {m('async', 'p50_ms')}/{m('async', 'p95_ms')}/{m('async', 'p99_ms')} ms); all "
          f"finished in {m('async', 'completion_wall_s')} s ({m('async', 'jobs_s')} jobs/s), done "
          f"{m('async', 'done')}, failed {m('async', 'failed')}, RSS {m('async', 'rss_mib')} MiB")


def goodput_summary(runs: list[dict[str, Any]], m: Any, args: argparse.Namespace) -> None:
    print(f"  goodput, bound {args.bound} in flight + {args.bound} waiting, {args.latency:g} s creates:")
    peaks = [max(g["goodput_s"] for g in r["goodput"]) for r in runs]
    verdicts = []
    for i, multiple in enumerate(MULTIPLES):
        gp = m("goodput", i, "goodput_s")
        share = statistics.median(r["goodput"][i]["goodput_s"] / peak for r, peak in zip(runs, peaks))
        other = max(r["goodput"][i]["other"] for r in runs)
        ok = multiple == 1 or (share >= TARGET and other == 0)
        verdicts.append(ok)
        print(f"    {multiple:2d}x ({args.bound * multiple:5d} clients): {gp} creates/s ({share:.0%} of peak), "
              f"503 {m('goodput', i, 'refused_503')}, other {other}, p50/p95/p99 {m('goodput', i, 'p50_ms')}/"
              f"{m('goodput', i, 'p95_ms')}/{m('goodput', i, 'p99_ms')} ms, RSS {m('goodput', i, 'rss_mib')} MiB"
              f"{'' if ok else '  <- below target'}")
    print(f"  target (>= {TARGET:.0%} of peak at 2x/5x/10x, nothing but 200/503): "
          f"{'met' if all(verdicts) else 'NOT met'}")


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for run in range(1, args.repeat + 1):
        runs.append(await one_run(args, run))
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vms", type=int, default=300, help="VM creates (default 300)")
    ap.add_argument("--time-scale", type=float, default=5.0, help="Cloud-Twin time scale: ~N s builds (default 5)")
    ap.add_argument("--bound", type=int, default=100, help="admission bound for the goodput phase (default 100)")
    ap.add_argument("--latency", type=float, default=1.0, help="network create latency, goodput phase (default 1 s)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per goodput step (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs; medians are printed (default 1)")
    ap.add_argument("--skip-goodput", action="store_true", help="only the VM creates")
    ap.add_argument("--skip-vms", action="store_true", help="only the goodput steps")
    ap.add_argument("--json", default="", help="write every run's figures to this file")
    args = ap.parse_args()
    runs = asyncio.run(main_async(args))
    summary(runs, args)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
