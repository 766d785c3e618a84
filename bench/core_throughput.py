#!/usr/bin/env python3
"""Spider core throughput: VPC create/get/list/delete through the REST edge, MOCK vs NULL.

One command starts a Spider server subprocess (own SPIDER_ROOT temp dir), registers a MOCK and a NULL
connection, then drives it from this process with C concurrent workers pulling N operations from a
shared queue, phase by phase: create N VPCs (one subnet each), get each, list (L calls, each returns
all N), delete N. Every phase prints ops, failures, wall time, ops/s, latency percentiles, the
server's RSS and CPU, and the load generator's own CPU, so a reader can see who was the bottleneck.

    python bench/core_throughput.py                       # C=50, N=1000, MOCK then NULL, once
    python bench/core_throughput.py --repeat 3            # medians of 3 fresh-server runs
    python bench/core_throughput.py --providers null -n 2000 --json out.json
    python bench/core_throughput.py --profile-server      # NULL create/get under cProfile (or py-spy)

The default client is a lean keep-alive HTTP/1.1 client on raw asyncio streams with request bytes
prebuilt (one connection per worker); ``--client aiohttp`` uses an aiohttp ClientSession with a
C-connection pool instead. Both check every status code; list answers are parsed and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpload import RawConn, Req, _cpu_s, _rss_mb, build, free_port, pct

PHASES = ("create", "get", "list", "delete")
PROVIDERS = {  # credential values may name the Cloud-Twin this run starts: {twin}
    "mock": dict(conn="mock-config01", provider="MOCK", cred=[("MockName", "bench")], region="default"),
    "null": dict(conn="null-config01", provider="NULL", cred=[("Name", "bench")], region="null-region"),
    "cloudtwin": dict(conn="cloudtwin-config01", provider="CLOUDTWIN", region="default",
                      cred=[("IdentityEndpoint", "{twin}"), ("DomainName", "cloud-1"), ("MockName", "bench")]),
}
TARGETS = [  # (provider, phase, metric, minimum, label)
    ("mock", "create", "ops_s", 150.0, "MOCK create >= 150 VPC/s"),
    ("mock", "get", "ops_s", 400.0, "MOCK get >= 400 req/s"),
    ("null", "create", "ops_s", 2000.0, "NULL create >= 2000 req/s"),
    ("null", "get", "ops_s", 2000.0, "NULL get >= 2000 req/s"),
    ("null", "delete", "ops_s", 2000.0, "NULL delete >= 2000 req/s"),
    ("null", "list", "items_s", 2000.0, "NULL list >= 2000 VPCs/s returned"),
]


# ---- server process -----------------------------------------------------------------------------

class Server:
    """``spider serve`` as a child process in its own session; always killed by ``stop``."""

    def __init__(self, lock_mode: str | None, profile_out: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="spider-bench-"))
        self.port = free_port()
        self.lock_mode = lock_mode
        self.profile_out = profile_out
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "server.log"
        self.extra_env: dict[str, str] = {}

    def start(self) -> None:
        env = dict(os.environ, SPIDER_ROOT=str(self.root), SPIDER_LOG_LEVEL="warning", **self.extra_env)
        cmd = [sys.executable]
        if self.profile_out is not None:
            cmd += ["-m", "cProfile", "-o", str(self.profile_out)]
        cmd += ["-m", "spider_core.cli", "serve", "--address", f"127.0.0.1:{self.port}"]
        if self.lock_mode:
            cmd += ["--lock-mode", self.lock_mode]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start listening within 30 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[int]:
        """Live child processes of the server (the MOCK provider's moto worker)."""
        kids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.pid:
                    kids.append(int(entry.name))
        return kids

    def rss_mb(self) -> float:
        """VmRSS of the server process (children are reported apart, by ``child_rss_mb``)."""
        return _rss_mb(self.pid)

    def child_rss_mb(self) -> float:
        return sum(_rss_mb(pid) for pid in self.children())

    def cpu_s(self) -> float:
        """utime+stime of the server process (all threads) and of its live children, seconds.

        The MOCK provider runs moto in a child process: its CPU is part of what a request costs.
        """
        return sum(_cpu_s(pid) for pid in [self.pid, *self.children()])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)  # graceful: lets cProfile write its file
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


