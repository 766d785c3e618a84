"""The request-limit policy: how hard Spider may push one connection's cloud.

CB-Spider users creating hundreds of VMs at once hit CSP request limits (``RequestLimitExceeded``,
HTTP 429) and "too many open files". Each connection gets a ``CallLimiter`` that every CSP call of its
driver goes through (the drivers' session ``call`` wrappers):

* at most ``max_inflight`` calls at once (the rest queue, so a burst holds no more sockets or threads
  than that);
* an optional client-side token bucket (``rate`` calls/s, ``burst``), to stay under a known CSP limit;
* on a throttling answer (429/413, AWS ``RequestLimitExceeded``/``Throttling``...) the call is retried
  after the CSP's ``Retry-After`` or an exponential backoff with full jitter, up to ``retries`` times
  and ``max_wait`` seconds in total; a burst above the CSP's limit is delayed, not failed;
* with ``adaptive`` (on by default) the first throttling answer also turns on a client-side rate that
  follows the CSP's: cut to 70% of the measured send rate on each throttle, regrown along a cubic curve
  on successes (the algorithm of the AWS SDKs' "adaptive" retry mode). A burst then queues in Spider
  instead of hammering the CSP with retries that it refuses (and may count against the account).

Outages (503) and every other error are *not* retried: the client gets them at once.

Policies are data: ``spider_core/data/limits.yaml`` (defaults and per provider), a user file named by
``SPIDER_LIMITS_FILE`` with the same shape (``default``, ``providers``, ``connections``), merged in
that order; the most specific entry wins field by field.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import yaml

T = TypeVar("T")
DATA_FILE = Path(__file__).with_name("data") / "limits.yaml"
THROTTLE_STATUSES = (429, 413)
THROTTLE_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
                            "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
                            "SlowDown", "OverLimit", "overLimit", "TooManyRequests",
                            "ProvisionedThroughputExceededException", "LimitExceeded.RequestLimit"})


class LimitError(ValueError):
    """A limits file or value is malformed; the message names the file and field."""


@dataclass(frozen=True)
class LimitPolicy:
    max_inflight: int = 256     # concurrent CSP calls per connection (0 = unbounded)
    rate: float = 0.0           # client-side calls per second (0 = no rate limit)
    burst: int = 0              # token bucket size (0 = max(1, rate))
    retries: int = 100          # retries of a throttled call (max_wait is the real bound)
    backoff: float = 0.25       # first backoff step, seconds (doubles per retry)
    backoff_max: float = 16.0   # cap of one backoff step
    max_wait: float = 300.0     # total seconds one call may spend waiting on throttling
    adaptive: int = 1           # 1: learn the CSP's rate from its throttling answers (AdaptiveRate)

    def merged(self, overrides: dict[str, Any], where: str) -> "LimitPolicy":
        known = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in (overrides or {}).items():
            if key not in known:
                raise LimitError(f"{where}: unknown field '{key}' (known: {', '.join(known)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise LimitError(f"{where}.{key}: a number >= 0")
            changes[key] = int(value) if known[key] == "int" else float(value)
        return replace(self, **changes)


class PolicyBook:
    """Policies by provider and connection, from the data file and the user's file."""

    def __init__(self, default: LimitPolicy, providers: dict[str, dict[str, Any]],
                 connections: dict[str, dict[str, Any]]) -> None:
        self.default = default
        self.providers = {k.upper(): v for k, v in providers.items()}
        self.connections = connections

    @classmethod
    def load(cls, extra: str | os.PathLike[str] | None = None) -> "PolicyBook":
        default = LimitPolicy()
        providers: dict[str, dict[str, Any]] = {}
        connections: dict[str, dict[str, Any]] = {}
        for path in [DATA_FILE, *([Path(extra)] if extra else [])]:
            try:
                doc = yaml.safe_load(Path(path).read_text()) or {}
            except FileNotFoundError:
                raise LimitError(f"{path}: no such limits file") from None
            except yaml.YAMLError as exc:
                raise LimitError(f"{path}: not valid YAML: {exc}") from None
            if not isinstance(doc, dict):
                raise LimitError(f"{path}: a mapping with default / providers / connections")
            default = default.merged(doc.get("default") or {}, f"{path}: default")
            for section, target in (("providers", providers), ("connections", connections)):
                entries = doc.get(section) or {}
                if not isinstance(entries, dict):
                    raise LimitError(f"{path}: {section}: a mapping of name -> fields")
                for name, over in entries.items():
                    LimitPolicy().merged(over or {}, f"{path}: {section}.{name}")  # validate now
                    key = str(name).upper() if section == "providers" else str(name)
                    target[key] = {**target.get(key, {}), **(over or {})}
        return cls(default, providers, connections)

    @classmethod
    def from_env(cls) -> "PolicyBook":
        return cls.load(os.environ.get("SPIDER_LIMITS_FILE") or None)

    def policy_for(self, provider: str, connection: str) -> LimitPolicy:
        policy = self.default.merged(self.providers.get(provider.upper(), {}), f"providers.{provider}")
        return policy.merged(self.connections.get(connection, {}), f"connections.{connection}")


