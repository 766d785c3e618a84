"""Fault injection through the admin API, checked on real requests (a probe route stands for any
service operation, so the dispatcher-level behaviour is tested apart from the services)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cloudtwin.faults import parse_rule, sample
from twin_helpers import add_probe_route

PROBE = "/cloud-1/RegionOne/compute/v2.1/_probe"


async def login(s: aiohttp.ClientSession, url: str, cloud: str = "cloud-1") -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin", "domain": {"name": cloud}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": cloud}}}}}
    async with s.post(url + "/v3/auth/tokens", json=body) as r:
        assert r.status == 201
        return r.headers["X-Subject-Token"]


async def add_fault(s: aiohttp.ClientSession, url: str, doc: dict) -> dict:
    async with s.post(url + "/_twin/faults", json=doc) as r:
        body = await r.json()
        assert r.status == 201, body
        return body["fault"]


async def probe(s, url, token, path=PROBE):
    async with s.get(url + path, headers={"X-Auth-Token": token}) as r:
        return r.status, await r.json(), r.headers


async def raw_get(twin, path: str, token: str) -> bytes:
    """One GET on a fresh socket; b"" when the server drops the connection without answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", twin.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    try:
        data = await reader.read()
    except ConnectionResetError:
        data = b""
    writer.close()
    return data


@pytest.fixture
async def session(twin):
    add_probe_route(twin)
    add_probe_route(twin, "network", "/v2.0/_probe", "network:probe:get")
    async with aiohttp.ClientSession() as s:
        yield s


async def test_region_outage_window_opens_and_closes(twin, session):
    token = await login(session, twin.url)
    rule = await add_fault(session, twin.url, {"kind": "outage", "match": {"cloud": "cloud-1", "region": "RegionOne"},
                                               "start": 0.3, "duration": 0.5})
    assert (await probe(session, twin.url, token))[0] == 200, "before the window"
    await asyncio.sleep(0.35)
    status, body, headers = await probe(session, twin.url, token)
    assert status == 503
    assert body["serviceUnavailable"]["code"] == 503 and "outage" in body["serviceUnavailable"]["message"]
    assert headers["X-Twin-Fault"] == f"{rule['id']}:outage"
    assert int(headers["Retry-After"]) >= 1
    # the same outage in Neutron's envelope; Keystone stays up
    status, body, _ = await probe(session, twin.url, token, "/cloud-1/RegionOne/network/v2.0/_probe")
    assert status == 503 and body["NeutronError"]["type"] == "ServiceUnavailable"
    await login(session, twin.url)
    await asyncio.sleep(0.5)
    assert (await probe(session, twin.url, token))[0] == 200, "after the window"
    async with session.get(twin.url + "/_twin/events", params={"kind": "fault.outage"}) as r:
        events = (await r.json())["events"]
    assert len(events) == 2
    assert events[0]["rule"] == rule["id"] and events[0]["request_id"].startswith("req-")
    assert events[0]["path"] == PROBE and events[0]["operation"] == "compute:probe:get"


async def test_fail_next_n_then_succeed_and_probability_is_seeded(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "error", "match": {"operation": "compute:*"}, "status": 500,
                                        "count": 3, "message": "boom"})
    statuses = [(await probe(session, twin.url, token))[0] for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]

    async def pattern(seed: int) -> list[int]:
        async with session.delete(twin.url + "/_twin/faults"):
            pass
        await add_fault(session, twin.url, {"kind": "error", "preset": "internal", "probability": 0.5,
                                            "seed": seed, "id": f"p{seed}-{time.monotonic_ns()}"[:12]})
        return [(await probe(session, twin.url, token))[0] for _ in range(40)]

    # same seed and same rule id -> same pattern; the generator is per rule
    async with session.delete(twin.url + "/_twin/faults"):
        pass
    a = await add_fault(session, twin.url, {"kind": "error", "preset": "internal", "probability": 0.5, "seed": 3,
                                            "id": "same"})
    first = [(await probe(session, twin.url, token))[0] for _ in range(40)]
    async with session.delete(twin.url + f"/_twin/faults/{a['id']}") as r:
        assert r.status == 204
    await add_fault(session, twin.url, {"kind": "error", "preset": "internal", "probability": 0.5, "seed": 3,
                                        "id": "same"})
    second = [(await probe(session, twin.url, token))[0] for _ in range(40)]
    assert first == second
    assert 5 < first.count(500) < 35


