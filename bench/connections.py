#!/usr/bin/env python3
"""Spider with thousands of simultaneous client connections (no "too many open files").

Starts ``spider serve`` (the ``core_throughput`` server harness), registers the NULL connection (or
MOCK with ``--provider mock``), then opens ``-n`` keep-alive connections *at the same time* (each
connected before any sends), and on every one sends ``--rounds`` requests: a ``GET /spider/vpc`` and,
every other round, a ``POST /spider/vpc`` of its own VPC. Prints: connections held at once (the
server's open fds at the peak), requests, failures, p50/p95/p99, server RSS, and the soft RLIMIT_NOFILE
the server raised.

    python bench/connections.py              # 2,000 connections, 3 rounds, NULL
    python bench/connections.py -n 4000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

from core_throughput import Server, call, register
from httpload import RawConn, Req, build, pct

CONNS = {"null": "null-config01", "mock": "mock-config01"}


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def run(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    server = Server(None)
    try:
        server.start()
        await register(server.port, args.provider)
        conn_name = CONNS[args.provider]
        status, _ = await call(server.port, "GET", f"/spider/vpc?ConnectionName={conn_name}")
        assert status == 200
        host = f"127.0.0.1:{server.port}"
        conns = [RawConn("127.0.0.1", server.port) for _ in range(args.connections)]
        t0 = time.perf_counter()
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", server.port, limit=1 << 20)
                                        for _ in conns), return_exceptions=True)
        failures_open = 0
        for c, o in zip(conns, opened):
            if isinstance(o, BaseException):
                failures_open += 1
            else:
                c.reader, c.writer = o
        connect_s = time.perf_counter() - t0
        await asyncio.sleep(0.5)
        peak_fds = open_fds(server.pid)
        lat: list[float] = []
        failures = 0
        samples: list[str] = []

        async def client(i: int, c: RawConn) -> None:
            nonlocal failures
            for r in range(args.rounds):
                if r % 2 == 1:
                    body = json.dumps({"ConnectionName": conn_name, "ReqInfo": {
                        "Name": f"c{i}-r{r}", "IPv4_CIDR": "10.0.0.0/16",
                        "SubnetInfoList": [{"Name": f"s{i}-r{r}", "IPv4_CIDR": "10.0.1.0/24"}]}}).encode()
                    req = build(host, Req("POST", "/spider/vpc", body))
                else:
                    req = build(host, Req("GET", f"/spider/vpc/c{i}-r{r - 1}?ConnectionName={conn_name}"
                                          if r else f"/spider/vpc?ConnectionName={conn_name}"))
                t = time.perf_counter()
                try:
                    st, body = await c.request(req.raw)
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    st, body = 0, repr(exc).encode()
                lat.append((time.perf_counter() - t) * 1000)
                if st != 200:
                    failures += 1
                    if len(samples) < 3:
                        samples.append(f"{req.method} {req.path}: {st} {body[:160]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(client(i, c) for i, c in enumerate(conns) if c.writer is not None))
        wall = time.perf_counter() - t0
        for c in conns:
            c.close()
        lat.sort()
        limit_line = next((line for line in Path(server.log_path).read_text().splitlines()
                           if "open files" in line), "")
        print(f"connections: {args.connections} opened in {connect_s:.2f} s ({failures_open} failed), "
              f"server fds at peak {peak_fds}; {limit_line.split('open files:')[-1].strip(' )') or '?'} "
              "= server's soft RLIMIT_NOFILE")
        print(f"requests: {len(lat)} in {wall:.2f} s ({len(lat) / wall:.0f}/s), failures {failures}, "
              f"p50/p95/p99 {pct(lat, 50):.1f}/{pct(lat, 95):.1f}/{pct(lat, 99):.1f} ms, "
              f"server RSS {server.rss_mb():.0f} MiB")
        for s in samples:
            print("  " + s)
        return 0 if failures == 0 and failures_open == 0 else 1
    finally:
        server.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--connections", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--provider", choices=sorted(CONNS), default="null")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
