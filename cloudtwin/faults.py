"""Fault injection: outages, errors, latency, throttling, stuck or failing transitions and VM crashes.

A fault is a rule: a ``kind``, a ``match`` (globs over cloud, region, zone, service, operation, method,
project), a time window, a probability and, for errors, a count ("fail the next N then succeed").
Rules compose: every active rule that matches a request applies (latencies add up; the first rule that
answers — outage, error, throttle — ends the request). Each rule draws from its own generator seeded
with (twin seed, rule seed, rule id), so a scenario replays identically. Every injection is recorded
in the event log with the request it hit, and the response carries ``X-Twin-Fault: <rule>:<kind>``.

Profiles add the always-on part: per-operation latency and token-bucket rate limits per
cloud x region x operation class (``read``/``write`` or an operation glob).

Kinds (see ``docs`` in README and ``cloudtwin/scenarios/*.yaml``):

* ``outage``      503 in the service's envelope (``mode: 503``), a connection reset (``reset``) or a hang
                  until the window ends (``hang``); scope it with match.cloud/region/zone/service.
* ``error``       any status with the service's envelope (``status``, ``code``, ``message``) or a preset
                  (``quota``, ``internal``, ``unavailable``, ``conflict``, ``not_found``, ``bad_request``).
* ``latency``     ``fixed: s`` | ``uniform: [lo, hi]`` | ``normal: [mean, sd]`` | ``lognormal: [median,
                  sigma]`` | ``exponential: mean`` | ``ramp: [from, to]`` (linear over the window or ``over``).
* ``throttle``    token bucket (``rate``/s, ``burst``) per cloud x region x ``per`` (``class`` = read/write,
                  ``operation`` or ``all``) -> 429 (or the profile's 413) with ``Retry-After``.
* ``malformed``   200 with a truncated JSON body.
* ``stuck``       objects of ``resource`` (server, loadbalancer, ...) entering ``state`` never leave it.
* ``fail_transition``  the transition out of ``state`` ends in the stage's failure state (ERROR).
* ``crash``       at the window start, ACTIVE servers in scope (``count`` or ``fraction``) go to ``to``
                  (ERROR, SHUTOFF or CRASHED).
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cloudtwin import errors, wire
from cloudtwin.background import Background
from cloudtwin.errors import ApiError

if TYPE_CHECKING:
    from cloudtwin.twin import Twin
    from cloudtwin.routing import Call
    from cloudtwin.lifecycles import Placement

DISTRIBUTIONS = ("fixed", "uniform", "normal", "lognormal", "exponential", "ramp")
KINDS = ("outage", "error", "latency", "throttle", "malformed", "stuck", "fail_transition", "crash")
MATCH_KEYS = ("cloud", "region", "zone", "service", "operation", "method", "project")
OUTAGE_MODES = ("503", "reset", "hang")
MAX_HANG = 600.0
PRESETS: dict[str, tuple[int, str | None, str]] = {
    "quota": (403, None, "Quota exceeded for instances: Requested 1, but already used {n} of {n} instances"),
    "internal": (500, None, "The server has either erred or is incapable of performing the requested operation."),
    "unavailable": (503, None, "The service is temporarily unavailable."),
    "conflict": (409, None, "The request could not be completed due to a conflict."),
    "not_found": (404, None, "The resource could not be found."),
    "bad_request": (400, None, "The request is invalid."),
}
NEUTRON_QUOTA = "Quota exceeded for resources: ['port']."
TRANSITION_KINDS = ("stuck", "fail_transition")


def validate_distribution(spec: dict[str, Any]) -> None:
    """``spec`` holds exactly one distribution with sane parameters; raises ValueError otherwise."""
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)}")
    k = kinds[0]
    v = spec[k]
    pair = ("uniform", "normal", "lognormal", "ramp")
    if k in pair:
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
            raise ValueError(f"'{k}' takes two numbers, e.g. {k}: [0.1, 0.5]")
        if min(v) < 0 and k != "normal":
            raise ValueError(f"'{k}' values must be >= 0")
    elif not isinstance(v, (int, float)) or v < 0:
        raise ValueError(f"'{k}' takes one number of seconds >= 0")
    if "over" in spec and (not isinstance(spec["over"], (int, float)) or spec["over"] <= 0):
        raise ValueError("'over' is a positive number of seconds")


def sample(spec: dict[str, Any], rng: random.Random, elapsed: float = 0.0, window: float | None = None) -> float:
    """One delay in seconds from a validated distribution spec."""
    if "fixed" in spec:
        return float(spec["fixed"])
    if "uniform" in spec:
        lo, hi = spec["uniform"]
        return rng.uniform(lo, hi)
    if "normal" in spec:
        mean, sd = spec["normal"]
        return max(0.0, rng.gauss(mean, sd))
    if "lognormal" in spec:
        median, sigma = spec["lognormal"]
        return median * math.exp(rng.gauss(0.0, sigma)) if median > 0 else 0.0
    if "exponential" in spec:
        mean = float(spec["exponential"])
        return rng.expovariate(1.0 / mean) if mean > 0 else 0.0
    lo, hi = spec["ramp"]
    over = float(spec.get("over") or window or 60.0)
    frac = min(1.0, max(0.0, elapsed / over))
    return lo + (hi - lo) * frac


def _time(value: Any, now_wall: float, where: str) -> float:
    """An absolute time: epoch seconds or an ISO-8601 string -> epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ValueError(f"{where}: an epoch number or an ISO-8601 time")


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    last: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until the next token."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class FaultRule:
    id: str
    kind: str
    match: dict[str, str]
    start: float                  # wall-clock epoch seconds
    end: float | None
    probability: float = 1.0
    count: int | None = None      # remaining injections ("fail the next N"); None = unlimited
    status: int | None = None
    code: str | None = None
    message: str | None = None
    mode: str = "503"
    latency: dict[str, Any] = field(default_factory=dict)
    rate: float = 0.0
    burst: int = 0
    per: str = "class"
    resource: str = "server"
    state: str = "BUILD"
    to: str = "ERROR"
    fraction: float | None = None
    seed: int = 0
    source: str = "api"
    hits: int = 0
    applied: bool = False         # crash rules run once
    rng: random.Random = field(default_factory=random.Random, repr=False)
    buckets: dict[tuple[str, ...], TokenBucket] = field(default_factory=dict, repr=False)

    def active(self, now: float) -> bool:
        if now < self.start:
            return False
        if self.end is not None and now >= self.end:
            return False
        return self.count is None or self.count > 0

    def hits_scope(self, attrs: dict[str, str]) -> bool:
        for key, pattern in self.match.items():
            value = attrs.get(key)
            if value is None:
                if pattern != "*":
                    return False
                continue
            if not fnmatch.fnmatchcase(value, pattern):
                return False
        return True

    def roll(self) -> bool:
        return self.probability >= 1.0 or self.rng.random() < self.probability

    def public(self, now: float) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "kind": self.kind, "match": self.match,
                               "start": wire.iso_micro(self.start),
                               "end": wire.iso_micro(self.end) if self.end is not None else None,
                               "active": self.active(now), "probability": self.probability,
                               "count": self.count, "hits": self.hits, "source": self.source, "seed": self.seed}
        extra = {"outage": {"mode": self.mode}, "error": {"status": self.status, "code": self.code,
                                                          "message": self.message},
                 "latency": {"latency": self.latency}, "throttle": {"rate": self.rate, "burst": self.burst,
                                                                    "per": self.per},
                 "stuck": {"resource": self.resource, "state": self.state},
                 "fail_transition": {"resource": self.resource, "state": self.state, "message": self.message},
                 "crash": {"to": self.to, "fraction": self.fraction, "applied": self.applied}}
        doc.update(extra.get(self.kind, {}))
        return doc


