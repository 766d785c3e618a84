#!/usr/bin/env python3
"""The SG verification suite at speed: the generated matrix (>= 200 cases) with real packets.

Starts Cloud-Twin with the netns data plane (root + nftables), a Spider server, registers a CLOUDTWIN
connection, and runs ``spider sgtest --suite generated --prober netns`` end to end over HTTP (exactly
what a user runs). Per run it prints cases, total wall time (including the VM's creation and cleanup),
cases/s, and the probe latency percentiles (p50/p99) of every probe that ran, read from the run's
``result.json``. ``--repeat N`` prints the medians of N fresh runs.

    sudo python bench/sg_suite.py                 # generated suite, openstack profile, once
    sudo python bench/sg_suite.py --repeat 3 --suite all
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core_throughput import PROVIDERS, Server, register, wait_http
from httpload import free_port, pct

REPO = Path(__file__).resolve().parent.parent


def probe_latencies(result: Path) -> tuple[int, list[float], int]:
    """(cases, latencies of probes that ran in ms, mismatching cells) from a result.json; prints
    every mismatching cell."""
    doc = json.loads(result.read_text())
    cases, lat, mismatches = 0, [], 0
    for suite in doc["suites"]:
        sg = suite.get("sg") or {}
        for case in sg.get("cases", []):
            cases += 1
            for cell in case.get("cells", []):
                if cell.get("ran") and cell.get("latency_ms") is not None:
                    lat.append(float(cell["latency_ms"]))
                if cell.get("observed") != cell.get("expected"):
                    mismatches += 1
                    print(f"    mismatch: case {case.get('id')} {cell.get('column')}: expected "
                          f"{cell.get('expected')}, model {cell.get('model')}, observed {cell.get('observed')} "
                          f"({cell.get('detail')}, {cell.get('latency_ms')} ms)", flush=True)
    return cases, sorted(lat), mismatches


async def one_run(args: argparse.Namespace, out: Path) -> dict[str, float]:
    twin_port = free_port()
    twin = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(twin_port), "--dataplane", "netns",
                             "--cloud", f"cloud-1={args.profile}", "--time-scale", "0.1"],
                            stdout=subprocess.DEVNULL, cwd=REPO)
    server = Server(None)
    try:
        await wait_http(twin_port, "/_twin/health")
        server.start()
        twin_url = f"http://127.0.0.1:{twin_port}"
        await register(server.port, "cloudtwin", twin_url)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "spider_core.cli", "sgtest", "--server",
                               f"http://127.0.0.1:{server.port}", "--connection", PROVIDERS["cloudtwin"]["conn"],
                               "--suite", args.suite, "--prober", "netns", "--twin", twin_url,
                               "--twin-cloud", "cloud-1", "--out", str(out), "--quiet",
                               *(["--probe-timeout-ms", str(args.probe_timeout_ms)] if args.probe_timeout_ms else [])],
                              cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if not (out / "result.json").exists():
            raise SystemExit(f"sgtest wrote no result.json (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        cases, lat, mismatches = probe_latencies(out / "result.json")
        return {"cases": cases, "wall_s": wall, "cases_s": cases / wall, "probes": len(lat),
                "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "mismatches": mismatches,
                "exit": proc.returncode}
    finally:
        server.stop()
        twin.terminate()
        twin.wait(30)


def show(label: str, r: dict[str, float]) -> None:
    print(f"{label}: {r['cases']:.0f} cases in {r['wall_s']:.1f} s ({r['cases_s']:.1f} cases/s), "
          f"{r['probes']:.0f} probes p50/p99 {r['p50_ms']:.2f}/{r['p99_ms']:.2f} ms, "
          f"{r['mismatches']:.0f} mismatching cells, sgtest exit {r['exit']:.0f}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="generated")
    p.add_argument("--profile", default="openstack", help="Cloud-Twin profile of cloud-1")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--probe-timeout-ms", type=int, default=0, help="passed to sgtest (default: sgtest's own)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench/sg_suite.py needs root (network namespaces and nftables)", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="sg-bench-") as tmp:
        for i in range(args.repeat):
            r = asyncio.run(one_run(args, Path(tmp) / f"run-{i}"))
            show(f"run {i + 1}", r)
            runs.append(r)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    show(f"median of {len(runs)}", med)
    print(f"  {'PASS' if med['wall_s'] < 120 else 'MISS'}  generated matrix under 2 minutes: {med['wall_s']:.1f} s")
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