# ---- phases -------------------------------------------------------------------------------------

@dataclass
class PhaseResult:
    provider: str
    phase: str
    ops: int = 0
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    ops_s: float = 0.0
    items_s: float = 0.0  # list: VPCs returned per second
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_mb: float = 0.0
    server_cpu_pct: float = 0.0    # % of one core, whole server process
    server_cpu_us_op: float = 0.0  # server CPU per op
    client_cpu_pct: float = 0.0    # this process, % of one core
    client_cpu_us_op: float = 0.0


async def run_phase(server: Server, client: str, concurrency: int, provider: str, phase: str,
                    reqs: list[Req], session: Any = None) -> PhaseResult:
    host = f"127.0.0.1:{server.port}"
    for r in reqs:
        build(host, r)
    queue: deque[Req] = deque(reqs)
    lat: list[float] = []
    res = PhaseResult(provider, phase)
    items = 0

    def check(req: Req, status: int, body: bytes) -> None:
        nonlocal items
        if status != 200:
            res.failures += 1
            if len(res.failure_samples) < 5:
                res.failure_samples.append(f"{req.method} {req.path} -> {status} {body[:200]!r}")
            return
        if req.expect_items is not None:
            got = len(json.loads(body).get("vpc") or [])
            items += got
            if got != req.expect_items:
                res.failures += 1
                if len(res.failure_samples) < 5:
                    res.failure_samples.append(f"list returned {got} VPCs, expected {req.expect_items}")

    async def raw_worker() -> None:
        conn = RawConn("127.0.0.1", server.port)
        perf = time.perf_counter
        try:
            while queue:
                req = queue.popleft()
                t0 = perf()
                try:
                    status, body = await conn.request(req.raw)
                except Exception as exc:  # noqa: BLE001
                    status, body = -1, repr(exc).encode()
                    conn.close()
                lat.append(perf() - t0)
                check(req, status, body)
        finally:
            conn.close()

    async def aiohttp_worker() -> None:
        perf = time.perf_counter
        base = f"http://{host}"
        while queue:
            req = queue.popleft()
            t0 = perf()
            try:
                async with session.request(req.method, base + req.path, data=req.body or None,
                                           headers={"Content-Type": "application/json"} if req.body else None
                                           ) as resp:
                    body = await resp.read()
                    status = resp.status
            except Exception as exc:  # noqa: BLE001
                status, body = -1, repr(exc).encode()
            lat.append(perf() - t0)
            check(req, status, body)

    worker = raw_worker if client == "raw" else aiohttp_worker
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    s0 = server.cpu_s()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    s1 = server.cpu_s()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    ccpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    lat.sort()
    n = len(reqs)
    res.ops, res.wall_s = n, wall
    res.ops_s = n / wall if wall else float("nan")
    res.items_s = items / wall if wall else 0.0
    res.p50_ms, res.p95_ms, res.p99_ms = (pct(lat, q) * 1e3 for q in (50, 95, 99))
    res.max_ms = lat[-1] * 1e3 if lat else float("nan")
    res.rss_mb = server.rss_mb() + server.child_rss_mb()
    res.server_cpu_pct = 100.0 * (s1 - s0) / wall
    res.server_cpu_us_op = 1e6 * (s1 - s0) / n
    res.client_cpu_pct = 100.0 * ccpu / wall
    res.client_cpu_us_op = 1e6 * ccpu / n
    return res


