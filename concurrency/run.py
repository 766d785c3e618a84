"""`spider load OP CSP N --resource R`: one load template, headless, with setup, cleanup and a report.

Phases: resolve the connection (registering `mock` / `cloudtwin` defaults when missing), read the
resource counts and the limiter, create the prerequisites, run Locust in a subprocess (gevent's
monkey-patching must not touch this process) while the lock monitor samples the Spider, then always
clean up — also after a failure, Ctrl-C or SIGTERM — and verify that the counts are back and no lock
entry of the connection is left. Reports go through `reports.write_reports` (report.md, summary.md,
junit.xml, result.json, CSV and SVG) next to Locust's own CSV and JSON.

Exit codes: 0 the gate passed; 1 a threshold or the contention outcome failed; 2 the run could not be
judged (setup failed, Locust did not run, cleanup left something behind); 130 interrupted.
"""
from __future__ import annotations

COMMAND_HELP = "run a Locust load template (OP CSP N --resource R) against a Spider"
COMMAND_DESCRIPTION = ("run a Locust load template headless: N concurrent users do OP on "
                       "resource R through the Spider, with setup, cleanup, a report and a gate")

import argparse
import asyncio
import csv
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudtwin.address import is_loopback
from concurrency import scenario
from concurrency.plan import CONTENTION_ANSWERS, OPS, RESOURCE_OPS, VM_ACTIONS, LoadPlan
from concurrency.scenario import DEFAULT_TWIN, CleanupReport, Rest
from reports.charts import write_csv
from reports import CaseResult, Check, LatencyChart, MetricsTable, SuiteResult, compare, threshold_check, write_reports

DEFAULT_SERVER = "http://127.0.0.1:1024"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOCUST_HTML = "locust.html"   # Locust's own report, linked from report.md
EXIT_INTERRUPTED = 130
PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 100)
THROTTLE_WORDS = ("429", "throttl", "requestlimitexceeded", "too many requests", "rate limit")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("op", nargs="?", choices=sorted({*OPS, "add", "remove", "start", "terminate"}),
                   help="the operation (add/remove = create/delete of subnets and SG rules)")
    p.add_argument("csp", nargs="?", help="a connection config name, or mock / cloudtwin (their default connection "
                                          "is registered when missing)")
    p.add_argument("n", type=int, nargs="?", help="N: concurrent users, spawned at once")
    p.add_argument("--resource", choices=tuple(RESOURCE_OPS), help="what to operate on (required)")
    p.add_argument("--server", default=DEFAULT_SERVER, help=f"the Spider (default {DEFAULT_SERVER})")
    p.add_argument("--twin", default=DEFAULT_TWIN, help=f"Cloud-Twin for the cloudtwin keyword (default {DEFAULT_TWIN})")
    p.add_argument("--same-name", action="store_true",
                   help="contention: N requests on one resource (create: exactly 1 success, N-1 already exists)")
    p.add_argument("--loop", action="store_true", help="repeat for --duration (default: each user once)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of a --loop run (default 30)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a one-shot run may take (default 900)")
    p.add_argument("--out", default="load-report", help="report directory (default ./load-report)")
    p.add_argument("--processes", type=int, default=1,
                   help="Locust worker processes on this machine (master/worker mode, master on 127.0.0.1)")
    g = p.add_argument_group("several machines (Locust's own master/worker mode; see docs/cluster.md)")
    g.add_argument("--master", action="store_true",
                   help="run as the Locust master: setup, gate, cleanup and reports here, the users on the "
                        "workers that connect (spider load --worker --master-host HOST on each)")
    g.add_argument("--master-bind-host", default="127.0.0.1",
                   help="with --master: the address workers connect to (default 127.0.0.1: workers on this "
                        "host or through an SSH tunnel). Locust's master/worker channel has no authentication "
                        "and no encryption: bind another address only on a network you trust")
    g.add_argument("--master-bind-port", type=int, default=5557, help="with --master: the port (default 5557)")
    g.add_argument("--expect-workers", type=int, default=1,
                   help="with --master: start once this many workers are connected (default 1)")
    g.add_argument("--expect-workers-max-wait", type=int, default=120,
                   help="with --master: give up after this many seconds without them (default 120)")
    g.add_argument("--worker", action="store_true",
                   help="run as a Locust worker of the master at --master-host (takes no OP CSP N: the "
                        "master sends the template, the Spider URL and the options)")
    g.add_argument("--master-host", default="127.0.0.1", help="with --worker: the master's host (default 127.0.0.1)")
    g.add_argument("--master-port", type=int, default=5557, help="with --worker: the master's port (default 5557)")
    p.add_argument("--max-fail-ratio", type=float, default=0.0, help="gate: failed/all requests (default 0)")
    p.add_argument("--max-p95-ms", type=float, default=None, help="gate: p95 latency in ms (default none)")
    p.add_argument("--action", choices=VM_ACTIONS, default="reboot", help="VM control action (default reboot)")
    p.add_argument("--image", default="", help="VM image (default: picked from the connection)")
    p.add_argument("--spec", default="", help="VM spec (default: picked from the connection)")
    p.add_argument("--list-size", type=int, default=10, help="resources created for a list template (default 10)")
    p.add_argument("--async", dest="async_jobs", action="store_true",
                   help="submit creates/deletes/VM control as jobs (?async=true) and long-poll each to its end: "
                        "the report shows submit latency and time to completion apart")
    p.add_argument("--prefix", default="load", help="resource name prefix (default load)")
    p.add_argument("--lock-threshold", type=float, default=30.0,
                   help="the lock monitor flags keys held longer than this many seconds (default 30)")
    p.add_argument("--cleanup-patience", type=float, default=180.0,
                   help="seconds cleanup keeps retrying busy deletes (default 180)")
    p.add_argument("--quiet", action="store_true", help="don't print the summary")


