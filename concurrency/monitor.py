"""Lock monitor: samples a Spider's SP-Lock view during a load run into a timeline.

CB-Spider's concurrency tests read ``/splockinfo`` by eye after the run; this samples the rich view
(``GET {server}/spider/splockinfo?detail=true``: per key holders, waiters, held_for_ms, refcount; per
family wait/hold percentiles) every ``interval`` seconds while the run goes on, so a report can say how
many requests held or waited on a lock at the peak, which key was held longest, whether any key was
held past a threshold (a stuck CSP call, a lock held across a slow operation), whether any request
waited for a key past a threshold, and for whom (the holders' requests: a VPC delete waiting for the
VM creates in that VPC is the lock hierarchy working; SG creates waiting for each other on their VPC
is serialisation), and whether any entry was left behind after the run (a leaked lock: every entry
should be gone once its requests ended).

API (what the load harness uses)::

    from concurrency.monitor import LockMonitor

    async with LockMonitor("http://127.0.0.1:1024", interval=0.1, hold_threshold_s=5.0,
                           wait_threshold_s=5.0,               # default: hold_threshold_s
                           auth=("user", "pass")) as mon:      # auth optional (Basic)
        ...run the load...
    # leaving the block == ``await mon.stop()``: waits ``grace_s`` (0.5 s), takes a final sample
    mon.summary()        # dict: samples, failed_samples, peak_holders, peak_waiters, peak_entries,
                         #   longest_hold {key, ms, t_s}, long_holds [{key, held_ms, first_seen_s}],
                         #   long_waits [{key, waited_ms, first_seen_s, holder_requests, waiter_requests}],
                         #   leftovers [{key, holders, waiters, refcount, held_for_ms}],
                         #   family_peaks {family: {holders, waiters, entries}}, family_stats, mode, ok
    mon.metrics_table()  # reports.MetricsTable "Lock timeline" (one row per sample) -> CSV
    mon.summary_table()  # reports.MetricsTable "Lock peaks" (figure, value) for the markdown report
    mon.charts()         # [LatencyChart "lock holders and waiters" (count), "longest lock hold" (ms)]
    mon.samples          # list[LockSample]; mon.long_holds; mon.leftovers; mon.failed_samples

``start()``/``stop()`` can be used instead of ``async with``. A sample that fails (server busy,
restarting, refusing) is counted in ``failed_samples`` and the timeline goes on. A key is *flagged*
once, the first time its current hold exceeds ``hold_threshold_s``; its ``held_ms`` keeps growing to the
longest hold seen for it. A wait is flagged the same way against ``wait_threshold_s``, with the requests
that held the key and the requests that waited when the longest wait was seen (a Spider before the
lock hierarchy reports no waits: nothing is flagged). Keys are ``family/connection/name``.

Alone: ``python -m concurrency.monitor --server URL --duration S --out DIR`` writes ``timeline.csv``,
``timeline.json``, ``lock-timeline.png``/``.svg``, ``lock-hold.png``/``.svg`` and ``summary.md`` (exit 1 when a key was
held past the threshold or an entry was left, 2 when no sample succeeded; ``--duration 0`` runs until
Ctrl-C; ``--wait-threshold`` sets the wait flag, default the ``--threshold``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from reports.model import LatencyChart, MetricsTable

__all__ = ["LockMonitor", "LockSample", "LongHold", "LongWait", "Leftover", "lock_key"]

FAMILIES = ("vpc", "sg", "key", "vm")  # /splockinfo's order; other families are kept as they come


def lock_key(entry: dict[str, Any]) -> str:
    return f"{entry.get('family', '')}/{entry.get('connection', '')}/{entry.get('name', '')}"


@dataclass
class LockSample:
    """The lock view at one moment: totals, the longest current hold and per-family counts."""

    t_s: float                      # seconds since the monitor started
    holders: int
    waiters: int
    entries: int
    longest_hold_ms: float
    longest_hold_key: str
    families: dict[str, dict[str, int]] = field(default_factory=dict)  # family -> holders/waiters/entries


@dataclass
class LongHold:
    key: str
    held_ms: float       # the longest hold of this key seen while it was flagged
    first_seen_s: float  # when it was first seen past the threshold


@dataclass
class LongWait:
    key: str
    waited_ms: float                 # the longest current wait seen on this key while it was flagged
    first_seen_s: float              # when a wait on it was first seen past the threshold
    holder_requests: list[str] = field(default_factory=list)  # who held the key at the longest wait
    waiter_requests: list[str] = field(default_factory=list)  # who waited then, oldest first


@dataclass
class Leftover:
    key: str
    holders: int
    waiters: int
    refcount: int
    held_for_ms: float


def summarise_view(view: dict[str, Any], t_s: float) -> LockSample:
    """One ``splockinfo?detail=true`` answer -> a LockSample."""
    families: dict[str, dict[str, int]] = {}
    holders = waiters = 0
    longest, longest_key = 0.0, ""
    entries = view.get("entries") or []
    for entry in entries:
        fam = families.setdefault(entry.get("family", ""), {"holders": 0, "waiters": 0, "entries": 0})
        h, w = int(entry.get("holders", 0)), int(entry.get("waiters", 0))
        fam["holders"] += h
        fam["waiters"] += w
        fam["entries"] += 1
        holders += h
        waiters += w
        held = float(entry.get("held_for_ms", 0.0))
        if h and held > longest:
            longest, longest_key = held, lock_key(entry)
    return LockSample(round(t_s, 3), holders, waiters, len(entries), round(longest, 1), longest_key, families)


class LockMonitor:
    """Polls a Spider's lock view in the background; see the module docstring for the API."""

    def __init__(self, server_url: str, interval: float = 0.1, hold_threshold_s: float = 5.0, *,
                 wait_threshold_s: float | None = None, auth: tuple[str, str] | None = None,
                 grace_s: float = 0.5, timeout_s: float = 2.0) -> None:
        base = server_url.rstrip("/")
        if base.endswith("/spider"):
            base = base[: -len("/spider")]
        self.url = base + "/spider/splockinfo?detail=true"
        self.server_url = base
        self.interval = interval
        self.hold_threshold_ms = hold_threshold_s * 1000.0
        self.wait_threshold_ms = (hold_threshold_s if wait_threshold_s is None else wait_threshold_s) * 1000.0
        self.auth = aiohttp.BasicAuth(*auth) if auth else None
        self.grace_s = grace_s
        self.timeout_s = timeout_s
        self.samples: list[LockSample] = []
        self.failed_samples = 0
        self.last_error = ""
        self.long_holds: dict[str, LongHold] = {}
        self.long_waits: dict[str, LongWait] = {}
        self.leftovers: list[Leftover] = []
        self.final_view: dict[str, Any] = {}
        self.mode = ""
        self._t0 = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> LockMonitor:
        if self._task is not None:
            raise RuntimeError("LockMonitor already started")
        self._session = aiohttp.ClientSession(auth=self.auth,
                                              timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._t0 = time.perf_counter()
        self._task = asyncio.create_task(self._run(), name="lock-monitor")
        return self

    async def stop(self) -> dict[str, Any]:
        """Stop sampling, wait ``grace_s``, take the final sample (leftovers); returns ``summary()``."""
        if self._stopped:
            return self.summary()
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            if self._session is not None:
                await asyncio.sleep(self.grace_s)
                await self._final_sample()
        finally:
            if self._session is not None:
                await self._session.close()
        return self.summary()

    async def __aenter__(self) -> LockMonitor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- sampling ----------------------------------------------------------------------------------

    async def _fetch(self) -> dict[str, Any] | None:
        assert self._session is not None
        try:
            async with self._session.get(self.url) as resp:
                if resp.status != 200:
                    self.last_error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                    return None
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return None

    async def sample(self) -> LockSample | None:
        """Take one sample now (also what the background loop does); None when the server did not answer."""
        view = await self._fetch()
        if view is None:
            self.failed_samples += 1
            return None
        s = summarise_view(view, time.perf_counter() - self._t0)
        self.mode = view.get("mode", self.mode)
        self.samples.append(s)
        for entry in view.get("entries") or []:
            held = float(entry.get("held_for_ms", 0.0))
            if entry.get("holders") and held > self.hold_threshold_ms:
                key = lock_key(entry)
                flagged = self.long_holds.get(key)
                if flagged is None:
                    self.long_holds[key] = LongHold(key, round(held, 1), s.t_s)
                elif held > flagged.held_ms:
                    flagged.held_ms = round(held, 1)
            waited = float(entry.get("waited_for_ms", 0.0))
            if entry.get("waiters") and waited > self.wait_threshold_ms:
                self._flag_wait(entry, waited, s.t_s)
        return s

    def _flag_wait(self, entry: dict[str, Any], waited: float, t_s: float) -> None:
        key = lock_key(entry)
        flagged = self.long_waits.get(key)
        if flagged is None:
            flagged = self.long_waits[key] = LongWait(key, 0.0, t_s)
        if waited > flagged.waited_ms:
            flagged.waited_ms = round(waited, 1)
            flagged.holder_requests = [str(r) for r in entry.get("holder_requests") or []]
            flagged.waiter_requests = [str(r) for r in entry.get("waiter_requests") or []]

    async def _run(self) -> None:
        next_at = time.perf_counter()
        while True:
            await self.sample()
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay < 0:  # a slow answer: skip the missed ticks instead of bursting to catch up
                next_at = time.perf_counter()
                delay = 0
            await asyncio.sleep(delay)

    async def _final_sample(self) -> None:
        for attempt in range(3):
            view = await self._fetch()
            if view is not None:
                self.final_view = view
                summary = summarise_view(view, time.perf_counter() - self._t0)
                self.samples.append(summary)
                self.leftovers = [Leftover(lock_key(e), int(e.get("holders", 0)), int(e.get("waiters", 0)),
                                           int(e.get("refcount", 0)), float(e.get("held_for_ms", 0.0)))
                                  for e in view.get("entries") or []]
                return
            self.failed_samples += 1
            await asyncio.sleep(0.2 * (attempt + 1))
        self.last_error = "final sample failed: " + self.last_error

    # ---- results -----------------------------------------------------------------------------------

    def family_peaks(self) -> dict[str, dict[str, int]]:
        peaks: dict[str, dict[str, int]] = {}
        for s in self.samples:
            for fam, counts in s.families.items():
                p = peaks.setdefault(fam, {"holders": 0, "waiters": 0, "entries": 0})
                for k, v in counts.items():
                    p[k] = max(p[k], v)
        return peaks

    def summary(self) -> dict[str, Any]:
        longest = max(self.samples, key=lambda s: s.longest_hold_ms, default=None)
        return {
            "server": self.server_url,
            "mode": self.mode,
            "interval_s": self.interval,
            "hold_threshold_s": self.hold_threshold_ms / 1000.0,
            "wait_threshold_s": self.wait_threshold_ms / 1000.0,
            "samples": len(self.samples),
            "failed_samples": self.failed_samples,
            "last_error": self.last_error,
            "duration_s": self.samples[-1].t_s if self.samples else 0.0,
            "peak_holders": max((s.holders for s in self.samples), default=0),
            "peak_waiters": max((s.waiters for s in self.samples), default=0),
            "peak_entries": max((s.entries for s in self.samples), default=0),
            "longest_hold": ({"key": longest.longest_hold_key, "ms": longest.longest_hold_ms, "t_s": longest.t_s}
                             if longest and longest.longest_hold_key else {"key": "", "ms": 0.0, "t_s": 0.0}),
            "long_holds": [asdict(h) for h in self.long_holds.values()],
            "long_waits": [asdict(w) for w in self.long_waits.values()],
            "leftovers": [asdict(x) for x in self.leftovers],
            "final_sample": bool(self.final_view),
            "family_peaks": self.family_peaks(),
            "family_stats": self.final_view.get("stats", {}),
            "ok": bool(self.final_view) and not self.leftovers and not self.long_holds and not self.long_waits,
        }

    def metrics_table(self) -> MetricsTable:
        """The whole timeline, one row per sample (what ``timeline.csv`` holds)."""
        fams = sorted({f for s in self.samples for f in s.families},
                      key=lambda f: (FAMILIES.index(f) if f in FAMILIES else len(FAMILIES), f))
        columns = ["t_s", "holders", "waiters", "entries", "longest_hold_ms", "longest_hold_key"]
        columns += [f"{f}_{k}" for f in fams for k in ("holders", "waiters")]
        rows = [[s.t_s, s.holders, s.waiters, s.entries, s.longest_hold_ms, s.longest_hold_key]
                + [s.families.get(f, {}).get(k, 0) for f in fams for k in ("holders", "waiters")]
                for s in self.samples]
        return MetricsTable("Lock timeline", columns, rows, slug="lock-timeline")

    def summary_table(self) -> MetricsTable:
        """Peaks and findings as (figure, value) rows, for a report's markdown."""
        s = self.summary()
        rows: list[list[Any]] = [
            ["lock peak holders", s["peak_holders"]],
            ["lock peak waiters", s["peak_waiters"]],
            ["lock peak entries", s["peak_entries"]],
            ["longest hold", f"{s['longest_hold']['ms']:.0f} ms {s['longest_hold']['key']}".strip()],
            [f"keys held > {s['hold_threshold_s']:g} s", len(s["long_holds"])],
            [f"keys waited on > {s['wait_threshold_s']:g} s", len(s["long_waits"])],
            ["entries left after the run", len(s["leftovers"]) if s["final_sample"] else "unknown"],
            ["samples (failed)", f"{s['samples']} ({s['failed_samples']})"],
        ]
        rows += [[f"flagged: {h['key']}", f"{h['held_ms']:.0f} ms"] for h in s["long_holds"]]
        rows += [[f"waited: {w['key']}", f"{w['waited_ms']:.0f} ms behind {', '.join(w['holder_requests']) or '?'}"]
                 for w in s["long_waits"]]
        rows += [[f"left: {x['key']}", f"holders {x['holders']}, waiters {x['waiters']}"] for x in s["leftovers"]]
        return MetricsTable("Lock peaks", ["figure", "value"], rows, slug="lock-peaks")

    def charts(self) -> list[LatencyChart]:
        """Holders/waiters/entries over time (counts) and the longest current hold over time (ms); x is
        seconds since the monitor started (it starts before the load)."""
        counts = LatencyChart("Lock holders and waiters", {
            "holders": [(s.t_s, s.holders) for s in self.samples],
            "waiters": [(s.t_s, s.waiters) for s in self.samples],
            "entries": [(s.t_s, s.entries) for s in self.samples],
        }, slug="lock-timeline", y_label="count")
        hold = LatencyChart("Longest current lock hold", {
            "longest hold": [(s.t_s, s.longest_hold_ms) for s in self.samples]}, slug="lock-hold",
            y_label="longest hold (ms)")
        return [counts, hold]


# ---- standalone ------------------------------------------------------------------------------------

def summary_markdown(summary: dict[str, Any], table: MetricsTable) -> str:
    lines = [f"# Lock monitor: {summary['server']} (mode {summary['mode'] or '?'})", "",
             f"{summary['samples']} samples every {summary['interval_s']:g} s over {summary['duration_s']:.1f} s; "
             f"{summary['failed_samples']} failed" + (f" (last: {summary['last_error']})" if summary["last_error"] else ""),
             "", "| figure | value |", "|---|---|"]
    lines += [f"| {f} | {str(v).replace('|', '/')} |" for f, v in table.rows]
    if summary["family_peaks"]:
        lines += ["", "| family | peak holders | peak waiters | peak entries |", "|---|---|---|---|"]
        lines += [f"| {fam} | {p['holders']} | {p['waiters']} | {p['entries']} |"
                  for fam, p in summary["family_peaks"].items()]
    if summary["family_stats"]:
        lines += ["", "| family | acquired | wait p50/p95/p99/max ms | hold p50/p95/p99/max ms |", "|---|---|---|---|"]
        for fam, st in summary["family_stats"].items():
            w, h = st["wait_ms"], st["hold_ms"]
            lines.append(f"| {fam} | {st['acquired']} | {w['p50']}/{w['p95']}/{w['p99']}/{w['max']} | "
                         f"{h['p50']}/{h['p95']}/{h['p99']}/{h['max']} |")
    lines += ["", "Verdict: " + ("OK: no key held or waited on past the threshold, no entry left after the run"
                                 if summary["ok"]
                                 else "PROBLEM: see the flagged / left rows above"), ""]
    return "\n".join(lines)


def write_outputs(mon: LockMonitor, out: Path) -> dict[str, Any]:
    from reports.charts import write_chart, write_csv

    out.mkdir(parents=True, exist_ok=True)
    summary = mon.summary()
    write_csv(mon.metrics_table(), out / "timeline.csv")
    (out / "timeline.json").write_text(json.dumps({"summary": summary, "samples": [asdict(s) for s in mon.samples]},
                                                  indent=1), encoding="utf-8")
    for chart in mon.charts():
        write_chart(chart, out, chart.slug)
    (out / "summary.md").write_text(summary_markdown(summary, mon.summary_table()), encoding="utf-8")
    return summary


async def monitor_for(args: argparse.Namespace) -> int:
    user = args.user or os.environ.get("SPIDER_USERNAME", "")
    password = args.password or os.environ.get("SPIDER_PASSWORD", "")
    mon = LockMonitor(args.server, args.interval, args.threshold, wait_threshold_s=args.wait_threshold,
                      auth=(user, password) if user else None, grace_s=args.grace)
    await mon.start()
    try:
        if args.duration > 0:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await mon.stop()
    summary = write_outputs(mon, Path(args.out))
    print(summary_markdown(summary, mon.summary_table()))
    print(f"written to {args.out}: timeline.csv timeline.json lock-timeline.png/.svg lock-hold.png/.svg summary.md")
    if not summary["samples"]:
        return 2
    return 0 if summary["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m concurrency.monitor",
                                 description="Sample a Spider's SP-Lock view into a timeline.")
    ap.add_argument("--server", default="http://127.0.0.1:1024", help="Spider base URL")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds to sample (0: until Ctrl-C)")
    ap.add_argument("--out", default="lock-monitor", help="output directory")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    ap.add_argument("--threshold", type=float, default=5.0, help="flag keys held longer than this (s)")
    ap.add_argument("--wait-threshold", type=float, default=None,
                    help="flag waits longer than this (s), with the holders' requests (default: --threshold)")
    ap.add_argument("--grace", type=float, default=0.5, help="seconds before the final (leftover) sample")
    ap.add_argument("--user", default="", help="Basic auth user (default $SPIDER_USERNAME)")
    ap.add_argument("--password", default="", help="Basic auth password (default $SPIDER_PASSWORD)")
    args = ap.parse_args(argv)
    try:
        return asyncio.run(monitor_for(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
