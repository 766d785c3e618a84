#!/usr/bin/env python3
"""Cloud-Twin shards: what a request pays when it reaches a shard that does not hold its cloud.

Starts two shards (``spider twin --cluster FILE --shard a|b``, shared Fernet keys) on free loopback
ports; cloud-a lives on a, cloud-b on b. With C concurrent clients (aiohttp, keep-alive) it measures:

* Keystone login (password, project scope) of cloud-b, sent to its owner b and through a;
* ``GET /cloud-b/RegionOne/network/v2.0/networks`` with a token, sent to b and through a;
* after SIGKILL of b: the same login of cloud-b through a (the 503 a client gets, how fast), and a
  login of cloud-a on a at the same time (unaffected).

Each row: ops/s and p50/p95/p99 in ms; medians over ``--repeat`` fresh pairs of shards. RSS of both
shards at the end of the run. The clients share the 2 cores with both shards.

    python bench/twin_shards.py                 # N=2000 per row, C=20, once
    python bench/twin_shards.py --repeat 3      # medians of 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpload import _rss_mb, free_port, pct  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def login_body(cloud: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin", "domain": {"name": cloud}}}},
        "scope": {"project": {"name": "p1", "domain": {"name": cloud}}}}}


class Shards:
    def __init__(self, root: Path) -> None:
        from cloudtwin import cluster
        from cloudtwin.identity.fernet import KeyRepository

        self.ports = {"a": free_port(), "b": free_port()}
        KeyRepository(root / "keys")
        self.file = root / "cluster.yaml"
        self.file.write_text(cluster.dump({n: f"127.0.0.1:{p}" for n, p in self.ports.items()},
                                          [{"match": "cloud-b", "shard": "b"}, {"match": "*", "shard": "a"}],
                                          key_repo="keys"))
        self.procs: dict[str, subprocess.Popen] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    async def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        for name in self.ports:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--cluster", str(self.file),
                                                 "--shard", name], env=env, stdout=subprocess.DEVNULL,
                                                stdin=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as s:
            for name in self.ports:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        async with s.get(self.url(name) + "/_twin/health") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit(f"shard {name} did not start")
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def measure(s: aiohttp.ClientSession, n: int, c: int, method: str, url: str, *, json: dict | None = None,
                  headers: dict | None = None, want: int) -> dict[str, float]:
    latencies: list[float] = []
    wrong = 0
    todo = iter(range(n))

    async def worker() -> None:
        nonlocal wrong
        for _ in todo:
            t0 = time.perf_counter()
            async with s.request(method, url, json=json, headers=headers) as r:
                await r.read()
                wrong += r.status != want
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {"ops_s": n / elapsed, "p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99),
            "wrong_status": wrong}


async def one_run(n: int, c: int) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        shards = Shards(Path(tmp))
        await shards.start()
        rows: dict[str, dict[str, float]] = {}
        try:
            conn = aiohttp.TCPConnector(limit=c * 2)
            async with aiohttp.ClientSession(connector=conn) as s:
                a, b = shards.url("a"), shards.url("b")
                async with s.post(b + "/v3/auth/tokens", json=login_body("cloud-b")) as r:
                    token = r.headers["X-Subject-Token"]
                nets = "/cloud-b/RegionOne/network/v2.0/networks"
                rows["login cloud-b at its owner b"] = await measure(s, n, c, "POST", b + "/v3/auth/tokens",
                                                                     json=login_body("cloud-b"), want=201)
                rows["login cloud-b through a"] = await measure(s, n, c, "POST", a + "/v3/auth/tokens",
                                                                json=login_body("cloud-b"), want=201)
                rows["GET networks at the owner b"] = await measure(s, n, c, "GET", b + nets,
                                                                    headers={"X-Auth-Token": token}, want=200)
                rows["GET networks through a"] = await measure(s, n, c, "GET", a + nets,
                                                               headers={"X-Auth-Token": token}, want=200)
                rss = {name: _rss_mb(p.pid) for name, p in shards.procs.items()}
                shards.procs["b"].kill()
                shards.procs["b"].wait()
                rows["b killed: login cloud-b through a (503)"] = await measure(
                    s, n, c, "POST", a + "/v3/auth/tokens", json=login_body("cloud-b"), want=503)
                rows["b killed: login cloud-a on a"] = await measure(s, n, c, "POST", a + "/v3/auth/tokens",
                                                                     json=login_body("cloud-a"), want=201)
        finally:
            shards.stop()
        return rows, rss


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=2000, help="requests per row (default 2000)")
    p.add_argument("-c", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--repeat", type=int, default=1, help="fresh pairs of shards; medians are printed (default 1)")
    args = p.parse_args()
    runs = [asyncio.run(one_run(args.n, args.c)) for _ in range(args.repeat)]
    print(f"Cloud-Twin shards: N={args.n} per row, C={args.c}, medians of {args.repeat} run(s)")
    print(f"  {'row':44s} {'ops/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'bad status':>10s}")
    for row in runs[0][0]:
        med = {k: statistics.median(r[0][row][k] for r in runs) for k in ("ops_s", "p50", "p95", "p99", "wrong_status")}
        print(f"  {row:44s} {med['ops_s']:8.0f} {med['p50']:8.2f} {med['p95']:8.2f} {med['p99']:8.2f} "
              f"{med['wrong_status']:10.0f}")
    rss = {name: statistics.median(r[1][name] for r in runs) for name in runs[0][1]}
    print("  RSS after the forwarded rows: " + ", ".join(f"shard {n} {v:.0f} MiB" for n, v in rss.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