def parse_rule(doc: Any, *, rule_id: str, base_seed: int, now: float, source: str = "api") -> FaultRule:
    """Validate one rule document (JSON/YAML) and build the rule; ValueError names the bad field."""
    if not isinstance(doc, dict):
        raise ValueError("a fault is an object with at least 'kind'")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)} (got {kind!r})")
    allowed = {"kind", "match", "start", "at", "duration", "end", "probability", "count", "status", "code",
               "message", "preset", "mode", "rate", "burst", "per", "resource", "state", "to", "fraction",
               "seed", "id", "over", "retry_after", *DISTRIBUTIONS}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    match = doc.get("match") or {}
    if not isinstance(match, dict) or any(k not in MATCH_KEYS for k in match):
        raise ValueError(f"match: an object with keys among {', '.join(MATCH_KEYS)}")
    match = {k: str(v) for k, v in match.items()}
    if "method" in match:
        match["method"] = match["method"].upper()
    # window
    if "at" in doc:
        start = _time(doc["at"], now, "at")
    else:
        delay = doc.get("start", 0)
        if not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError("start: seconds from now (>= 0); use 'at' for an absolute time")
        start = now + float(delay)
    end = None
    if "duration" in doc:
        if not isinstance(doc["duration"], (int, float)) or doc["duration"] <= 0:
            raise ValueError("duration: a positive number of seconds")
        end = start + float(doc["duration"])
    elif "end" in doc:
        end = _time(doc["end"], now, "end")
        if end <= start:
            raise ValueError("end: must be after the start")
    prob = doc.get("probability", 1.0)
    if not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise ValueError("probability: a number between 0 and 1")
    count = doc.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count: a positive integer (fail the next N matching requests)")
    seed = doc.get("seed", 0)
    if not isinstance(seed, int):
        raise ValueError("seed: an integer")
    rid = str(doc.get("id") or rule_id)
    rule = FaultRule(id=rid, kind=kind, match=match, start=start, end=end, probability=float(prob),
                     count=count, seed=seed, source=source,
                     rng=random.Random(f"{base_seed}/{seed}/{rid}"))
    if kind == "outage":
        mode = str(doc.get("mode", "503"))
        if mode not in OUTAGE_MODES:
            raise ValueError(f"mode: one of {', '.join(OUTAGE_MODES)}")
        rule.mode = mode
        rule.message = doc.get("message")
    elif kind == "error":
        preset = doc.get("preset")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"preset: one of {', '.join(PRESETS)}")
        status, code, message = PRESETS.get(preset, (None, None, None)) if preset else (None, None, None)
        status = doc.get("status", status)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status: an HTTP error status (400-599), or give a preset")
        rule.status, rule.code = status, doc.get("code", code)
        rule.message = str(doc.get("message") or message or f"Injected error {status}.")
    elif kind == "latency":
        spec = {k: doc[k] for k in (*DISTRIBUTIONS, "over") if k in doc}
        validate_distribution(spec)
        rule.latency = spec
    elif kind == "throttle":
        rate = doc.get("rate")
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError("rate: requests per second (> 0)")
        rule.rate = float(rate)
        rule.burst = int(doc.get("burst", max(1, math.ceil(rate))))
        if rule.burst < 1:
            raise ValueError("burst: >= 1")
        rule.per = str(doc.get("per", "class"))
        if rule.per not in ("class", "operation", "all"):
            raise ValueError("per: class, operation or all")
        status = doc.get("status")
        if status is not None and status not in (413, 429, 503):
            raise ValueError("status: 413, 429 or 503 for throttling")
        rule.status = status
    elif kind in TRANSITION_KINDS:
        rule.resource = str(doc.get("resource", "server"))
        rule.state = str(doc.get("state", "BUILD"))
        rule.message = doc.get("message")
    elif kind == "crash":
        to = str(doc.get("to", "ERROR"))
        if to not in ("ERROR", "SHUTOFF", "CRASHED"):
            raise ValueError("to: ERROR, SHUTOFF or CRASHED")
        rule.to = to
        frac = doc.get("fraction")
        if frac is not None and (not isinstance(frac, (int, float)) or not 0 < frac <= 1):
            raise ValueError("fraction: between 0 and 1")
        rule.fraction = None if frac is None else float(frac)
        rule.message = str(doc.get("message") or "Instance crashed (injected by Cloud-Twin).")
    return rule