def phase_requests(conn: str, phase: str, n: int, list_calls: int) -> list[Req]:
    if phase == "create":
        return [Req("POST", "/spider/vpc", json.dumps(
            {"ConnectionName": conn, "ReqInfo": {"Name": f"vpc-{i}", "IPv4_CIDR": "10.0.0.0/16",
                                                 "SubnetInfoList": [{"Name": f"subnet-{i}",
                                                                     "IPv4_CIDR": "10.0.1.0/24"}]}},
            separators=(",", ":")).encode()) for i in range(n)]
    if phase == "get":
        return [Req("GET", f"/spider/vpc/vpc-{i}?ConnectionName={conn}") for i in range(n)]
    if phase == "list":
        return [Req("GET", f"/spider/vpc?ConnectionName={conn}", expect_items=n) for _ in range(list_calls)]
    if phase == "delete":
        body = json.dumps({"ConnectionName": conn}, separators=(",", ":")).encode()
        return [Req("DELETE", f"/spider/vpc/vpc-{i}", body) for i in range(n)]
    raise ValueError(phase)


async def call(port: int, method: str, path: str, obj: Any = None) -> tuple[int, Any]:
    conn = RawConn("127.0.0.1", port)
    try:
        req = build(f"127.0.0.1:{port}", Req(method, path, json.dumps(obj).encode() if obj is not None else b""))
        status, body = await conn.request(req.raw)
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body.decode(errors="replace")
    finally:
        conn.close()


async def register(port: int, key: str, twin_url: str = "") -> None:
    p = PROVIDERS[key]
    prov, conn = p["provider"], p["conn"]
    low = key
    steps = [
        ("/spider/driver", {"DriverName": f"{low}-driver01", "ProviderName": prov, "DriverLibFileName": "x"}),
        ("/spider/credential", {"CredentialName": f"{low}-credential01", "ProviderName": prov,
                                "KeyValueInfoList": [{"Key": k, "Value": v.format(twin=twin_url)}
                                                     for k, v in p["cred"]]}),
        ("/spider/region", {"RegionName": f"{low}-region01", "ProviderName": prov,
                            "KeyValueInfoList": [{"Key": "Region", "Value": p["region"]}]}),
        ("/spider/connectionconfig", {"ConfigName": conn, "ProviderName": prov, "DriverName": f"{low}-driver01",
                                      "CredentialName": f"{low}-credential01",
                                      "RegionName": f"{low}-region01"}),
    ]
    for path, body in steps:
        status, answer = await call(port, "POST", path, body)
        if status != 200:
            raise RuntimeError(f"registering {key}: POST {path} -> {status} {answer}")


async def count_vpcs(port: int, conn: str) -> int:
    status, answer = await call(port, "GET", f"/spider/countvpc/{conn}")
    if status != 200:
        raise RuntimeError(f"countvpc -> {status} {answer}")
    return int(answer["count"])


async def one_run(args: argparse.Namespace, providers: list[str], phases: tuple[str, ...],
                  profile_out: Path | None = None, quiet: bool = False) -> tuple[list[PhaseResult], list[str]]:
    server = Server(args.lock_mode, profile_out)
    results: list[PhaseResult] = []
    problems: list[str] = []
    session = None
    twin: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        twin_url = ""
        if "cloudtwin" in providers:  # a Cloud-Twin for the CLOUDTWIN provider, stopped with the server
            twin_port = free_port()
            twin = subprocess.Popen([sys.executable, "-m", "cloudtwin", "--port", str(twin_port)],
                                    stdout=subprocess.DEVNULL)
            twin_url = f"http://127.0.0.1:{twin_port}"
            await wait_http(twin_port, "/_twin/health")
        for key in providers:
            await register(server.port, key, twin_url)
        for key in providers:  # untimed: the first call starts the driver (moto's worker for MOCK)
            t0 = time.perf_counter()
            status, answer = await call(server.port, "GET", f"/spider/vpc?ConnectionName={PROVIDERS[key]['conn']}")
            if status != 200:
                raise RuntimeError(f"first call on {key}: {status} {answer}")
            if not quiet:
                print(f"  {key.upper()}: first call (driver start-up, not in the phases) "
                      f"{(time.perf_counter() - t0) * 1000:.0f} ms")
        if args.client == "aiohttp":
            import aiohttp
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency,
                                                                           limit_per_host=args.concurrency))
        if not quiet:
            print(f"  server pid {server.pid} on :{server.port}, RSS after start {server.rss_mb():.1f} MiB")
        for key in providers:
            conn = PROVIDERS[key]["conn"]
            for phase in phases:
                reqs = phase_requests(conn, phase, args.n, args.list_calls)
                r = await run_phase(server, args.client, args.concurrency, key, phase, reqs, session)
                results.append(r)
                if not quiet:
                    print_phase(r)
                if phase in ("create", "delete"):
                    want = args.n if phase == "create" else 0
                    got = await count_vpcs(server.port, conn)
                    ok = got == want
                    if not ok:
                        problems.append(f"{key} {phase}: countvpc={got}, expected {want}")
                    if not quiet:
                        print(f"      verify: countvpc/{conn} = {got} (expected {want}) {'OK' if ok else 'WRONG'}")
    finally:
        if session is not None:
            await session.close()
        server.stop()
        if twin is not None:
            twin.terminate()
            twin.wait(10)
    return results, problems


