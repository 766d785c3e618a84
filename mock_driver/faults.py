"""Faults for MOCK connections: Cloud-Twin's rule schema, applied at the boto3 boundary.

The rules are Cloud-Twin's (``cloudtwin.faults.parse_rule``: the same fields, windows, counts,
probabilities and seeds, the same validation messages), restricted to the kinds that make sense for
a request-level AWS emulation: ``throttle``, ``error``, ``latency`` and ``outage``. ``/spider/mock/faults``
manages them and ``/spider/mock/events`` shows every injection with the call it hit.

What a MOCK call is matched on:

==============  ====================================================================
``cloud``       ``mock``
``project``     the connection's credential ``MockName`` (its moto account)
``region``      the MOCK region (``default``, ...)
``service``     ``ec2`` or ``elbv2``
``operation``   ``<service>:<AWS operation>``, e.g. ``ec2:CreateVpc``, ``ec2:Describe*``
``method``      ``POST`` for writes, ``GET`` for reads (``Describe*``, ``Get*``, ``List*``): the
                operation class, so ``{"method": "POST"}`` throttles writes as on Cloud-Twin
==============  ====================================================================

Effects, as AWS answers them: throttling is ``RequestLimitExceeded`` (HTTP 503, or the rule's
``status``); an ``error`` rule gives its ``status``/``code``/``message`` or a preset's AWS code; an
outage is ``Unavailable`` (``mode: 503``), a closed connection (``reset``) or a call that hangs until
the window ends and then times out (``hang``); latency delays the call. The decision is made here, in
the server, per attempt (a retried call meets the token bucket again); the error itself is produced
by botocore in the client (``mock_driver.fault_hooks``). Delays are slept on the event loop before the
call reaches moto, which serves one call at a time: a slow call must not hold every other one up.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from cloudtwin.events import EventLog
from cloudtwin.faults import MAX_HANG, FaultRule, TokenBucket, parse_rule, sample
from mock_driver.fault_hooks import FAULT_PARAM
from spider_core.drivers.aws.session import AwsSession

MOCK_KINDS = ("throttle", "error", "latency", "outage")
READ_PREFIXES = ("Describe", "Get", "List")
# Cloud-Twin's presets as EC2 answers them: (HTTP status, AWS error code)
PRESETS: dict[str, tuple[int, str]] = {
    "quota": (400, "InstanceLimitExceeded"),
    "internal": (500, "InternalError"),
    "unavailable": (503, "Unavailable"),
    "conflict": (400, "IncorrectState"),
    "not_found": (400, "InvalidResourceID.NotFound"),
    "bad_request": (400, "InvalidParameterValue"),
}


@dataclass
class Verdict:
    """What the rules decided for one attempt of one call."""

    delay: float = 0.0
    fault: dict[str, Any] | None = None   # what fault_hooks turns into an AWS answer
    hang: float = 0.0


def operation_name(api: str) -> str:
    """boto3's ``describe_vpcs`` -> AWS's ``DescribeVpcs``."""
    return "".join(part[:1].upper() + part[1:] for part in api.split("_"))


class MockFaults:
    """The rules of the process's MOCK cloud and the log of what they did."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = int(os.environ.get("SPIDERTWIN_MOCK_FAULT_SEED", "0")) if seed is None else seed
        self.rules: list[FaultRule] = []
        self.events = EventLog()
        self._ids = itertools.count(1)
        self._presets: dict[str, str] = {}   # rule id -> preset name (for its AWS code)

    # ---- rules ------------------------------------------------------------------------------------

    def add(self, doc: Any) -> list[FaultRule]:
        """One rule or a list of rules, all or nothing; ValueError names the bad field."""
        docs = doc if isinstance(doc, list) else [doc]
        now = time.time()
        parsed = []
        for i, item in enumerate(docs):
            where = f"faults[{i}]: " if isinstance(doc, list) else ""
            if isinstance(item, dict) and item.get("kind") not in MOCK_KINDS and item.get("kind") is not None:
                raise ValueError(f"{where}kind: one of {', '.join(MOCK_KINDS)} for MOCK (got {item.get('kind')!r}; "
                                 "the other kinds act on Cloud-Twin's lifecycle stages)")
            if isinstance(item, dict) and "zone" in (item.get("match") or {}):
                raise ValueError(f"{where}match.zone: MOCK calls are matched by region, not zone")
            try:
                rule = parse_rule(item, rule_id=f"m{next(self._ids)}", base_seed=self.seed, now=now, source="api")
            except ValueError as exc:
                raise ValueError(f"{where}{exc}") from None
            parsed.append((rule, item.get("preset") if "status" not in item else None))
        taken = {r.id for r in self.rules}
        new_ids = [r.id for r, _ in parsed]
        if len(set(new_ids)) != len(new_ids) or taken & set(new_ids):
            raise ValueError("id: fault ids must be unique")
        for rule, preset in parsed:
            self.rules.append(rule)
            if preset:
                self._presets[rule.id] = preset
            self.events.record("fault.added", rule=rule.id, detail=rule.public(now))
        return [r for r, _ in parsed]

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        if len(self.rules) == before:
            return False
        self.events.record("fault.removed", rule=rule_id)
        return True

    def clear(self) -> int:
        n = len(self.rules)
        self.rules.clear()
        self._presets.clear()
        if n:
            self.events.record("fault.cleared", detail={"removed": n})
        return n

    def public(self) -> list[dict[str, Any]]:
        now = time.time()
        return [r.public(now) for r in self.rules]

    # ---- calls ------------------------------------------------------------------------------------

    def decide(self, attrs: dict[str, str], connection: str = "") -> Verdict:
        """Apply every active rule to one attempt of a call; the first answering rule ends it."""
        verdict = Verdict()
        now_wall, now = time.time(), time.monotonic()
        for rule in self.rules:
            if not rule.active(now_wall) or not rule.hits_scope(attrs) or not rule.roll():
                continue
            if rule.kind == "latency":
                seconds = sample(rule.latency, rule.rng, now_wall - rule.start,
                                 (rule.end - rule.start) if rule.end is not None else None)
                rule.hits += 1
                verdict.delay += seconds
                self._record(rule, "latency", attrs, connection, None, seconds=round(seconds, 4))
                continue
            if rule.kind == "throttle":
                key = (attrs["project"], attrs["region"]) + {"class": (attrs["method"],),
                                                             "operation": (attrs["operation"],),
                                                             "all": ()}[rule.per]
                bucket = rule.buckets.get(key)
                if bucket is None:
                    bucket = rule.buckets[key] = TokenBucket(rule.rate, rule.burst, rule.burst, now)
                wait = bucket.take(now)
                if wait <= 0:
                    continue
                rule.hits += 1
                verdict.fault = {"status": rule.status or 503, "code": "RequestLimitExceeded",
                                 "message": "Request limit exceeded.", "retry_after": max(1, math.ceil(wait))}
                self._record(rule, "throttle", attrs, connection, verdict.fault["status"])
                return verdict
            rule.hits += 1
            if rule.count is not None:
                rule.count -= 1
            if rule.kind == "error":
                status, code = PRESETS.get(self._presets.get(rule.id, ""), (rule.status or 500, "InternalError"))
                if rule.id not in self._presets:
                    status = rule.status or status
                verdict.fault = {"status": status, "code": rule.code or code, "message": rule.message or ""}
                self._record(rule, "error", attrs, connection, status)
                return verdict
            # outage
            if rule.mode == "503":
                scope = "/".join(f"{k}={v}" for k, v in rule.match.items()) or "everything"
                verdict.fault = {"status": 503, "code": "Unavailable",
                                 "message": rule.message or f"The service is unavailable: injected outage ({scope})."}
                self._record(rule, "outage", attrs, connection, 503)
                return verdict
            verdict.fault = {"connection": "reset" if rule.mode == "reset" else "timeout"}
            if rule.mode == "hang":
                verdict.hang = min(MAX_HANG, (rule.end - now_wall) if rule.end is not None else MAX_HANG)
            self._record(rule, "outage", attrs, connection, None, mode=rule.mode)
            return verdict
        return verdict

    def _record(self, rule: FaultRule, kind: str, attrs: dict[str, str], connection: str, status: int | None,
                **detail: Any) -> None:
        self.events.record(f"fault.{kind}", rule=rule.id, cloud=attrs.get("cloud"), project=attrs.get("project"),
                           region=attrs.get("region"), service=attrs.get("service"),
                           operation=attrs.get("operation"), connection=connection or None, status=status,
                           detail=detail or None)


