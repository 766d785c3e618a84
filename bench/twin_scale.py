#!/usr/bin/env python3
"""Cloud-Twin at scale: 10,000 servers across 20 clouds in one twin process.

Starts ``python -m cloudtwin`` on a free loopback port and measures, at the HTTP level (raw Nova/
Neutron/Glance calls with a Keystone token, no SDK in the way):

* start-up: process spawn -> first answer of ``/_twin/health`` (and the twin's own "ready in" figure);
* create: ``POST /servers`` x N spread over the clouds (cloud-1 gets ``--big`` servers so it can be
  listed), C concurrent workers -> creates/s and p50/p95/p99 of the 202 answers; then the time until
  every server is ACTIVE (lifecycle BUILD -> ACTIVE, 1 s +- 0.3 s by default);
* get: ``GET /servers/{id}`` x ``--gets`` -> reads/s and percentiles;
* list: ``GET /servers/detail`` and ``GET /servers`` of the ``--big``-server cloud, ``--list-calls``
  each, one after another -> p50/p95 latency;
* RSS of the twin after the creates and after everything.

    python bench/twin_scale.py                      # 10,000 servers, 20 clouds, C=50, once
    python bench/twin_scale.py --repeat 3           # medians of 3 fresh twins
    python bench/twin_scale.py -n 2000 --clouds 5   # smaller

Targets (from the issue): RSS < 1 GB, create >= 200/s, start-up < 1 s. The load generator runs on the
same 2 cores; its CPU is printed so a reader can see who was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass

import aiohttp

from httpload import RawConn, Req, _cpu_s, _rss_mb, build, free_port, pct

TARGETS = [("create_s", 200.0, ">=", "create >= 200 servers/s"),
           ("rss_mb", 1024.0, "<", "RSS with 10k servers < 1 GB"),
           ("startup_ms", 1000.0, "<", "start-up < 1 s")]


@dataclass
class Result:
    servers: int = 0
    clouds: int = 0
    startup_ms: float = 0.0
    ready_ms: float = 0.0            # the twin's own "ready in" (after imports)
    create_s: float = 0.0
    create_p50: float = 0.0
    create_p95: float = 0.0
    create_p99: float = 0.0
    create_fail: int = 0
    all_active_s: float = 0.0
    get_s: float = 0.0
    get_p50: float = 0.0
    get_p99: float = 0.0
    list_detail_p50: float = 0.0
    list_detail_p95: float = 0.0
    list_brief_p50: float = 0.0
    listed: int = 0
    rss_mb: float = 0.0
    twin_cpu_us_create: float = 0.0
    client_cpu_pct: float = 0.0


class Twin:
    def __init__(self, seed: int) -> None:
        self.port = free_port()
        self.seed = seed
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(self.port),
                                      "--seed", str(self.seed)], stdout=subprocess.PIPE)
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_twin/health", timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("twin exited during start-up")
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("twin did not start within 30 s")
                time.sleep(0.005)
        startup = (time.perf_counter() - t0) * 1000
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        ready = float(line.rsplit("ready in", 1)[1].split("ms")[0]) if "ready in" in line else 0.0
        return startup, ready

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def setup_cloud(s: aiohttp.ClientSession, base: str, cloud: str) -> dict[str, str]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin", "domain": {"name": cloud}}}},
        "scope": {"project": {"name": "bench", "domain": {"name": cloud}}}}}
    async with s.post(f"{base}/v3/auth/tokens", json=body) as r:
        assert r.status == 201, await r.text()
        token = r.headers["X-Subject-Token"]
    h = {"X-Auth-Token": token}
    root = f"{base}/{cloud}/RegionOne"
    async with s.get(f"{root}/image/v2/images", headers=h) as r:
        assert r.status == 200, await r.text()
        image = next(i["id"] for i in (await r.json())["images"] if i["name"].startswith("cirros"))
    async with s.post(f"{root}/network/v2.0/networks", json={"network": {"name": "bench"}}, headers=h) as r:
        assert r.status == 201, await r.text()
        net = (await r.json())["network"]["id"]
    async with s.post(f"{root}/network/v2.0/subnets", headers=h, json={"subnet": {
            "network_id": net, "cidr": "10.0.0.0/16", "ip_version": 4, "name": "bench"}}) as r:
        assert r.status == 201, await r.text()
    return {"token": token, "image": image, "net": net, "path": f"/{cloud}/RegionOne/compute/v2.1"}


async def drive(port: int, reqs: list[Req], concurrency: int, want: int
                ) -> tuple[list[float], list[tuple[Req, bytes]], int]:
    """C workers over one queue; returns sorted latencies (ms), (request, body) of the good answers,
    and the number of answers with another status."""
    host = f"127.0.0.1:{port}"
    for r in reqs:
        build(host, r)
    queue = deque(reqs)
    lat: list[float] = []
    bodies: list[tuple[Req, bytes]] = []
    fails = 0

    async def worker() -> None:
        nonlocal fails
        conn = RawConn("127.0.0.1", port)
        try:
            while queue:
                req = queue.popleft()
                t = time.perf_counter()
                status, body = await conn.request(req.raw)
                lat.append((time.perf_counter() - t) * 1000)
                if status != want:
                    fails += 1
                    if fails <= 3:
                        print(f"    {req.method} {req.path}: {status} {body[:200]!r}", flush=True)
                else:
                    bodies.append((req, body))
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(lat), bodies, fails


def split(n: int, clouds: int, big: int) -> list[int]:
    big = min(big, n)
    rest = n - big
    others = clouds - 1
    per = [big] + [rest // others + (1 if i < rest % others else 0) for i in range(others)] if others else [n]
    return per


async def one_run(args: argparse.Namespace, run: int) -> Result:
    twin = Twin(args.seed + run)
    res = Result(servers=args.servers, clouds=args.clouds)
    try:
        res.startup_ms, res.ready_ms = twin.start()
        base = f"http://127.0.0.1:{twin.port}"
        names = [f"cloud-{i + 1}" for i in range(args.clouds)]
        async with aiohttp.ClientSession() as s:
            setups = [await setup_cloud(s, base, c) for c in names]
        reqs: list[Req] = []
        for st, count in zip(setups, split(args.servers, args.clouds, args.big)):
            for i in range(count):
                body = json.dumps({"server": {"name": f"vm-{i}", "imageRef": st["image"], "flavorRef": "1",
                                              "networks": [{"uuid": st["net"]}]}}).encode()
                reqs.append(Req("POST", st["path"] + "/servers", body, headers={"X-Auth-Token": st["token"]}))
        # interleave clouds, as many tenants at once would
        per_cloud: dict[str, deque[Req]] = {}
        for r in reqs:
            per_cloud.setdefault(r.path, deque()).append(r)
        mixed: list[Req] = []
        while per_cloud:
            for key in list(per_cloud):
                mixed.append(per_cloud[key].popleft())
                if not per_cloud[key]:
                    del per_cloud[key]
        cpu0, ccpu0 = _cpu_s(twin.proc.pid), time.process_time()  # type: ignore[union-attr]
        t0 = time.perf_counter()
        lat, bodies, res.create_fail = await drive(twin.port, mixed, args.concurrency, 202)
        wall = time.perf_counter() - t0
        res.create_s = len(mixed) / wall
        res.create_p50, res.create_p95, res.create_p99 = pct(lat, 50), pct(lat, 95), pct(lat, 99)
        res.twin_cpu_us_create = (_cpu_s(twin.proc.pid) - cpu0) * 1e6 / max(1, len(mixed))  # type: ignore[union-attr]
        res.client_cpu_pct = (time.process_time() - ccpu0) / wall * 100
        owner = {json.loads(b)["server"]["id"]: r.path.rsplit("/servers", 1)[0] for r, b in bodies}
        ids = list(owner)
        # every server ACTIVE: the twin's pending transitions reach 0
        async with aiohttp.ClientSession() as s:
            while True:
                async with s.get(f"{base}/_twin/stats") as r:
                    if (await r.json())["transitions_pending"] == 0:
                        break
                await asyncio.sleep(0.05)
            res.all_active_s = time.perf_counter() - t0
        res.rss_mb = _rss_mb(twin.proc.pid)  # type: ignore[union-attr]
        # gets, spread over all servers
        first = setups[0]
        paths = {s["path"]: s["token"] for s in setups}
        gets = [Req("GET", f"{owner[ids[i % len(ids)]]}/servers/{ids[i % len(ids)]}",
                    headers={"X-Auth-Token": paths[owner[ids[i % len(ids)]]]}) for i in range(args.gets)]
        t0 = time.perf_counter()
        glat, _, gfail = await drive(twin.port, gets, args.concurrency, 200)
        res.get_s = len(gets) / (time.perf_counter() - t0)
        res.get_p50, res.get_p99 = pct(glat, 50), pct(glat, 99)
        # lists of the big cloud, one at a time
        h = {"X-Auth-Token": first["token"]}
        detail = [Req("GET", first["path"] + "/servers/detail", headers=h) for _ in range(args.list_calls)]
        dlat, dbodies, _ = await drive(twin.port, detail, 1, 200)
        res.listed = len(json.loads(dbodies[0][1])["servers"]) if dbodies else 0
        brief = [Req("GET", first["path"] + "/servers", headers=h) for _ in range(args.list_calls)]
        blat, _, _ = await drive(twin.port, brief, 1, 200)
        res.list_detail_p50, res.list_detail_p95 = pct(dlat, 50), pct(dlat, 95)
        res.list_brief_p50 = pct(blat, 50)
        res.rss_mb = max(res.rss_mb, _rss_mb(twin.proc.pid))  # type: ignore[union-attr]
        if gfail:
            print(f"  {gfail} gets failed", flush=True)
    finally:
        twin.stop()
    return res


def show(r: Result, label: str) -> None:
    print(f"{label}: {r.servers} servers / {r.clouds} clouds | start-up {r.startup_ms:.0f} ms (twin ready "
          f"{r.ready_ms:.0f} ms) | create {r.create_s:.0f}/s p50/p95/p99 {r.create_p50:.1f}/{r.create_p95:.1f}/"
          f"{r.create_p99:.1f} ms, {r.create_fail} failed, twin CPU {r.twin_cpu_us_create:.0f} µs/create, all ACTIVE "
          f"after {r.all_active_s:.1f} s | get {r.get_s:.0f}/s p50/p99 {r.get_p50:.1f}/{r.get_p99:.1f} ms | list "
          f"{r.listed} servers: detail p50/p95 {r.list_detail_p50:.1f}/{r.list_detail_p95:.1f} ms, brief p50 "
          f"{r.list_brief_p50:.1f} ms | RSS {r.rss_mb:.0f} MiB | client CPU {r.client_cpu_pct:.0f}%", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--servers", type=int, default=10_000)
    p.add_argument("--clouds", type=int, default=20)
    p.add_argument("--big", type=int, default=1000, help="servers in cloud-1, the one that is listed")
    p.add_argument("-c", "--concurrency", type=int, default=50)
    p.add_argument("--gets", type=int, default=5000)
    p.add_argument("--list-calls", type=int, default=20)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default=None, help="write every run and the medians to this file")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runs = []
    for i in range(args.repeat):
        r = asyncio.run(one_run(args, i))
        show(r, f"run {i + 1}")
        runs.append(r)
    med = Result(**{k: statistics.median(getattr(r, k) for r in runs) for k in asdict(runs[0])})
    show(med, f"median of {len(runs)}")
    ok = True
    for key, limit, op, label in TARGETS:
        value = getattr(med, key)
        good = value >= limit if op == ">=" else value < limit
        ok &= good
        print(f"  {'PASS' if good else 'MISS'}  {label}: {value:.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": [asdict(r) for r in runs], "median": asdict(med)}, fh, indent=2)
    return 0 if all(r.create_fail == 0 for r in runs) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