async def wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = await call(port, "GET", path)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing answered on :{port}{path}")


# ---- output -------------------------------------------------------------------------------------

HEADER = (f"  {'prov':4} {'phase':6} {'ops':>5} {'fail':>4} {'wall s':>7} {'ops/s':>8} {'VPC/s':>8} "
          f"{'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'RSS MiB':>7} {'srvCPU%':>7} {'srv us/op':>9} "
          f"{'cliCPU%':>7} {'cli us/op':>9}")


def row(r: PhaseResult) -> str:
    items = f"{r.items_s:8.0f}" if r.phase == "list" else f"{'':>8}"
    return (f"  {r.provider.upper():4} {r.phase:6} {r.ops:5d} {r.failures:4d} {r.wall_s:7.3f} {r.ops_s:8.1f} {items} "
            f"{r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.p99_ms:7.2f} {r.max_ms:7.2f} {r.rss_mb:7.1f} "
            f"{r.server_cpu_pct:7.0f} {r.server_cpu_us_op:9.0f} {r.client_cpu_pct:7.0f} {r.client_cpu_us_op:9.0f}")


def print_phase(r: PhaseResult) -> None:
    print(row(r), flush=True)
    for msg in r.failure_samples[:3]:
        print(f"      failure: {msg}")


NUMERIC = ("ops", "failures", "wall_s", "ops_s", "items_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "rss_mb",
           "server_cpu_pct", "server_cpu_us_op", "client_cpu_pct", "client_cpu_us_op")


def medians(runs: list[list[PhaseResult]]) -> list[PhaseResult]:
    out = []
    for i, first in enumerate(runs[0]):
        m = PhaseResult(first.provider, first.phase)
        for f in NUMERIC:
            vals = [run[i].__dict__[f] for run in runs]
            v = statistics.median(vals)
            setattr(m, f, int(v) if f in ("ops", "failures") else v)
        m.failures = sum(run[i].failures for run in runs)  # total, not median: any failure matters
        m.failure_samples = [s for run in runs for s in run[i].failure_samples][:5]
        out.append(m)
    return out