async def test_throttle_is_a_token_bucket_with_retry_after(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "throttle", "match": {"cloud": "cloud-1"}, "rate": 5, "burst": 3})
    results = [await probe(session, twin.url, token) for _ in range(6)]
    statuses = [r[0] for r in results]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429, 429]
    status, body, headers = results[3]
    assert body == {"overLimit": {"code": 429, "message": "This request was rate-limited.",
                                  "retryAfter": headers["Retry-After"]}}
    await asyncio.sleep(0.45)  # 5 tokens/s -> 2 more tokens
    assert [(await probe(session, twin.url, token))[0] for _ in range(3)] == [200, 200, 429]


async def test_profile_rate_limits_and_413_style(twin, session):
    twin.twin.add_cloud("old-1", "legacy-nova")  # 20 writes/s, 413 overLimit
    token = await login(session, twin.url, "old-1")
    add_probe_route(twin, "compute", "/v2.1/_write", "compute:probe:create", "POST")
    statuses = []
    for _ in range(25):
        async with session.post(twin.url + "/old-1/RegionOne/compute/v2.1/_write",
                                headers={"X-Auth-Token": token}) as r:
            statuses.append(r.status)
            if r.status == 413:
                body = await r.json()
                assert body["overLimit"]["code"] == 413 and "Retry-After" in r.headers
    assert statuses.count(200) == 20 and statuses.count(413) == 5
    # reads are not limited by the write bucket
    assert (await probe(session, twin.url, token, "/old-1/RegionOne/compute/v2.1/_probe"))[0] == 200


async def test_latency_composes_and_is_recorded(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "latency", "match": {"service": "compute"}, "fixed": 0.15})
    await add_fault(session, twin.url, {"kind": "latency", "match": {"method": "GET"}, "uniform": [0.05, 0.1]})
    t0 = time.perf_counter()
    assert (await probe(session, twin.url, token))[0] == 200
    assert time.perf_counter() - t0 >= 0.2
    async with session.get(twin.url + "/_twin/events", params={"kind": "fault.latency"}) as r:
        assert len((await r.json())["events"]) == 2


async def test_reset_and_hang_modes(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "outage", "mode": "reset", "match": {"service": "compute"},
                                        "count": 1})
    # raw sockets: aiohttp's client silently retries a GET whose connection was dropped
    assert await raw_get(twin, PROBE, token) == b"", "the connection is dropped without an answer"
    assert (await raw_get(twin, PROBE, token)).startswith(b"HTTP/1.1 200"), "count 1: only one reset"
    await add_fault(session, twin.url, {"kind": "outage", "mode": "hang", "match": {"service": "compute"},
                                        "duration": 0.4})
    t0 = time.perf_counter()
    assert await raw_get(twin, PROBE, token) == b""
    assert time.perf_counter() - t0 >= 0.3, "held until the window closed, then dropped"


async def test_zone_scoped_outage_applies_only_where_the_zone_is_known(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "outage", "match": {"zone": "nova"}})
    assert (await probe(session, twin.url, token))[0] == 200
    status, body, _ = await probe(session, twin.url, token, PROBE + "?zone=nova")
    assert status == 503 and "nova" in body["serviceUnavailable"]["message"]
    assert (await probe(session, twin.url, token, PROBE + "?zone=other"))[0] == 200


async def test_malformed_body_fault(twin, session):
    token = await login(session, twin.url)
    await add_fault(session, twin.url, {"kind": "malformed", "count": 1})
    async with session.get(twin.url + PROBE, headers={"X-Auth-Token": token}) as r:
        assert r.status == 200
        with pytest.raises(ValueError):
            await r.json()


