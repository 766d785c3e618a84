"""The request-limit policy (spider_core/limits.py): bounded in-flight calls, client-side rate,
retries with backoff on throttling answers only, policies from data files, and end to end: a burst of
creates against a throttling Cloud-Twin cloud is delayed, not failed."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from spider_core.errors import DriverError
from spider_core.limits import AdaptiveRate, CallLimiter, LimitError, LimitPolicy, PolicyBook, throttle_delay
from spider_helpers import SpiderProcess, TwinSubprocess
from test_cloudtwin_spider import register


async def test_inflight_is_bounded_and_queued_calls_all_run():
    lim = CallLimiter("c", LimitPolicy(max_inflight=3))

    async def work():
        await asyncio.sleep(0.02)
        return 1

    results = await asyncio.gather(*(lim.run(work) for _ in range(12)))
    assert results == [1] * 12
    assert lim.peak_inflight == 3 and lim.calls == 12 and lim.inflight == 0 and lim.peak_queued == 9
    alone = CallLimiter("c", LimitPolicy(max_inflight=3))
    await alone.run(work)
    assert alone.peak_queued == 0, "a call that never waits is not counted as queued"


async def test_client_side_rate():
    lim = CallLimiter("c", LimitPolicy(max_inflight=0, rate=50, burst=1))
    t0 = time.monotonic()
    await asyncio.gather(*(lim.run(lambda: asyncio.sleep(0)) for _ in range(11)))
    assert time.monotonic() - t0 >= 0.18, "10 tokens beyond the first at 50/s take 0.2 s"
    assert lim.rate_waited > 0


async def test_throttled_calls_are_retried_after_retry_after():
    lim = CallLimiter("c", LimitPolicy(retries=5, backoff=0.001), rng=random.Random(1))
    answers = iter([DriverError("429 slow down", http_status=429, retry_after=0.05),
                    DriverError("RequestLimitExceeded: Request limit exceeded.", error_code="RequestLimitExceeded"),
                    "ok"])

    async def call():
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    t0 = time.monotonic()
    assert await lim.run(call) == "ok"
    assert time.monotonic() - t0 >= 0.05, "the CSP's Retry-After is honoured"
    assert (lim.throttled, lim.retries, lim.gave_up) == (2, 2, 0)


async def test_other_errors_are_not_retried_and_retries_are_bounded():
    lim = CallLimiter("c", LimitPolicy(retries=2, backoff=0.001))
    calls = 0

    async def outage():
        nonlocal calls
        calls += 1
        raise DriverError("503 ServiceUnavailable", http_status=503, retry_after=30)

    with pytest.raises(DriverError, match="503"):
        await lim.run(outage)
    assert calls == 1 and lim.retries == 0, "an outage is answered at once, not waited out"

    async def always_throttled():
        nonlocal calls
        calls += 1
        raise DriverError("429", http_status=429)

    calls = 0
    with pytest.raises(DriverError):
        await lim.run(always_throttled)
    assert calls == 3 and lim.gave_up == 1

    lim2 = CallLimiter("c", LimitPolicy(retries=100, max_wait=0.05))
    with pytest.raises(DriverError):
        await lim2.run(lambda: always_throttled())  # Retry-After unknown, but max_wait caps the total
    assert lim2.gave_up == 1


def test_throttle_classification():
    assert throttle_delay(DriverError("x", http_status=429, retry_after=3)) == 3.0
    assert throttle_delay(DriverError("x", http_status=413)) == 0.0
    assert throttle_delay(DriverError("x", error_code="Throttling")) == 0.0
    assert throttle_delay(DriverError("x", http_status=503, retry_after=3)) is None
    assert throttle_delay(DriverError("x", http_status=409)) is None
    assert throttle_delay(ValueError("x")) is None


def test_adaptive_rate_cuts_once_per_congestion_event_and_regrows_along_cubic():
    now = [100.0]
    ar = AdaptiveRate(clock=lambda: now[0])
    assert not ar.enabled
    for _ in range(40):                  # 40 sends within 0.4 s: an 80/s burst by the open bucket
        now[0] += 0.01
        ar._measure()
    for _ in range(25):                  # 25 refusals in the same instant: one event, one cut
        ar.throttled()
    assert ar.enabled and ar.rate == pytest.approx(0.7 * 80, rel=0.01)
    now[0] += 0.6
    ar.throttled()                       # a new event: cut from min(sent, rate); 40 sent in 1 s
    assert ar.rate == pytest.approx(0.7 * 40, rel=0.02)
    low = ar.rate
    ar.measured = 100.0                  # what was really sent bounds the growth (2x)
    rates = []
    for _ in range(8):
        now[0] += 1.0
        ar.succeeded()
        rates.append(ar.rate)
    assert rates == sorted(rates) and rates[0] < 56 < rates[-1], "back past the rate it was refused at"
    assert rates[-1] <= 200 and low < rates[0]


async def test_adaptive_waiters_leave_in_order_and_a_cancelled_one_costs_nothing():
    ar = AdaptiveRate()
    ar.enabled, ar.rate = True, 50.0     # one call per 20 ms, no token saved
    order: list[int] = []

    async def one(i: int) -> None:
        await ar.acquire()
        order.append(i)

    tasks = [asyncio.create_task(one(i)) for i in range(6)]
    await asyncio.sleep(0)
    tasks[2].cancel()
    t0 = time.monotonic()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 1, 3, 4, 5]
    assert 0.06 <= time.monotonic() - t0 < 1.0, "4 waits of ~20 ms: the cancelled caller took no turn"


async def test_adaptive_rate_turns_a_retry_storm_into_a_queue():
    """A CSP that refuses calls above 50/s (429, token bucket of 5): 300 concurrent calls all succeed
    either way, but with the adaptive rate the CSP refuses far fewer (here ~700 against ~2,700; the
    first wave, refused before anything is known, is most of what is left)."""
    async def burst(adaptive: int) -> CallLimiter:
        tokens, last = 5.0, time.monotonic()

        async def call() -> str:
            nonlocal tokens, last
            await asyncio.sleep(0.002)
            now = time.monotonic()
            tokens, last = min(5.0, tokens + (now - last) * 50), now
            if tokens < 1:
                raise DriverError("429 Too Many Requests", http_status=429, retry_after=0.05)
            tokens -= 1
            return "ok"

        lim = CallLimiter("c", LimitPolicy(adaptive=adaptive, backoff=0.05, backoff_max=1.0),
                          rng=random.Random(7))
        assert await asyncio.gather(*(lim.run(call) for _ in range(300))) == ["ok"] * 300
        assert lim.gave_up == 0
        return lim

    plain = await burst(0)
    adaptive = await burst(1)
    assert adaptive.stats()["adaptive_rate"] is not None and plain.stats()["adaptive_rate"] is None
    assert adaptive.retries * 2 < plain.retries, (adaptive.retries, plain.retries)


async def test_throttled_writes_do_not_slow_reads():
    lim = CallLimiter("c", LimitPolicy(backoff=0.01, backoff_max=0.02), rng=random.Random(3))
    refusals = iter([True, True, False, False])

    async def write() -> str:
        if next(refusals, False):
            raise DriverError("429", http_status=429, retry_after=0.01)
        return "w"

    assert await asyncio.gather(lim.run(write, "write"), lim.run(write, "write")) == ["w", "w"]
    assert list(lim.stats()["adaptive_rate"]) == ["write"]
    assert lim.adaptive("read") is not None and not lim.adaptive("read").enabled
    waited, t0 = lim.rate_waited, time.monotonic()
    assert await asyncio.gather(*(lim.run(lambda: asyncio.sleep(0, "r"), "read") for _ in range(50))) == ["r"] * 50
    assert time.monotonic() - t0 < 0.5 and list(lim.stats()["adaptive_rate"]) == ["write"]
    assert lim.rate_waited == waited, "no read waited for the write rate"


def test_policy_files_merge_by_specificity(tmp_path):
    f = tmp_path / "limits.yaml"
    f.write_text("default: {max_inflight: 16}\nproviders: {cloudtwin: {rate: 10, burst: 10}}\n"
                 "connections: {c1: {rate: 2}}\n")
    book = PolicyBook.load(f)
    assert book.policy_for("GCP", "x") == LimitPolicy(max_inflight=16)
    assert book.policy_for("AWS", "x").max_inflight == 64, "the shipped file's provider entry beats a default"
    assert book.policy_for("CLOUDTWIN", "x").rate == 10
    p = book.policy_for("CLOUDTWIN", "c1")
    assert (p.rate, p.burst, p.max_inflight) == (2, 10, 16)
    assert book.policy_for("MOCK", "x").max_inflight == 0, "the shipped data file: MOCK is unbounded"
    f.write_text("providers: {AWS: {rte: 10}}\n")
    with pytest.raises(LimitError, match=r"limits.yaml: providers.AWS: unknown field 'rte'"):
        PolicyBook.load(f)
    f.write_text("default: {rate: -1}\n")
    with pytest.raises(LimitError, match="default.rate"):
        PolicyBook.load(f)


def test_a_burst_against_a_throttling_cloud_is_delayed_not_failed(tmp_path):
    """Cloud-Twin throttles cloud-1's POSTs at 10/s; 40 concurrent VPC creates (80 POSTs) all succeed,
    and Spider's limit view shows the retries."""
    twin = TwinSubprocess("--cloud", "cloud-1=openstack").start()
    srv = SpiderProcess(tmp_path / "root").start()
    try:
        register(srv.url, twin.url, ["cloud-1"])
        conn = "cloudtwin-cloud-1-config"
        assert requests.get(srv.url + "/vpc", params={"ConnectionName": conn}, timeout=60).status_code == 200
        twin.admin("POST", "/faults", {"kind": "throttle", "match": {"cloud": "cloud-1", "method": "POST"},
                                       "rate": 10, "burst": 10, "per": "all"})

        def create(i: int) -> requests.Response:
            return requests.post(srv.url + "/vpc", json={"ConnectionName": conn, "ReqInfo": {
                "Name": f"vpc-{i}", "IPv4_CIDR": f"10.{i}.0.0/16",
                "SubnetInfoList": [{"Name": f"sn-{i}", "IPv4_CIDR": f"10.{i}.1.0/24"}]}}, timeout=300)

        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(create, range(40)))
        assert [r.status_code for r in answers] == [200] * 40, [r.text for r in answers if r.status_code != 200][:3]
        assert requests.get(f"{srv.url}/countvpc/{conn}").json() == {"count": 40}
        [lim] = requests.get(srv.url + "/limitinfo", params={"ConnectionName": conn}).json()["limitinfo"]
        assert lim["throttled"] > 0 and lim["retries"] == lim["throttled"] and lim["gave_up"] == 0, lim
        view = requests.get(srv.url + "/splockinfo", params={"detail": "true"}).json()
        assert any(x["connection"] == conn for x in view["limits"])
        events = twin.admin("GET", "/events?kind=fault.throttle&limit=10000")["events"]
        assert len(events) == lim["throttled"], "every 429 the twin sent was retried by Spider"
    finally:
        srv.stop()
        twin.stop()
