"""Prometheus metrics for ``GET /spider/metrics``, with the maintained ``prometheus_client``.

Events are counted where they happen (requests and their latency by route and status, lock waits,
CSP calls by cloud and operation, admission refusals, finished jobs); levels that already live in
the server (lock holders and waiters, each connection's request limiter, the admission gates, the
job queue) are read at scrape time by a collector instead of being copied on every change.

Each ``Spider`` has its own registry: tests run many servers in one process, and the global default
registry would refuse a second set of metrics with the same names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from spider_core.calllog import call_log
from spider_core.errors import SpiderError

if TYPE_CHECKING:
    from spider_core.services.context import Spider

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0)


class Metrics:
    """The metrics of one Spider server."""

    def __init__(self, spider: "Spider") -> None:
        self.registry = CollectorRegistry()  # no auto-describe: the live collector reads the server at scrape only
        r = self.registry
        self._spider = spider
        self.requests = Counter("spider_http_requests", "HTTP requests answered, by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("spider_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.lock_wait = Histogram("spider_lock_wait_seconds", "Time spent waiting for a sponge lock, by family",
                                   ["family"], buckets=_LATENCY_BUCKETS, registry=r)
        self.csp_latency = Histogram("spider_csp_call_duration_seconds", "CSP call latency by cloud and operation",
                                     ["cloud", "operation", "outcome"], buckets=_LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("spider_admission_rejected", "Requests refused with 503 by the admission bound",
                                ["scope"], registry=r)
        self.jobs_finished = Counter("spider_jobs_finished", "Jobs finished, by status and origin",
                                     ["status", "origin"], registry=r)
        # levels that live in the MetaDB, read by ``refresh`` before each scrape (a collector cannot await)
        self.open_intents: int | None = None
        self.cluster: dict | None = None
        r.register(_LiveState(spider))
        spider.locks.on_wait = self._lock_waited
        call_log.observers.append(self._csp_call)

    def _lock_waited(self, family: str, seconds: float) -> None:
        self.lock_wait.labels(family).observe(seconds)

    def _csp_call(self, cloud_os: str, api: str, elapsed: float, failed: bool) -> None:
        self.csp_latency.labels(cloud_os, api, "error" if failed else "ok").observe(elapsed)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    async def refresh(self) -> None:
        """Read the MetaDB's levels: open intents, and on a cluster every replica's locks."""
        sp = self._spider
        try:
            self.open_intents = await sp.db.count_open_intents()
            if sp.replica is not None:
                from spider_core.cluster_view import cluster_view
                self.cluster = await cluster_view(sp)
        except SpiderError:  # the MetaDB is closed (a scrape during shutdown)
            pass

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        try:
            call_log.observers.remove(self._csp_call)
        except ValueError:
            pass


class _LiveState(Collector):
    """Levels read from the server at scrape time."""

    def __init__(self, spider: "Spider") -> None:
        self.sp = spider

    def collect(self) -> Iterable[Any]:
        sp = self.sp
        holders = GaugeMetricFamily("spider_lock_holders", "Sponge-lock holders now, by family", labels=["family"])
        waiters = GaugeMetricFamily("spider_lock_waiters", "Sponge-lock waiters now, by family", labels=["family"])
        per_family: dict[str, list[int]] = {}
        for entry in sp.locks.snapshot()["entries"]:
            counts = per_family.setdefault(entry["family"], [0, 0])
            counts[0] += entry["holders"]
            counts[1] += entry["waiters"]
        for family, (h, w) in sorted(per_family.items()):
            holders.add_metric([family], h)
            waiters.add_metric([family], w)
        yield holders
        yield waiters

        inflight = GaugeMetricFamily("spider_limiter_inflight", "CSP calls in flight per connection",
                                     labels=["connection"])
        queued = GaugeMetricFamily("spider_limiter_queued", "CSP calls waiting for the connection's bound",
                                   labels=["connection"])
        throttled = CounterMetricFamily("spider_limiter_throttled", "Throttling answers from the CSP",
                                        labels=["connection"])
        retried = CounterMetricFamily("spider_limiter_retried", "CSP calls retried after throttling",
                                      labels=["connection"])
        gave_up = CounterMetricFamily("spider_limiter_gave_up", "Throttled CSP calls given up",
                                      labels=["connection"])
        for name, lim in sorted(sp.limiters.items()):
            inflight.add_metric([name], lim.inflight)
            queued.add_metric([name], lim.queued)
            throttled.add_metric([name], lim.throttled)
            retried.add_metric([name], lim.retries)
            gave_up.add_metric([name], lim.gave_up)
        yield from (inflight, queued, throttled, retried, gave_up)

        adm = sp.admission
        a_in = GaugeMetricFamily("spider_admission_inflight", "Requests holding an admission slot",
                                 labels=["scope"])
        a_q = GaugeMetricFamily("spider_admission_queued", "Requests waiting for an admission slot",
                                labels=["scope"])
        a_in.add_metric(["server"], adm.server.inflight)
        a_q.add_metric(["server"], adm.server.queued)
        for name, gate in sorted(adm.connections.items()):
            a_in.add_metric([f"connection:{name}"], gate.inflight)
            a_q.add_metric([f"connection:{name}"], gate.queued)
        yield a_in
        yield a_q

        jobs = GaugeMetricFamily("spider_jobs", "Jobs by state (queued = the job queue depth)", labels=["status"])
        jobs.add_metric(["queued"], sp.jobs.queued)
        jobs.add_metric(["running"], sp.jobs.running)
        yield jobs
        intents = GaugeMetricFamily("spider_open_intents", "Creates/deletes whose cloud call is in flight or "
                                                           "awaits reconciliation")
        if sp.metrics.open_intents is not None:
            intents.add_metric([], sp.metrics.open_intents)
        yield intents
        yield from _cluster_families(sp.metrics.cluster)
        ready = GaugeMetricFamily("spider_ready", "1 when /spider/readyz answers 200")
        ready.add_metric([], 1 if sp.readiness()[0] else 0)
        yield ready


def _cluster_families(view: dict | None) -> Iterable[Any]:
    """Cluster-wide lock holders and waiters by family and replica, and the replicas' liveness."""
    if view is None:
        return
    holders = GaugeMetricFamily("spider_cluster_lock_holders", "Sponge-lock holders in the whole cluster, by "
                                "family and the replica holding", labels=["family", "replica"])
    waiters = GaugeMetricFamily("spider_cluster_lock_waiters", "Requests waiting for a lock another replica holds, "
                                "by family and the replica waiting", labels=["family", "replica"])
    for key, target in (("holders", holders), ("waiters", waiters)):
        counts: dict[tuple[str, str], int] = {}
        for entry in view["locks"]:
            for who in entry[key]:
                counts[(entry["family"], who["replica"])] = counts.get((entry["family"], who["replica"]), 0) + 1
        for (family, replica), n in sorted(counts.items()):
            target.add_metric([family, replica], n)
    yield holders
    yield waiters
    alive = GaugeMetricFamily("spider_cluster_replica_up", "1 for each replica whose lease is current",
                              labels=["replica"])
    for rep in view["replicas"]:
        alive.add_metric([rep["id"]], 1 if rep["alive"] else 0)
    yield alive
