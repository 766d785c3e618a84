"""Setup and cleanup of a load template over Spider REST, outside the measured phase.

Synchronous on purpose (requests + a thread pool): the same code runs in `spider load`'s plain Python
process and inside a Locust process (the locustfile's `--spider-setup`), where gevent has patched
sockets and threads into greenlets.

Cleanup deletes by name prefix (`LoadPlan.stem`), not from a list kept in memory: whatever the run
created — also by a user that was interrupted half-way, or on another Locust worker — starts with the
run's stem, and nothing else does. `verify` then compares the connection's resource counts with the
counts before the run and looks for lock entries left on the connection.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import requests

from concurrency.plan import COUNT_WORDS, PREREQUISITES, LoadPlan, request_body
from spider_core.client import SpiderAPIError

log = logging.getLogger("spider.load")

MOCK_CONNECTION = "mock-config01"
CLOUDTWIN_CONNECTION = "cloudtwin-cloud-1-config"
DEFAULT_TWIN = "http://127.0.0.1:8192"
# Deletion order: dependants before what they depend on.
CLEANUP_ORDER = ("nlb", "vm", "sg", "keypair", "subnet", "vpc")
LIST_KEYS = {"nlb": "nlb", "vm": "vm", "sg": "securitygroup", "keypair": "keypair", "vpc": "vpc"}
PATH_WORDS = {"sg": "securitygroup"}


class Rest:
    """The Spider's REST API, one JSON call at a time (thread-safe enough: one Session per thread)."""

    def __init__(self, server: str, timeout: float = 600.0) -> None:
        self.server = server.rstrip("/")
        if self.server.endswith("/spider"):
            self.server = self.server[: -len("/spider")]
        self.timeout = timeout
        self._session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        resp = self._session.request(method, self.server + path, json=body, params=params, timeout=self.timeout)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = resp.text
        if resp.status_code >= 300:
            message = data.get("message", str(data)) if isinstance(data, dict) else str(data)
            raise SpiderAPIError(resp.status_code, message, data)
        return data

    def planned(self, plan: LoadPlan, request: tuple[str, str, Any]) -> Any:
        method, path, body = request
        path, body = request_body(plan, method, path, body)
        return self.call(method, path, body)

    def close(self) -> None:
        self._session.close()


def parallel(func: Callable[[Any], Any], items: Iterable[Any], workers: int = 16) -> list[Any]:
    """Run setup/cleanup steps concurrently (the Spider's per-resource lock makes that safe); the
    first exception is raised after every step finished."""
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(func, item) for item in items]
        results, first_error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except Exception as exc:  # noqa: BLE001 - re-raised below, after all steps ended
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return results


# ---------------------------------------------------------------- connections

def _register_quietly(rest: Rest, path: str, body: dict[str, Any]) -> None:
    """A registration step that already exists (e.g. the driver of another connection) is fine."""
    try:
        rest.call("POST", path, body)
    except SpiderAPIError as exc:
        if "already exist" not in exc.message:
            raise


