"""Measure the MOCK provider's moto speed: ``python bench/moto_driver.py [--no-speedups] [--inprocess] [-n 300]``.

moto runs where the MOCK provider runs it: in the worker process by default, in this process with
``SPIDERTWIN_MOTO_INPROCESS=1`` (or ``--inprocess``).

Creates VPCs (each with one subnet) through ``MockDriver`` one after another, then gets them with
50 concurrent callers (coalesced), and prints rates.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from mock_driver.driver import MockDriver
from mock_driver import backends
from mock_driver.moto_backend import MotoBackend
from mock_driver.moto_worker import MotoWorkerBackend
from spider_core.drivers.base import ConnectionInfo
from spider_core.model import IID, SubnetInfo, VPCReqInfo


async def run(n: int, speedups: bool, clients: int) -> None:
    if backends.inprocess_mode():
        MotoBackend._instance = MotoBackend(speedups=speedups)
        backends.set_backend(MotoBackend._instance)
    else:
        backends.set_backend(MotoWorkerBackend(speedups=speedups))
    print(f"moto: {type(backends.current_backend()).__name__}")
    conn = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": f"bench-{speedups}"}, "default"))
    vpc = conn.vpc
    await vpc.create_vpc(VPCReqInfo(IID("warm"), "10.0.0.0/16", [SubnetInfo(IID("warm-s"), "", "10.0.1.0/24")]))
    t = time.perf_counter()
    created = []
    for i in range(n):
        created.append(await vpc.create_vpc(VPCReqInfo(IID(f"v{i}"), "10.0.0.0/16",
                                                       [SubnetInfo(IID(f"s{i}"), "", "10.0.1.0/24")])))
    dt = time.perf_counter() - t
    print(f"speedups={speedups}: {n / dt:.0f} VPC creates/s (VPC + 1 subnet, sequential)")
    t = time.perf_counter()
    for v in created[:200]:
        await vpc.get_vpc(v.iid)
    dt = time.perf_counter() - t
    print(f"speedups={speedups}: {200 / dt:.0f} single GetVPC/s (sequential)")

    async def worker(k: int) -> int:
        done = 0
        for j in range(20):
            await vpc.get_vpc(created[(k * 20 + j) % len(created)].iid)
            done += 1
        return done

    t = time.perf_counter()
    total = sum(await asyncio.gather(*(worker(k) for k in range(clients))))
    dt = time.perf_counter() - t
    print(f"speedups={speedups}: {total / dt:.0f} GetVPC/s with {clients} concurrent callers (coalesced)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--no-speedups", action="store_true")
    ap.add_argument("--inprocess", action="store_true", help="moto in this process (no worker)")
    args = ap.parse_args()
    if args.inprocess:
        import os
        os.environ[backends.INPROCESS_ENV] = "1"
    try:
        asyncio.run(run(args.n, not args.no_speedups, args.clients))
    finally:
        backends.shutdown_backend()


if __name__ == "__main__":
    main()
