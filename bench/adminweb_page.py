#!/usr/bin/env python3
"""AdminWeb page time with many resources: the VM page of a NULL connection holding N VMs (default 1,000).

Starts ``spider serve`` (own SPIDER_ROOT temp dir, Basic auth on), registers a NULL connection, creates a
VPC, an SG, a key pair and N VMs through the REST API, then loads AdminWeb pages R times each, one after
the other, as a browser would (with Basic auth, full HTML body read), and prints per page: median, p95,
min and max seconds, bytes and rows shown, plus the server's RSS.

    python bench/adminweb_page.py                 # N=1000 VMs, R=7 loads per page
    python bench/adminweb_page.py -n 5000 -r 5    # more VMs
    python bench/adminweb_page.py --size 500      # a bigger page of rows

The target (issue: "a page with 1,000 VMs on NULL loads in under 1 s") is checked on the median of the
VM page, first page, default page size; the script exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
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

CONN = "null-config01"
USER, PASSWORD = "bench", "bench-password"
TARGET_S = 1.0


class Server:
    """``spider serve`` with Basic auth, as a child in its own session; ``stop`` always kills it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="spider-adminweb-bench-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, SPIDER_ROOT=str(self.root), SPIDER_USERNAME=USER, SPIDER_PASSWORD=PASSWORD,
                   SPIDER_LOG_LEVEL="warning")
        self.log = open(self.root / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "spider_core.cli", "serve", "--address",
                                      f"127.0.0.1:{self.port}"], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("spider did not become ready within 60 s")


async def post(session: aiohttp.ClientSession, url: str, body: dict) -> None:
    async with session.post(url, json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"POST {url}: {r.status} {await r.text()}")


async def populate(session: aiohttp.ClientSession, base: str, n: int, concurrency: int) -> float:
    for path, body in (("driver", {"DriverName": "null-driver", "ProviderName": "NULL", "DriverLibFileName": "x"}),
                       ("credential", {"CredentialName": "null-cred", "ProviderName": "NULL", "KeyValueInfoList": []}),
                       ("region", {"RegionName": "null-region", "ProviderName": "NULL",
                                   "KeyValueInfoList": [{"Key": "Region", "Value": "r1"}]}),
                       ("connectionconfig", {"ConfigName": CONN, "ProviderName": "NULL", "DriverName": "null-driver",
                                             "CredentialName": "null-cred", "RegionName": "null-region"})):
        await post(session, f"{base}/{path}", body)
    subnets = [{"Name": "subnet-01", "IPv4_CIDR": "10.0.1.0/24"}]
    await post(session, f"{base}/vpc", {"ConnectionName": CONN, "ReqInfo": {
        "Name": "vpc-01", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": subnets}})
    await post(session, f"{base}/securitygroup", {"ConnectionName": CONN, "ReqInfo": {
        "Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [
            {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}]}})
    await post(session, f"{base}/keypair", {"ConnectionName": CONN, "ReqInfo": {"Name": "key-01"}})
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await post(session, f"{base}/vm", {"ConnectionName": CONN, "ReqInfo": {
                "Name": f"vm-{i:05d}", "ImageName": "null-image-01", "VMSpecName": "null-spec-01", "VPCName": "vpc-01",
                "SubnetName": "subnet-01", "SecurityGroupNames": ["sg-01"], "KeyPairName": "key-01"}})

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def load(session: aiohttp.ClientSession, url: str, repeat: int) -> tuple[list[float], int, int]:
    times, size, rows = [], 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(url) as r:
            body = await r.text()
            if r.status != 200:
                raise RuntimeError(f"GET {url}: {r.status} {body[:300]}")
        times.append(time.perf_counter() - started)
        size, rows = len(body.encode()), body.count("<tr data-name=")
    return times, size, rows


async def main(args: argparse.Namespace) -> int:
    server = Server()
    server.start()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    base = f"http://127.0.0.1:{server.port}/spider"
    try:
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout, headers={"Authorization": f"Basic {auth}"}) as session:
            await wait_ready(session, base)
            took = await populate(session, base, args.vms, args.concurrency)
            print(f"created {args.vms} VMs on NULL in {took:.1f} s")
            pages = [("VM page 1", f"{base}/adminweb/vm/{CONN}?size={args.size}"),
                     ("VM last page", f"{base}/adminweb/vm/{CONN}?size={args.size}&page=1000000"),
                     ("VM filtered (q=vm-0099)", f"{base}/adminweb/vm/{CONN}?q=vm-0099&size={args.size}"),
                     ("VPC page", f"{base}/adminweb/vpc/{CONN}"),
                     ("main page", f"{base}/adminweb")]
            print(f"{'page':26} {'median s':>9} {'p95 s':>7} {'min s':>7} {'max s':>7} {'KiB':>6} {'rows':>5}")
            medians = {}
            for label, url in pages:
                await load(session, url, 1)  # warm: the first load opens the connection
                times, size, rows = await load(session, url, args.repeat)
                ordered = sorted(times)
                medians[label] = statistics.median(times)
                print(f"{label:26} {medians[label]:9.3f} {pct(ordered, 95):7.3f} {ordered[0]:7.3f} {ordered[-1]:7.3f} "
                      f"{size / 1024:6.1f} {rows:5d}")
            print(f"server RSS {_rss_mb(server.proc.pid):.0f} MiB")
    finally:
        server.stop()
    ok = medians["VM page 1"] < TARGET_S
    print(f"target: VM page with {args.vms} VMs < {TARGET_S:g} s (median): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--vms", type=int, default=1000)
    parser.add_argument("-r", "--repeat", type=int, default=7)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--size", type=int, default=50, help="rows per page")
    sys.exit(asyncio.run(main(parser.parse_args())))