def throttle_delay(exc: BaseException) -> float | None:
    """Seconds to wait before retrying ``exc`` if it is a throttling answer (0.0 = use the backoff),
    or None when it is not throttling (then it must not be retried)."""
    status = getattr(exc, "http_status", 0) or 0
    code = getattr(exc, "error_code", "") or ""
    if status in THROTTLE_STATUSES or code in THROTTLE_CODES:
        after = getattr(exc, "retry_after", None)
        return float(after) if after is not None else 0.0
    return None


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst or int(rate) or 1))
        self.tokens = self.capacity
        self.last = time.monotonic()

    def reserve(self) -> float:
        """Take a token (possibly going into debt); returns how long the caller must wait for it."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class AdaptiveRate:
    """A client-side send rate learnt from throttling answers, off until the first one.

    The AWS SDKs' adaptive retry mode (botocore ``retries/adaptive.py``): the send rate is measured in
    half-second buckets and smoothed; a throttle sets the rate to ``BETA`` x min(measured, current) and
    remembers the rate it happened at; successes regrow it along CUBIC's curve towards and past that
    rate, never above twice what was really sent. Two changes for a server: the throttles of one
    half-second count as one event (a burst of 200 refused calls is one signal, not 200 cuts), and
    waiting calls leave in order, paced at the *current* rate (a rate that regrows frees them sooner).
    """

    BETA = 0.7
    SCALE = 0.4         # CUBIC's C
    SMOOTH = 0.8        # weight of the newest bucket in the measured rate
    BUCKET = 0.5        # seconds per measuring bucket, and per congestion event
    MIN_RATE = 0.5      # calls/s: never slower than this

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now = clock()
        self.enabled = False
        self.rate = 0.0              # current fill rate (calls/s) once enabled
        self.measured = 0.0          # smoothed send rate
        self._last_max = 0.0
        self._last_throttle = now - self.BUCKET
        self._count = 0
        self._bucket_start = now
        self._tokens = 0.0
        self._last_fill = now
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.Task[None] | None = None

    # ---- before a call
    async def acquire(self) -> float:
        """Wait for this call's turn (no wait while disabled); returns the seconds waited."""
        waited = 0.0
        if self.enabled:
            self._refill()
            if self._waiters or self._tokens < 1:
                started = self._clock()
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                if self._pacer is None or self._pacer.done():
                    self._pacer = asyncio.get_running_loop().create_task(self._pace())
                await fut
                waited = self._clock() - started
            else:
                self._tokens -= 1
        self._measure()
        return waited

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._last_fill) * self.rate)
        self._last_fill = now

    async def _pace(self) -> None:
        while self._waiters:
            if self._waiters[0].done():          # its caller was cancelled: no token spent on it
                self._waiters.popleft()
                continue
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                self._waiters.popleft().set_result(None)
                continue
            await asyncio.sleep(min(1.0, (1 - self._tokens) / max(self.rate, self.MIN_RATE)))

    def _measure(self) -> None:
        now = self._clock()
        self._count += 1
        span = now - self._bucket_start
        if span >= self.BUCKET:
            self.measured = (self._count / span) * self.SMOOTH + self.measured * (1 - self.SMOOTH)
            self._count = 0
            self._bucket_start = now

    # ---- after a call
    def throttled(self) -> None:
        now = self._clock()
        if self.enabled and now - self._last_throttle < self.BUCKET:
            return  # the same congestion event
        # the open bucket counts too: a burst refused within its first half-second has no history yet
        sent = max(self.measured, self._count / max(now - self._bucket_start, self.BUCKET))
        base = max(min(sent, self.rate) if self.enabled else sent, self.MIN_RATE * 2)
        self._last_max = base
        self._last_throttle = now
        self._set(base * self.BETA)
        if not self.enabled:
            self.enabled = True
            self._tokens = 0.0
            self._last_fill = now

    def succeeded(self) -> None:
        if not self.enabled:
            return
        t = self._clock() - self._last_throttle
        k = (self._last_max * (1 - self.BETA) / self.SCALE) ** (1 / 3)
        cubic = self.SCALE * (t - k) ** 3 + self._last_max
        self._set(min(cubic, 2 * max(self.measured, self.MIN_RATE)))

    def _set(self, rate: float) -> None:
        self.rate = max(self.MIN_RATE, rate)