def register_mock(rest: Rest, name: str = MOCK_CONNECTION) -> None:
    """`spider demo`'s MOCK connection (CB-Spider's 9.mock-conn-config.sh)."""
    _register_quietly(rest, "/spider/driver", {"DriverName": "mock-driver01", "ProviderName": "MOCK",
                                               "DriverLibFileName": "mock-driver-v1.0.so"})
    _register_quietly(rest, "/spider/credential", {"CredentialName": "mock-credential01", "ProviderName": "MOCK",
                                                   "KeyValueInfoList": [{"Key": "MockName", "Value": "mock_name00"}]})
    _register_quietly(rest, "/spider/region", {"RegionName": "mock-region01", "ProviderName": "MOCK",
                                               "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]})
    _register_quietly(rest, "/spider/connectionconfig", {
        "ConfigName": name, "ProviderName": "MOCK", "DriverName": "mock-driver01",
        "CredentialName": "mock-credential01", "RegionName": "mock-region01"})


def register_cloudtwin(rest: Rest, twin_url: str, cloud: str = "cloud-1") -> str:
    """CB-Spider's Cloud-Twin registration (as `spider demo`) for one cloud."""
    _register_quietly(rest, "/spider/driver", {"DriverName": "cloudtwin-driver01", "ProviderName": "CLOUDTWIN",
                                               "DriverLibFileName": "cloudtwin-driver-v1.0.so"})
    _register_quietly(rest, "/spider/region", {"RegionName": "cloudtwin-region", "ProviderName": "CLOUDTWIN",
                                               "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]})
    cred = f"cloudtwin-{cloud}-credential01"
    _register_quietly(rest, "/spider/credential", {
        "CredentialName": cred, "ProviderName": "CLOUDTWIN",
        "KeyValueInfoList": [{"Key": "IdentityEndpoint", "Value": twin_url}, {"Key": "DomainName", "Value": cloud},
                             {"Key": "MockName", "Value": "mock_name01"}]})
    name = f"cloudtwin-{cloud}-config"
    _register_quietly(rest, "/spider/connectionconfig", {
        "ConfigName": name, "ProviderName": "CLOUDTWIN", "DriverName": "cloudtwin-driver01",
        "CredentialName": cred, "RegionName": "cloudtwin-region"})
    return name


def resolve_connection(rest: Rest, csp: str, twin_url: str = DEFAULT_TWIN) -> tuple[str, bool]:
    """CSP as the users say it: a connection config name, or `mock` / `cloudtwin`, whose default
    connection is registered when it does not exist. Returns (connection, registered now)."""
    def exists(name: str) -> bool:
        try:
            rest.call("GET", f"/spider/connectionconfig/{name}")
            return True
        except SpiderAPIError:
            return False

    keyword = csp.strip().lower()
    if keyword == "mock":
        if exists(MOCK_CONNECTION):
            return MOCK_CONNECTION, False
        register_mock(rest)
        return MOCK_CONNECTION, True
    if keyword == "cloudtwin":
        if exists(CLOUDTWIN_CONNECTION):
            return CLOUDTWIN_CONNECTION, False
        return register_cloudtwin(rest, twin_url), True
    if exists(csp):
        return csp, False
    raise ValueError(f"no connection config named {csp!r} on the Spider (use a registered name, "
                     "or the keywords mock / cloudtwin)")


# ---------------------------------------------------------------- observations

def resource_counts(rest: Rest, connection: str) -> dict[str, int]:
    out = {}
    for word in COUNT_WORDS:
        data = rest.call("GET", f"/spider/count{word}/{connection}")
        out[word] = int((data or {}).get("count", 0))
    return out


def lock_entries(rest: Rest, connection: str | None = None) -> list[dict[str, Any]]:
    """Sponge-lock entries (of one connection when given) from `GET /spider/splockinfo?detail=true`."""
    data = rest.call("GET", "/spider/splockinfo", params={"detail": "true"}) or {}
    return [e for e in data.get("entries", []) if connection is None or e.get("connection") == connection]


def limit_stats(rest: Rest, connection: str) -> dict[str, Any]:
    """The connection's request limiter (`GET /spider/limitinfo`); empty before its first CSP call."""
    data = rest.call("GET", "/spider/limitinfo", params={"ConnectionName": connection}) or {}
    return next(iter(data.get("limitinfo") or []), {})


# What a run reads from the server's /spider/metrics (summed over labels), before and after.
METRIC_FIGURES = {
    "spider_admission_rejected_total": "requests refused with 503 (admission bound)",
    "spider_jobs_finished_total": "jobs finished",
    "spider_limiter_throttled_total": "throttling answers (all connections)",
    "spider_limiter_retried_total": "throttled calls retried (all connections)",
    "spider_csp_call_duration_seconds_count": "CSP calls (all connections)",
    "spider_csp_call_duration_seconds_sum": "CSP call seconds (all connections)",
    "spider_lock_wait_seconds_sum": "seconds waiting for locks",
}


def server_metrics(rest: Rest) -> dict[str, float]:
    """The METRIC_FIGURES series of ``GET /spider/metrics`` (empty from a server without it)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        resp = rest._session.get(rest.server + "/spider/metrics", timeout=30)
    except requests.RequestException:
        return {}
    if resp.status_code != 200:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name in METRIC_FIGURES:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the run added to each series, labelled for the report."""
    return {label: round(after.get(name, 0.0) - before.get(name, 0.0), 3) for name, label in METRIC_FIGURES.items()
            if name in after}


# ---------------------------------------------------------------- setup

def pick_image_and_spec(rest: Rest, plan: LoadPlan) -> None:
    from sgtest.resources import pick_image, pick_spec

    if not plan.image:
        plan.image = pick_image(rest.call("GET", "/spider/vmimage", params={"ConnectionName": plan.connection})
                                .get("image", []))
    if not plan.spec:
        plan.spec = pick_spec(rest.call("GET", "/spider/vmspec", params={"ConnectionName": plan.connection})
                              .get("vmspec", []))


def setup(rest: Rest, plan: LoadPlan) -> None:
    """Create the prerequisites (base VPC, SG, key pair, NLB member VMs) and, for operations other than
    create, the measured resources themselves. Raises on the first failure (cleanup still runs)."""
    needs = PREREQUISITES[plan.resource]
    if plan.resource in ("vm", "nlb"):
        pick_image_and_spec(rest, plan)
    if "vpc" in needs:
        rest.planned(plan, ("POST", "/spider/vpc", plan.vpc_req(plan.base("vpc"))))
    if "sg" in needs:
        rest.planned(plan, ("POST", "/spider/securitygroup", plan.sg_req(plan.base("sg"))))
    if "keypair" in needs:
        rest.planned(plan, ("POST", "/spider/keypair", {"Name": plan.base("keypair")}))
    if "vms" in needs:
        parallel(lambda name: rest.planned(plan, ("POST", "/spider/vm", plan.vm_req(name))), plan.base_vm_names())
    parallel(lambda i: rest.planned(plan, plan.create_request(plan.target(i), i)), range(plan.prepared_count))


# ---------------------------------------------------------------- cleanup

@dataclass
class CleanupReport:
    deleted: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _names(rest: Rest, plan: LoadPlan, kind: str) -> list[str]:
    if kind == "subnet":
        try:
            vpc = rest.call("GET", f"/spider/vpc/{plan.base('vpc')}", params={"ConnectionName": plan.connection})
        except SpiderAPIError:
            return []
        own = f"{plan.base('vpc')}-subnet"
        return [n for n in (s.get("IId", {}).get("NameId", "") for s in vpc.get("SubnetInfoList") or [])
                if n.startswith(plan.stem) and n != own]
    data = rest.call("GET", f"/spider/{PATH_WORDS.get(kind, kind)}", params={"ConnectionName": plan.connection})
    return [n for n in (i.get("IId", {}).get("NameId", "") for i in (data or {}).get(LIST_KEYS[kind]) or [])
            if n.startswith(plan.stem)]


def _delete(rest: Rest, plan: LoadPlan, kind: str, name: str, deadline: float) -> str | None:
    """Delete one resource with patience (an SG is busy while its VM terminates); force as the last
    resort so the Spider forgets it, and say so. Returns a problem text or None."""
    path = (f"/spider/vpc/{plan.base('vpc')}/subnet/{name}" if kind == "subnet"
            else f"/spider/{PATH_WORDS.get(kind, kind)}/{name}")
    pause, last = 0.2, ""
    while True:
        try:
            rest.call("DELETE", path, {"ConnectionName": plan.connection})
            return None
        except SpiderAPIError as exc:
            if "does not exist" in exc.message or "not found" in exc.message.lower():
                return None
            last = exc.message
        except requests.RequestException as exc:
            last = str(exc)
        if time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
    try:
        rest.call("DELETE", path, {"ConnectionName": plan.connection}, params={"force": "true"})
        return f"{kind} {name}: deleted only with force=true after: {last}"
    except (SpiderAPIError, requests.RequestException) as exc:
        return f"{kind} {name}: not deleted: {getattr(exc, 'message', exc)} (before: {last})"


def cleanup(rest: Rest, plan: LoadPlan, patience_s: float = 180.0) -> CleanupReport:
    """Delete everything of this run, dependants first. Never raises: problems are reported."""
    started = time.monotonic()
    report = CleanupReport()
    deadline = started + patience_s
    for kind in CLEANUP_ORDER:
        try:
            names = _names(rest, plan, kind)
        except (SpiderAPIError, requests.RequestException) as exc:
            report.problems.append(f"listing {kind}: {getattr(exc, 'message', exc)}")
            continue
        results = parallel(lambda n: _delete(rest, plan, kind, n, deadline), names)
        report.deleted[kind] = len(names)
        report.problems += [r for r in results if r]
    report.duration_s = time.monotonic() - started
    return report


def wait_for_no_locks(rest: Rest, connection: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """Lock entries of the connection, after giving in-flight releases a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        entries = lock_entries(rest, connection)
        if not entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)