@pytest.mark.parametrize("doc, text", [
    ({"kind": "nope"}, "kind"),
    ({"kind": "error"}, "status"),
    ({"kind": "error", "status": 200}, "status"),
    ({"kind": "outage", "mode": "explode"}, "mode"),
    ({"kind": "latency"}, "exactly one"),
    ({"kind": "latency", "uniform": [1]}, "two numbers"),
    ({"kind": "throttle", "rate": 0}, "rate"),
    ({"kind": "error", "status": 500, "probability": 2}, "probability"),
    ({"kind": "error", "status": 500, "count": 0}, "count"),
    ({"kind": "error", "status": 500, "match": {"colour": "red"}}, "match"),
    ({"kind": "error", "status": 500, "duration": -1}, "duration"),
    ({"kind": "crash", "to": "MELTED"}, "to"),
    ({"kind": "error", "status": 500, "surprise": 1}, "unknown field"),
])
async def test_bad_fault_documents_are_refused_with_the_field(twin, session, doc, text):
    async with session.post(twin.url + "/_twin/faults", json=doc) as r:
        assert r.status == 400
        assert text in (await r.json())["error"]["message"]
    async with session.get(twin.url + "/_twin/faults") as r:
        assert (await r.json())["faults"] == []


async def test_a_batch_with_one_bad_rule_adds_nothing(twin, session):
    async with session.post(twin.url + "/_twin/faults", json={"faults": [
            {"kind": "error", "status": 500}, {"kind": "error", "status": "x"}]}) as r:
        assert r.status == 400 and "faults[1]" in (await r.json())["error"]["message"]
    async with session.get(twin.url + "/_twin/faults") as r:
        assert (await r.json())["faults"] == []


async def test_shipped_scenarios_load(twin, session):
    async with session.get(twin.url + "/_twin/scenarios") as r:
        names = {s["name"] for s in (await r.json())["scenarios"]}
    assert {"region-outage", "throttled-creates", "flaky-compute", "az-failure", "degradation-ramp"} <= names
    for name in names:
        async with session.post(twin.url + "/_twin/scenarios", json={"name": name}) as r:
            assert r.status == 201, await r.text()
    async with session.post(twin.url + "/_twin/scenarios", json={"name": "nope"}) as r:
        assert r.status == 404


def test_distributions():
    import random

    rng = random.Random(1)
    assert sample({"fixed": 0.2}, rng) == 0.2
    assert all(0.1 <= sample({"uniform": [0.1, 0.3]}, rng) <= 0.3 for _ in range(100))
    assert sample({"ramp": [0, 2]}, rng, elapsed=30, window=60) == pytest.approx(1.0)
    assert sample({"ramp": [0, 2], "over": 10}, rng, elapsed=30) == pytest.approx(2.0)
    assert all(sample({"normal": [0.05, 1]}, rng) >= 0 for _ in range(100))
    rule = parse_rule({"kind": "error", "status": 500, "at": "2030-01-01T00:00:00Z", "duration": 5},
                      rule_id="x", base_seed=0, now=time.time())
    assert not rule.active(time.time()) and rule.active(rule.start + 1) and not rule.active(rule.start + 6)


async def test_crash_rules_match_the_project_by_name_or_id(twin):
    from test_cinder import image_id, login, make_net

    async with aiohttp.ClientSession() as s:
        servers = {}
        for project in ("crash-me", "spare-me"):
            api = await login(s, twin.url, cloud="crash-c", project=project)
            net = await make_net(api)
            code, body = await api.call("POST", api.compute + "/servers", {"server": {
                "name": project, "flavorRef": "1", "imageRef": await image_id(api), "networks": [{"uuid": net}]}},
                service="compute")
            assert code == 202, body
            servers[project] = (api, body["server"]["id"])
        for api, sid in servers.values():
            await api.wait_server(sid)
        await add_fault(s, twin.url, {"kind": "crash", "match": {"cloud": "crash-c", "project": "crash-me"},
                                      "to": "ERROR"})
        deadline = time.monotonic() + 10
        api, sid = servers["crash-me"]
        while (await api.nova("GET", f"/servers/{sid}"))[1]["server"]["status"] != "ERROR":
            assert time.monotonic() < deadline, "the matching project's server crashes"
            await asyncio.sleep(0.05)
        api, sid = servers["spare-me"]
        assert (await api.nova("GET", f"/servers/{sid}"))[1]["server"]["status"] == "ACTIVE"