class FaultEngine:
    """Holds the rules and applies them to requests (``before``), transitions and servers."""

    def __init__(self, twin: "Twin") -> None:
        self.twin = twin
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._profile_buckets: dict[tuple[str, str, int], TokenBucket] = {}
        self._profile_rng = random.Random(f"{twin.seed}/profile-latency")
        self._background = Background("cloudtwin-faults", self._tick)
        self.throttled = 0

    # ---- rule management
    def add(self, doc: Any, *, source: str = "api", offset: float = 0.0) -> FaultRule:
        now = time.time()
        rule = parse_rule(doc, rule_id=f"f{next(self._ids)}", base_seed=self.twin.seed, now=now + offset,
                          source=source)
        if any(r.id == rule.id for r in self.rules):
            raise ValueError(f"id: a fault '{rule.id}' already exists")
        self.rules.append(rule)
        self.twin.events.record("fault.added", rule=rule.id, detail=rule.public(now))
        return rule

    def add_many(self, docs: list[Any], *, source: str = "api") -> list[FaultRule]:
        """All or nothing: a bad rule anywhere leaves the engine unchanged."""
        now = time.time()
        parsed = []
        for i, doc in enumerate(docs):
            try:
                parsed.append(parse_rule(doc, rule_id=f"f{next(self._ids)}", base_seed=self.twin.seed,
                                         now=now, source=source))
            except ValueError as exc:
                raise ValueError(f"faults[{i}]: {exc}") from None
        ids = [r.id for r in parsed] + [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("fault ids must be unique")
        self.rules.extend(parsed)
        for r in parsed:
            self.twin.events.record("fault.added", rule=r.id, detail=r.public(now))
        return parsed

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        if len(self.rules) != before:
            self.twin.events.record("fault.removed", rule=rule_id)
            return True
        return False

    def clear(self) -> int:
        n = len(self.rules)
        self.rules.clear()
        self._profile_buckets.clear()
        if n:
            self.twin.events.record("fault.cleared", detail={"removed": n})
        return n

    def get(self, rule_id: str) -> FaultRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    # ---- requests
    def _record(self, call: "Call", rule_id: str, kind: str, status: int | None = None,
                **detail: Any) -> None:
        self.twin.events.record(
            f"fault.{kind}", rule=rule_id, request_id=call.request_id, method=call.request.method,
            path=call.request.path, cloud=call.cloud.name if call.cloud else None,
            region=call.region.name if call.region else None, service=call.route.service,
            operation=call.route.operation, status=status, detail=detail or None)

    def _attrs(self, call: "Call", zone: str | None = None) -> dict[str, str]:
        attrs = {"service": call.route.service, "operation": call.route.operation,
                 "method": call.request.method}
        if call.cloud is not None:
            attrs["cloud"] = call.cloud.name
        if call.region is not None:
            attrs["region"] = call.region.name
        if call.token is not None:
            attrs["project"] = call.token.project.name
        if zone is not None:
            attrs["zone"] = zone
        return attrs

    def _throttle_error(self, call: "Call", wait: float, status: int | None) -> ApiError:
        retry = max(1, math.ceil(wait))
        if status is None:
            status = call.cloud.profile.throttle_status if call.cloud is not None else 429
        return ApiError(status, "This request was rate-limited.", retry_after=retry)

    def _respond(self, call: "Call", err: ApiError, rule_id: str, kind: str) -> web.Response:
        self._record(call, rule_id, kind, err.status)
        return errors.render(call.route.service, err, {"X-Twin-Fault": f"{rule_id}:{kind}"})

    async def before(self, call: "Call") -> web.StreamResponse | None:
        """Apply profile limits/latency and every active rule to a request; a response ends it."""
        if call.route.service in ("admin",):
            return None
        now_wall = time.time()
        now = time.monotonic()
        attrs = self._attrs(call)
        delay = 0.0
        cloud = call.cloud
        # the profile's own behaviour: rate limits, then latency
        if cloud is not None and call.region is not None:
            for i, limit in enumerate(cloud.profile.rate_limits):
                if limit.op_class in ("read", "write"):
                    if limit.op_class != call.route.op_class:
                        continue
                elif not fnmatch.fnmatchcase(call.route.operation, limit.op_class):
                    continue
                key = (cloud.name, call.region.name, i)
                bucket = self._profile_buckets.get(key)
                if bucket is None:
                    bucket = self._profile_buckets[key] = TokenBucket(limit.rate, limit.burst, limit.burst, now)
                wait = bucket.take(now)
                if wait > 0:
                    self.throttled += 1
                    return self._respond(call, self._throttle_error(call, wait, None), f"profile:{cloud.profile.name}",
                                         "throttle")
            for spec in cloud.profile.latency:
                if fnmatch.fnmatchcase(call.route.operation, spec.operation):
                    delay += sample(spec.dist, self._profile_rng)
                    break
        for rule in self.rules:
            if rule.kind in TRANSITION_KINDS or rule.kind == "crash" or not rule.active(now_wall):
                continue
            if rule.match.get("zone", "*") != "*":
                continue  # zone-scoped rules apply where the zone is known (zone_check)
            if not rule.hits_scope(attrs) or not rule.roll():
                continue
            response = await self._apply(call, rule, now, now_wall)
            if isinstance(response, float):
                delay += response
                continue
            if response is not None:
                return response
        if delay > 0:
            await asyncio.sleep(delay)
        return None

    async def _apply(self, call: "Call", rule: FaultRule, now: float, now_wall: float
                     ) -> web.StreamResponse | float | None:
        """One matching rule: a response, an added delay (float), or None (no effect)."""
        if rule.kind == "latency":
            d = sample(rule.latency, rule.rng, now_wall - rule.start,
                       (rule.end - rule.start) if rule.end is not None else None)
            rule.hits += 1
            self._record(call, rule.id, "latency", None, seconds=round(d, 4))
            return d
        if rule.kind == "throttle":
            key: tuple[str, ...] = (attrs_get(call, "cloud"), attrs_get(call, "region"))
            key += {"class": (call.route.op_class,), "operation": (call.route.operation,), "all": ()}[rule.per]
            bucket = rule.buckets.get(key)
            if bucket is None:
                bucket = rule.buckets[key] = TokenBucket(rule.rate, rule.burst, rule.burst, now)
            wait = bucket.take(now)
            if wait <= 0:
                return None
            rule.hits += 1
            self.throttled += 1
            return self._respond(call, self._throttle_error(call, wait, rule.status), rule.id, "throttle")
        rule.hits += 1
        if rule.count is not None:
            rule.count -= 1
        if rule.kind == "error":
            assert rule.status is not None
            return self._respond(call, ApiError(rule.status, rule.message or "", code=rule.code), rule.id, "error")
        if rule.kind == "malformed":
            self._record(call, rule.id, "malformed", 200)
            return web.Response(status=200, body=b'{"truncated": [', content_type=wire.JSON,
                                headers={"X-Twin-Fault": f"{rule.id}:malformed"})
        # outage
        scope = "/".join(f"{k}={v}" for k, v in rule.match.items()) or "everything"
        if rule.mode == "503":
            msg = rule.message or f"The service is unavailable: injected outage ({scope})."
            return self._respond(call, ApiError(503, msg, retry_after=_remaining(rule, now_wall)), rule.id, "outage")
        self._record(call, rule.id, "outage", None, mode=rule.mode)
        if rule.mode == "hang":
            await asyncio.sleep(min(MAX_HANG, (rule.end - now_wall) if rule.end is not None else MAX_HANG))
        transport = call.request.transport
        if transport is not None:
            transport.abort()  # RST to the client; aiohttp then drops the unsent response quietly
        return web.Response(status=503)

    def zone_check(self, call: "Call", zone: str) -> None:
        """Raise the injected outage/error for an AZ-scoped rule once a handler knows the zone."""
        now_wall = time.time()
        attrs = self._attrs(call, zone)
        for rule in self.rules:
            if rule.kind not in ("outage", "error") or rule.match.get("zone", "*") == "*":
                continue
            if not rule.active(now_wall) or not rule.hits_scope(attrs) or not rule.roll():
                continue
            rule.hits += 1
            if rule.count is not None:
                rule.count -= 1
            if rule.kind == "error":
                err = ApiError(rule.status or 500, rule.message or "", code=rule.code)
            else:
                err = ApiError(503, rule.message or f"Availability zone {zone} is unavailable: injected outage.",
                               retry_after=_remaining(rule, now_wall))
            err.headers["X-Twin-Fault"] = f"{rule.id}:{rule.kind}"
            self._record(call, rule.id, rule.kind, err.status, zone=zone)
            raise err

    # ---- transitions and servers
    def transition_hook(self, placement: "Placement", kind: str, obj: Any, state: str
                        ) -> tuple[str, str, str] | None:
        if not self.rules:
            return None
        now_wall = time.time()
        attrs = {"cloud": placement.cloud, "region": placement.region, "zone": placement.zone,
                 "project": placement.project}
        for rule in self.rules:
            if rule.kind not in TRANSITION_KINDS or rule.resource != kind or rule.state != state:
                continue
            scope = {k: v for k, v in rule.match.items() if k in attrs}
            probe = FaultRule(id=rule.id, kind=rule.kind, match=scope, start=rule.start, end=rule.end)
            if not rule.active(now_wall) or not probe.hits_scope(attrs) or not rule.roll():
                continue
            rule.hits += 1
            if rule.count is not None:
                rule.count -= 1
            verdict = "stuck" if rule.kind == "stuck" else "fail"
            self.twin.events.record(f"fault.{rule.kind}", rule=rule.id, cloud=placement.cloud,
                                    region=placement.region, zone=placement.zone or None,
                                    detail={"resource": kind, "id": obj.id, "state": state})
            return verdict, rule.id, rule.message or ""
        return None

    def apply_crashes(self) -> int:
        """Run crash rules whose window has started; each runs once. Returns servers crashed."""
        now_wall = time.time()
        crashed = 0
        for rule in self.rules:
            if rule.kind != "crash" or rule.applied or not rule.active(now_wall):
                continue
            rule.applied = True
            victims = []
            for cloud in list(self.twin.clouds.values()):
                if not fnmatch.fnmatchcase(cloud.name, rule.match.get("cloud", "*")):
                    continue
                for region in cloud.regions.values():
                    if not fnmatch.fnmatchcase(region.name, rule.match.get("region", "*")):
                        continue
                    nova = region.services.get("nova")
                    if nova is None:
                        continue
                    names = {p.id: p.name for p in cloud.projects.values()}
                    want_project = rule.match.get("project", "*")
                    for server in list(nova.servers.values()):
                        zone = getattr(server, "availability_zone", "") or ""
                        project_ok = (fnmatch.fnmatchcase(server.project_id, want_project)
                                      or fnmatch.fnmatchcase(names.get(server.project_id, ""), want_project))
                        if server.state == "ACTIVE" and project_ok and fnmatch.fnmatchcase(
                                zone, rule.match.get("zone", "*")):
                            victims.append((nova, server))
            victims.sort(key=lambda v: v[1].id)
            if rule.fraction is not None:
                victims = [v for v in victims if rule.rng.random() < rule.fraction]
            if rule.count is not None:
                victims = victims[:rule.count]
            for nova, server in victims:
                nova.crash(server, rule.to, rule.message or "")
                rule.hits += 1
                self.twin.events.record("fault.crash", rule=rule.id, cloud=nova.region.cloud.name,
                                        region=nova.region.name, detail={"server": server.id, "to": rule.to})
            crashed += len(victims)
        return crashed

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if any(r.kind == "crash" and not r.applied for r in self.rules):
                self.apply_crashes()

    def public(self) -> list[dict[str, Any]]:
        now = time.time()
        return [r.public(now) for r in self.rules]


def attrs_get(call: "Call", key: str) -> str:
    if key == "cloud":
        return call.cloud.name if call.cloud else ""
    return call.region.name if call.region else ""


def _remaining(rule: FaultRule, now_wall: float) -> int | None:
    if rule.end is None:
        return None
    return max(1, math.ceil(rule.end - now_wall))