def summary(med: list[PhaseResult], providers: list[str]) -> None:
    by = {(r.provider, r.phase): r for r in med}
    if "null" in providers:
        print("\ncore overhead (NULL provider: the Spider core without a cloud):")
        for ph in PHASES:
            r = by.get(("null", ph))
            if r:
                extra = f", {r.items_s:.0f} VPCs/s" if ph == "list" else ""
                print(f"  {ph:6}: {r.ops_s:8.1f} req/s{extra}, p50 {r.p50_ms:.2f} ms, "
                      f"server CPU {r.server_cpu_us_op:.0f} us/op ({r.server_cpu_pct:.0f}% of a core)")
    if "mock" in providers and "null" in providers:
        print("\nMOCK/NULL (throughput ratio; <1 means MOCK is slower; latency ratio p50):")
        for ph in PHASES:
            m, n = by.get(("mock", ph)), by.get(("null", ph))
            if m and n and n.ops_s and n.p50_ms:
                print(f"  {ph:6}: ops/s {m.ops_s / n.ops_s:6.3f}   p50 x{m.p50_ms / n.p50_ms:6.1f}   "
                      f"server us/op {m.server_cpu_us_op:.0f} vs {n.server_cpu_us_op:.0f} "
                      f"(cloud share {max(0.0, 1 - n.server_cpu_us_op / m.server_cpu_us_op) * 100 if m.server_cpu_us_op else 0:.0f}%)")
    print("\ntargets (median figures; not a failing exit):")
    for prov, ph, metric, minimum, label in TARGETS:
        r = by.get((prov, ph))
        if r is None:
            continue
        v = getattr(r, metric)
        print(f"  {'PASS' if v >= minimum else 'MISS'}  {label}: {v:.0f}")
    busiest = max(med, key=lambda r: r.client_cpu_pct)
    print(f"\nload generator: max client CPU {busiest.client_cpu_pct:.0f}% of a core "
          f"({busiest.provider} {busiest.phase}); the server is the bottleneck when its CPU is near 100% "
          f"and the client's is well below.")


# ---- profiling ----------------------------------------------------------------------------------

def collapsed_report(path: Path, top: int) -> None:
    """Hot spots from py-spy's collapsed stacks (``frame;frame;... count`` lines): self and inclusive %."""
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf = frames[-1]
        self_n[leaf] = self_n.get(leaf, 0) + n
        for f in set(frames):
            incl_n[f] = incl_n.get(f, 0) + n
    if not total:
        print("no samples")
        return
    print(f"\n==== py-spy: top by own samples ({total} samples, all threads, idle included) ====")
    for f, n in sorted(self_n.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100.0 * n / total:6.2f}%  {f}")
    print("\n==== py-spy: top by inclusive samples ====")
    for f, n in sorted(incl_n.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100.0 * n / total:6.2f}%  {f}")