class CallLimiter:
    """Every CSP call of one connection goes through ``run``."""

    def __init__(self, name: str, policy: LimitPolicy, *, rng: random.Random | None = None) -> None:
        self.name = name
        self.policy = policy
        self._sem = asyncio.Semaphore(policy.max_inflight) if policy.max_inflight > 0 else None
        self._bucket = _Bucket(policy.rate, policy.burst) if policy.rate > 0 else None
        self._adaptive: dict[str, AdaptiveRate] = {}  # per operation class: "read", "write", ""
        self._rng = rng or random.Random()
        self.inflight = 0
        self.peak_inflight = 0
        self.queued = 0
        self.peak_queued = 0
        self.calls = 0
        self.throttled = 0
        self.retries = 0
        self.gave_up = 0
        self.waited = 0.0       # seconds spent in throttling backoff
        self.rate_waited = 0.0  # seconds spent waiting for the client-side rate

    def backoff(self, attempt: int, retry_after: float) -> float:
        """Full jitter (AWS's recommendation) on an exponential step, never below the CSP's Retry-After."""
        step = min(self.policy.backoff_max, self.policy.backoff * (2 ** attempt))
        return max(retry_after, self._rng.uniform(0, step))

    def adaptive(self, kind: str = "") -> AdaptiveRate | None:
        """The adaptive rate of one operation class (a CSP that throttles writes leaves reads alone)."""
        if not self.policy.adaptive:
            return None
        rate = self._adaptive.get(kind)
        if rate is None:
            rate = self._adaptive[kind] = AdaptiveRate()
        return rate

    async def run(self, call: Callable[[], Awaitable[T]], kind: str = "") -> T:
        """``call()`` under the policy; ``call`` is a factory, so a throttled call can be made again.
        ``kind`` names the call's operation class (``read``/``write``) for the adaptive rate."""
        adaptive = self.adaptive(kind)
        started = time.monotonic()
        attempt = 0
        while True:
            if self._bucket is not None:
                wait = self._bucket.reserve()
                if wait > 0:
                    self.rate_waited += wait
                    await asyncio.sleep(wait)
            if adaptive is not None:
                self.rate_waited += await adaptive.acquire()
            try:
                result = await self._once(call)
            except Exception as exc:
                delay = throttle_delay(exc)
                if delay is None:
                    raise
                self.throttled += 1
                if adaptive is not None:
                    adaptive.throttled()
                pause = self.backoff(attempt, delay)
                if attempt >= self.policy.retries or time.monotonic() - started + pause > self.policy.max_wait:
                    self.gave_up += 1
                    raise
                attempt += 1
                self.retries += 1
                self.waited += pause
                await asyncio.sleep(pause)
            else:
                if adaptive is not None:
                    adaptive.succeeded()
                return result

    async def _once(self, call: Callable[[], Awaitable[T]]) -> T:
        if self._sem is None:
            return await self._counted(call)
        if self._sem.locked():  # counted as queued only when it really has to wait
            self.queued += 1
            self.peak_queued = max(self.peak_queued, self.queued)
            try:
                await self._sem.acquire()
            finally:
                self.queued -= 1
        else:
            await self._sem.acquire()
        try:
            return await self._counted(call)
        finally:
            self._sem.release()

    async def _counted(self, call: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        self.inflight += 1
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        try:
            return await call()
        finally:
            self.inflight -= 1

    def stats(self) -> dict[str, Any]:
        return {"connection": self.name, "policy": asdict(self.policy), "inflight": self.inflight,
                "peak_inflight": self.peak_inflight, "queued": self.queued, "peak_queued": self.peak_queued,
                "calls": self.calls, "throttled": self.throttled, "retries": self.retries,
                "gave_up": self.gave_up, "waited_s": round(self.waited, 3),
                "rate_waited_s": round(self.rate_waited, 3),
                "adaptive_rate": {kind or "all": round(a.rate, 2) for kind, a in self._adaptive.items()
                                  if a.enabled} or None}