# ---------------------------------------------------------------- Locust

def locust_command(plan: LoadPlan, args: argparse.Namespace, out: Path) -> list[str]:
    run_time = f"{int(args.duration)}s" if plan.loop else f"{int(args.timeout)}s"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
           "-H", args.server.rstrip("/").removesuffix("/spider"), "-u", str(plan.users), "-r", str(plan.users),
           "--run-time", run_time, "--stop-timeout", "60", "--csv", str(out / "locust"), "--csv-full-history",
           "--json-file", str(out / "locust"), "--exit-code-on-error", "0", "--loglevel", "WARNING",
           "--spider-op", plan.op, "--spider-resource", plan.resource, "--spider-connection", plan.connection,
           "--spider-n", str(plan.users), "--spider-run-id", plan.run_id, "--spider-prefix", plan.prefix,
           "--spider-action", plan.action, "--spider-list-size", str(plan.list_size)]
    if plan.image:
        cmd += ["--spider-image", plan.image]
    if plan.spec:
        cmd += ["--spider-spec", plan.spec]
    if plan.same_name:
        cmd.append("--spider-same-name")
    if plan.loop:
        cmd.append("--spider-loop")
    if plan.async_jobs:
        cmd.append("--spider-async")
    cmd += ["--html", str(out / LOCUST_HTML)]
    if getattr(args, "master", False):
        cmd += ["--master", "--master-bind-host", args.master_bind_host, "--master-bind-port",
                str(args.master_bind_port), "--expect-workers", str(args.expect_workers),
                "--expect-workers-max-wait", str(args.expect_workers_max_wait)]
    elif args.processes > 1:
        cmd += ["--processes", str(args.processes), "--master-bind-host", "127.0.0.1"]
    return cmd