FAULTS = MockFaults()
"""The process's MOCK fault rules (moto's state is process-wide too)."""


class FaultInjectingSession(AwsSession):
    """MOCK's AWS session: each attempt of each call meets the fault rules first."""

    def __init__(self, *, mock_name: str, region: str, faults: MockFaults = FAULTS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults = faults
        self.mock_name = mock_name
        self.mock_region = region

    def _attrs(self, service: str, api: str) -> dict[str, str]:
        op = operation_name(api)
        return {"cloud": "mock", "project": self.mock_name, "region": self.mock_region, "service": service,
                "operation": f"{service}:{op}", "method": "GET" if op.startswith(READ_PREFIXES) else "POST"}

    async def call(self, resource_type: str, resource_name: str, service: str, api: str, **kwargs: Any) -> Any:
        if not self.faults.rules:
            return await super().call(resource_type, resource_name, service, api, **kwargs)
        loop = asyncio.get_running_loop()

        async def attempt() -> Any:
            verdict = self.faults.decide(self._attrs(service, api), self.connection)
            if verdict.delay or verdict.hang:
                await asyncio.sleep(verdict.delay + verdict.hang)
            args = kwargs if verdict.fault is None else {**kwargs, FAULT_PARAM: verdict.fault}
            return await loop.run_in_executor(self._executor, functools.partial(
                self._run, service, api, resource_type, resource_name, args))

        if self.limiter is None:
            return await attempt()
        return await self.limiter.run(attempt)