async def profile_pyspy(args: argparse.Namespace) -> None:
    """NULL create/get/delete with ``py-spy record`` attached to the server (all threads, low overhead)."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("py-spy is not installed (pip install py-spy), or use --profiler cprofile")
    out_dir = Path(tempfile.mkdtemp(prefix="spider-pyspy-"))
    out = out_dir / "stacks.txt"
    server = Server(args.lock_mode)
    spy: subprocess.Popen | None = None
    try:
        server.start()
        await register(server.port, "null")
        spy = subprocess.Popen([exe, "record", "--pid", str(server.pid), "--rate", "500", "--format", "raw",
                                "--threads", "--nonblocking", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        await asyncio.sleep(1.0)
        print(f"py-spy attached to server pid {server.pid} - NULL, C={args.concurrency}, N={args.n}")
        print(HEADER)
        conn = PROVIDERS["null"]["conn"]
        for phase in args.profile_phases.split(","):
            print_phase(await run_phase(server, args.client, args.concurrency, "null", phase,
                                        phase_requests(conn, phase, args.n, args.list_calls)))
    finally:
        if spy is not None and spy.poll() is None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        server.stop()
    if out.exists():
        if args.profile_out:
            shutil.copy(out, args.profile_out)
            print(f"collapsed stacks: {args.profile_out} (flamegraph.pl / speedscope can read them)")
        collapsed_report(out, args.profile_top)
    else:
        print("py-spy wrote nothing:", (spy.stderr.read().decode(errors="replace") if spy and spy.stderr else ""))
    shutil.rmtree(out_dir, ignore_errors=True)


async def profile_server(args: argparse.Namespace) -> None:
    """Run the NULL create/get/delete phases against a server under cProfile, then show hot spots."""
    if args.profiler == "pyspy":
        await profile_pyspy(args)
        return
    out = Path(tempfile.mkdtemp(prefix="spider-prof-")) / "server.prof"
    keep = Path(args.profile_out) if args.profile_out else None
    print(f"profiling the server (cProfile, main thread only; ~2x slower than normal) - NULL, "
          f"C={args.concurrency}, N={args.n}")
    results, problems = await one_run(args, ["null"], tuple(args.profile_phases.split(",")), profile_out=out)
    for p in problems:
        print(f"  PROBLEM: {p}")
    if not out.exists():
        print("no profile written (server did not exit cleanly)")
        return
    if keep:
        shutil.copy(out, keep)
        print(f"raw profile: {keep} (python -m pstats {keep})")
    st = pstats.Stats(str(out))
    st.strip_dirs()
    print("\n==== top by own time (tottime) ====")
    st.sort_stats("tottime").print_stats(args.profile_top)
    print("\n==== top by cumulative time ====")
    st.sort_stats("cumulative").print_stats(args.profile_top)
    shutil.rmtree(out.parent, ignore_errors=True)


# ---- main ---------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", "--concurrency", type=int, default=50, help="concurrent workers (default 50)")
    ap.add_argument("-n", type=int, default=1000, help="VPCs per phase (default 1000)")
    ap.add_argument("--list-calls", type=int, default=50, help="list calls in the list phase (default 50)")
    ap.add_argument("--repeat", type=int, default=1, help="runs (fresh server each); medians are reported")
    ap.add_argument("--providers", default="mock,null", help="comma list of mock,null,cloudtwin (default mock,null)")
    ap.add_argument("--lock-mode", choices=("sponge", "global"), default=None, help="server SP-Lock mode")
    ap.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                    help="raw: keep-alive HTTP/1.1 on asyncio streams (default); aiohttp: ClientSession pool")
    ap.add_argument("--json", help="write every raw figure (and medians) to this file")
    ap.add_argument("--profile-server", action="store_true",
                    help="instead of the benchmark, profile the server under NULL create/get/delete")
    ap.add_argument("--profile-out", help="with --profile-server: keep the raw .prof file here")
    ap.add_argument("--profile-top", type=int, default=30)
    ap.add_argument("--profiler", choices=("cprofile", "pyspy"), default="cprofile",
                    help="cprofile: server runs under python -m cProfile (main thread, deterministic, ~2x "
                         "slower); pyspy: py-spy record attached to the server (all threads, sampling)")
    ap.add_argument("--profile-phases", default="create,get,delete",
                    help="NULL phases to run while profiling (create must come first)")
    args = ap.parse_args()
    providers = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
    for p in providers:
        if p not in PROVIDERS:
            ap.error(f"unknown provider {p!r}")

    def on_term(signum, frame):  # SIGTERM -> unwind through the finally blocks that kill the server
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored

    try:
        if args.profile_server:
            asyncio.run(profile_server(args))
            return 0
        print(f"spider core throughput: providers={','.join(providers)} C={args.concurrency} N={args.n} "
              f"list calls={args.list_calls} lock mode={args.lock_mode or 'sponge (default)'} client={args.client} "
              f"repeat={args.repeat}  (latency in ms)")
        runs: list[list[PhaseResult]] = []
        all_problems: list[str] = []
        for k in range(args.repeat):
            print(f"\nrun {k + 1}/{args.repeat}")
            print(HEADER)
            results, problems = asyncio.run(one_run(args, providers, PHASES))
            runs.append(results)
            all_problems += [f"run {k + 1}: {p}" for p in problems]
        med = medians(runs)
        print(f"\n==== median of {len(runs)} run(s) ====")
        print(HEADER)
        for r in med:
            print_phase(r)
        summary(med, providers)
        if all_problems:
            print("\ncorrectness problems:")
            for p in all_problems:
                print(f"  {p}")
        else:
            print("\ncorrectness: countvpc == N after every create and 0 after every delete; "
                  f"{sum(r.failures for r in med)} failed requests")
        if args.json:
            doc = {"config": {k: v for k, v in vars(args).items()}, "providers": providers,
                   "runs": [[r.__dict__ for r in run] for run in runs], "median": [r.__dict__ for r in med],
                   "problems": all_problems}
            Path(args.json).write_text(json.dumps(doc, indent=1))
            print(f"raw figures: {args.json}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