def worker_command(args: argparse.Namespace) -> list[str]:
    """A Locust worker: the master sends it the template, the Spider URL and every --spider-* option."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", args.master_host,
            "--master-port", str(args.master_port), "--loglevel", "WARNING"]


def locust_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH", "")]))
    return env


def run_worker(args: argparse.Namespace) -> int:
    """``spider load --worker``: this process becomes the Locust worker (signals and exit code are its)."""
    print(f"spider load: Locust worker for the master at {args.master_host}:{args.master_port} "
          "(it runs what the master sends; Ctrl-C stops it)", file=sys.stderr, flush=True)
    cmd = worker_command(args)
    os.execve(cmd[0], cmd, locust_env())
    return 0  # not reached


def master_warning(args: argparse.Namespace) -> str | None:
    """What a non-loopback master bind exposes (printed before the run)."""
    if not args.master or is_loopback(args.master_bind_host):
        return None
    return (f"spider load: the Locust master listens on {args.master_bind_host}:{args.master_bind_port} with no "
            "authentication and no encryption (Locust's master/worker channel has neither): whoever reaches that "
            "port can join as a worker, read the run's options (the Spider URL, connection names) and send made-up "
            "statistics. Use it on a trusted network only, or keep 127.0.0.1 and bring workers in over ssh -L.")


async def run_locust(cmd: list[str], log_path: Path) -> int:
    env = locust_env()
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=asyncio.subprocess.STDOUT,
                                                    stdin=asyncio.subprocess.DEVNULL, env=env,
                                                    start_new_session=True)
        try:
            return await proc.wait()
        except asyncio.CancelledError:
            # Ctrl-C / SIGTERM: let Locust stop its users and write its CSVs, then make sure it is gone
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), 15)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
            raise


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: Any, default: float = 0.0) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------- the run's figures

@dataclass
class RunFigures:
    requests: int = 0
    failures: int = 0
    successes: int = 0
    contention_answers: int = 0
    ops_per_s: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max_ms: float = 0.0
    measured_s: float = 0.0
    failures_by_message: list[tuple[str, int]] = field(default_factory=list)
    stats_rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def throttling_failures(self) -> int:
        return sum(c for m, c in self.failures_by_message if any(w in m.lower() for w in THROTTLE_WORDS))


def read_figures(plan: LoadPlan, out: Path) -> RunFigures:
    """From the locustfile's `locust_final.json` (the statistics at quit; Locust's own CSVs are rewritten
    once a second and can miss the end) and Locust's per-second history CSV."""
    fig = RunFigures(history=read_csv(out / "locust_stats_history.csv"))
    try:
        final = json.loads((out / "locust_final.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fig
    fig.stats_rows = sorted(final["entries"], key=lambda e: e["name"]) + [dict(final["aggregated"], name="Aggregated")]
    for row in final["entries"]:
        if row["name"] == plan.outcome_name:
            fig.successes += row["requests"] - row["failures"]
        elif row["name"] == plan.contention_name:
            fig.contention_answers += row["requests"]
    agg = final["aggregated"]
    if plan.submits_jobs:  # the headline is the jobs' completion; submits and polls have their own rows
        agg = next((r for r in final["entries"] if r["name"] == plan.outcome_name), agg)
        agg = dict(agg, failures=agg["failures"] + sum(r["failures"] for r in final["entries"]
                                                       if r["name"] == plan.request_name))
    fig.requests, fig.failures, fig.ops_per_s = agg["requests"], agg["failures"], agg["ops_per_s"]
    fig.p50, fig.p95, fig.p99, fig.max_ms = agg["p50"], agg["p95"], agg["p99"], round(agg["max_ms"] or 0, 1)
    if final.get("window_s"):  # one-shot: first request sent to last answer received, over all users
        fig.measured_s = final["window_s"]
        fig.ops_per_s = fig.requests / fig.measured_s
    else:  # loop: Locust's own rate over the run
        fig.measured_s = fig.requests / fig.ops_per_s if fig.ops_per_s else 0.0
    grouped: dict[str, int] = {}
    for f in final["failures"]:
        grouped[f["error"]] = grouped.get(f["error"], 0) + f["occurrences"]
    fig.failures_by_message = sorted(grouped.items(), key=lambda kv: -kv[1])
    return fig


def limit_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    keys = ("calls", "throttled", "retries", "gave_up", "waited_s", "rate_waited_s")
    delta = {k: round(number(after.get(k)) - number(before.get(k)), 3) for k in keys}
    for k in ("calls", "throttled", "retries", "gave_up"):
        delta[k] = int(delta[k])
    delta["peak_inflight"] = after.get("peak_inflight", 0)
    delta["peak_queued"] = after.get("peak_queued", 0)
    return delta


# ---------------------------------------------------------------- the report

def build_suite(plan: LoadPlan, args: argparse.Namespace, fig: RunFigures, *, started: datetime, duration_s: float,
                limits: dict[str, Any], lock_summary: dict[str, Any] | None, monitor: Any,
                counts_before: dict[str, int], counts_after: dict[str, int] | None, locks_left: list[dict[str, Any]],
                cleanup: CleanupReport | None, errors: list[str], locust_rc: int | None) -> SuiteResult:
    mode = "contention" if plan.same_name else "parallel"
    title = f"{plan.op} {plan.resource} x{plan.users} ({mode}, {'loop' if plan.loop else 'one-shot'})"
    checks: list[Check] = [threshold_check("failure ratio", round(fig.fail_ratio, 4), args.max_fail_ratio)]
    if args.max_p95_ms is not None:
        checks.append(threshold_check("p95", fig.p95, args.max_p95_ms, unit="ms"))
    if not plan.loop:
        checks.append(compare("requests completed", plan.users,
                              fig.successes + fig.failures + fig.contention_answers))
    if plan.same_name and plan.op in CONTENTION_ANSWERS and not plan.loop:
        checks.append(compare("successes (contention)", 1, fig.successes))
        checks.append(compare(f"'{CONTENTION_ANSWERS[plan.op]}' answers", plan.users - 1, fig.contention_answers))
    checks.append(compare("throttling failures", 0, fig.throttling_failures))
    case = CaseResult(id=f"{plan.op}-{plan.resource}", name=title, checks=checks, duration_s=fig.measured_s,
                      started_at=started, properties={"mode": mode, "users": plan.users})
    cleanup_checks = [compare("resources left (counts after == before)", counts_before, counts_after),
                      compare("lock entries left", 0, len(locks_left),
                              message="" if not locks_left else f"left: {locks_left}")]
    if cleanup is not None and cleanup.problems:
        cleanup_checks.append(Check("cleanup problems", "fail", [], cleanup.problems, "; ".join(cleanup.problems)))
    cleanup_case = CaseResult(id="cleanup", name="cleanup: nothing left behind", checks=cleanup_checks,
                              duration_s=cleanup.duration_s if cleanup else 0.0,
                              errors=[] if counts_after is not None else ["counts after the run unavailable"])

    figures = [["requests", fig.requests], ["successes", fig.successes], ["failures", fig.failures],
               ["failure ratio", round(fig.fail_ratio, 4)], ["ops/s", round(fig.ops_per_s, 1)],
               ["measured phase (s)", round(fig.measured_s, 2)],
               ["p50 (ms)", fig.p50], ["p95 (ms)", fig.p95], ["p99 (ms)", fig.p99], ["max (ms)", fig.max_ms]]
    if plan.same_name and plan.op in CONTENTION_ANSWERS:
        figures.insert(2, [f"'{CONTENTION_ANSWERS[plan.op]}' (expected)", fig.contention_answers])
    figures += [["CSP calls", limits.get("calls", 0)], ["throttled answers", limits.get("throttled", 0)],
                ["throttling retries", limits.get("retries", 0)], ["calls given up", limits.get("gave_up", 0)],
                ["seconds waiting on throttling", limits.get("waited_s", 0.0)],
                ["peak CSP calls in flight (since server start)", limits.get("peak_inflight", 0)]]
    figures += [[f"server: {k}", v] for k, v in (limits.get("server") or {}).items()]  # from /spider/metrics
    if lock_summary is not None:
        figures += [["lock peak holders", lock_summary["peak_holders"]],
                    ["lock peak waiters", lock_summary["peak_waiters"]],
                    ["longest lock hold (ms)", lock_summary["longest_hold"]["ms"]]]
    tables = [MetricsTable("Summary", ["figure", "value"], figures, slug="summary"),
              MetricsTable("Failures by message", ["message", "count"],
                           [[m, c] for m, c in fig.failures_by_message] or [["(none)", 0]], slug="failures"),
              MetricsTable("Requests", ["name", "requests", "failures", "ops/s", "p50 ms", "p95 ms", "p99 ms",
                                        "max ms"],
                           [[r["name"], r["requests"], r["failures"], round(r["ops_per_s"], 2), r["p50"], r["p95"],
                             r["p99"], round(r["max_ms"] or 0, 1)] for r in fig.stats_rows],
                           slug="requests")]
    charts = latency_charts(fig)
    if monitor is not None:
        tables.append(monitor.summary_table())  # the per-sample timeline goes to CSV only (too long for markdown)
        charts += monitor.charts()
    props = {"op": plan.op, "resource": plan.resource, "users": plan.users, "connection": plan.connection,
             "mode": mode, "loop": plan.loop, "run_id": plan.run_id, "processes": args.processes,
             "workers": (f"{args.expect_workers} (master on {args.master_bind_host}:{args.master_bind_port})"
                         if getattr(args, "master", False) else "local"),
             "server": args.server, "locust_exit_code": locust_rc, "ops_per_s": round(fig.ops_per_s, 2),
             "p50_ms": fig.p50, "p95_ms": fig.p95, "p99_ms": fig.p99, "limits": limits,
             "lock_monitor": lock_summary if lock_summary is not None else "not available",
             "counts_before": counts_before, "counts_after": counts_after,
             "cleanup_deleted": cleanup.deleted if cleanup else {}, "figures": {str(k): v for k, v in figures}}
    links = {"Locust's own HTML report": LOCUST_HTML} if (Path(args.out) / LOCUST_HTML).exists() else {}
    return SuiteResult(name=f"spider load {plan.op} {plan.resource}", target=plan.connection,
                       cases=[case, cleanup_case], started_at=started, duration_s=duration_s, errors=errors,
                       properties=props, tables=tables, charts=charts, links=links)


def latency_charts(fig: RunFigures) -> list[LatencyChart]:
    """The latency distribution (x: percentile) always; latency over time when the run was long enough
    for Locust's per-second history to have two points."""
    agg = next((r for r in fig.stats_rows if r["name"] == "Aggregated"), None)
    charts = []
    if agg is not None and fig.requests:
        points = [(p, number(agg.get(f"p{p:g}"))) for p in PERCENTILES]
        charts.append(LatencyChart("Latency by percentile (x: percentile, y: ms)", {"latency": points},
                                   slug="latency-percentiles"))
    rows = [r for r in fig.history if r.get("Name") == "Aggregated" and number(r.get("Total Request Count")) > 0]
    if len(rows) >= 2:
        t0 = number(rows[0].get("Timestamp"))
        series = {label: [(number(r.get("Timestamp")) - t0, number(r.get(col))) for r in rows
                          if r.get(col) not in (None, "N/A")] for label, col in (("p50", "50%"), ("p95", "95%"),
                                                                                    ("p99", "99%"))}
        charts.append(LatencyChart("Latency over time (x: s)", series, slug="latency-over-time"))
    return charts


def summary_text(suite: SuiteResult, fig: RunFigures, out: Path, code: int) -> str:
    rows = suite.tables[0].rows
    width = max(len(str(r[0])) for r in rows)
    lines = [f"spider load: {suite.cases[0].name} on {suite.target}: "
             f"{'PASS' if code == 0 else 'FAIL' if code == 1 else 'ERROR'}"]
    lines += [f"  {str(k).ljust(width)}  {v}" for k, v in rows]
    if fig.failures_by_message:
        lines.append("  failures by message:")
        lines += [f"    {c:6d}  {m}" for m, c in fig.failures_by_message[:10]]
    for case in suite.reported_cases():
        lines += [f"  {case.name}: {p}" for p in case.problems()]
    lines.append(f"  reports: {out}/ (report.md summary.md result.json junit.xml *.csv *.svg, locust.html, "
                 "locust_*.csv)")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run

async def _monitor_start(server: str, threshold_s: float) -> Any:
    """The lock monitor (concurrency/monitor.py) when it is installed; None otherwise, and the report
    says "not available" instead of lock figures."""
    try:
        from concurrency.monitor import LockMonitor
    except ImportError:
        return None
    return await LockMonitor(server, interval=0.1, hold_threshold_s=threshold_s).start()


async def run_async(args: argparse.Namespace, plan_holder: dict[str, Any]) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("locust*"):
        stale.unlink()
    rest = Rest(args.server)
    try:
        connection, registered = await asyncio.to_thread(scenario.resolve_connection, rest, args.csp, args.twin)
    except Exception as exc:  # noqa: BLE001 - refused before anything was created
        print(f"spider load: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    plan = LoadPlan(op=args.op, resource=args.resource, users=args.n, connection=connection,
                    same_name=args.same_name, loop=args.loop, prefix=args.prefix, image=args.image,
                    spec=args.spec, action=args.action, list_size=args.list_size,
                    async_jobs=getattr(args, "async_jobs", False))
    plan_holder["plan"] = plan
    if registered and not args.quiet:
        print(f"spider load: registered connection {connection}", flush=True)
    started, t0 = datetime.now().astimezone(), time.monotonic()
    errors: list[str] = []
    counts_before = await asyncio.to_thread(scenario.resource_counts, rest, connection)
    limits_before = await asyncio.to_thread(scenario.limit_stats, rest, connection)
    metrics_before = await asyncio.to_thread(scenario.server_metrics, rest)
    monitor, lock_summary, locust_rc, cleanup_report = None, None, None, None
    counts_after, locks_left = None, []
    interrupted = False
    # setup runs in a thread that a cancellation cannot stop: cleanup waits for it, or it would race
    setup_done = asyncio.ensure_future(asyncio.to_thread(scenario.setup, rest, plan))
    try:
        try:
            await asyncio.shield(setup_done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as a suite error; cleanup still runs
            errors.append(f"setup failed: {getattr(exc, 'message', exc)}")
        if not errors:
            monitor = await _monitor_start(args.server, args.lock_threshold)
            locust_rc = await run_locust(locust_command(plan, args, out), out / "locust.log")
            if not (out / "locust_stats.csv").exists():
                errors.append(f"Locust exited with {locust_rc} and wrote no statistics: see {out / 'locust.log'}")
    except asyncio.CancelledError:
        interrupted = True
        errors.append("interrupted")
    finally:
        # cleanup must finish even when a second signal arrives: it runs in a thread, shielded
        await asyncio.wait([setup_done])
        if monitor is not None:
            lock_summary = await asyncio.shield(monitor.stop())
        cleanup_report = await asyncio.shield(asyncio.to_thread(scenario.cleanup, rest, plan, args.cleanup_patience))
        try:
            counts_after = await asyncio.shield(asyncio.to_thread(scenario.resource_counts, rest, connection))
            locks_left = await asyncio.shield(asyncio.to_thread(scenario.wait_for_no_locks, rest, connection))
        except Exception as exc:  # noqa: BLE001
            errors.append(f"verification failed: {getattr(exc, 'message', exc)}")
    limits_after = await asyncio.to_thread(scenario.limit_stats, rest, connection)
    limits = limit_delta(limits_before, limits_after)
    limits["server"] = scenario.metrics_delta(metrics_before, await asyncio.to_thread(scenario.server_metrics, rest))
    fig = read_figures(plan, out)
    suite = build_suite(plan, args, fig, started=started, duration_s=time.monotonic() - t0,
                        limits=limits, lock_summary=lock_summary, monitor=monitor,
                        counts_before=counts_before, counts_after=counts_after, locks_left=locks_left,
                        cleanup=cleanup_report, errors=errors, locust_rc=locust_rc)
    code = write_reports(suite, out, title=f"spider load {plan.op} {plan.resource} {args.csp} {plan.users}")
    if monitor is not None:
        write_csv(monitor.metrics_table(), out / "lock-timeline.csv")
    if not args.quiet:
        print(summary_text(suite, fig, out, code), flush=True)
    return EXIT_INTERRUPTED if interrupted else code


def check_mode(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line for its mode (worker, master, or one machine), if anything."""
    if args.worker:
        if args.master or args.op or args.csp or args.n is not None:
            return "--worker takes no OP CSP N and no --master: the master sends the template"
        return None
    if not args.op or not args.csp or args.n is None or not args.resource:
        return "give OP CSP N and --resource R (or --worker --master-host HOST)"
    if args.master and args.processes > 1:
        return "--master waits for workers started elsewhere; --processes starts local ones: choose one"
    if args.master and args.expect_workers < 1:
        return "--expect-workers must be at least 1"
    return None


def run(args: argparse.Namespace) -> int:
    problem = check_mode(args)
    if problem:
        print(f"spider load: {problem}", file=sys.stderr)
        return 2
    if args.worker:
        return run_worker(args)
    warning = master_warning(args)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        LoadPlan(op=args.op, resource=args.resource, users=args.n, connection="-", action=args.action)
    except ValueError as exc:
        print(f"spider load: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        hits = {"n": 0}

        def on_signal(name: str) -> None:
            hits["n"] += 1
            print(f"spider load: {name}: " + ("stopping and cleaning up ..." if hits["n"] == 1
                                              else "still cleaning up, please wait"), file=sys.stderr, flush=True)
            if hits["n"] == 1 and task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            return await run_async(args, {})
        except asyncio.CancelledError:
            return EXIT_INTERRUPTED

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spider load", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
