"""Concurrency through the REST edge (contract 12): SP-Lock, duplicate detection, MetaDB/driver consistency.

NULL (in-memory, zero latency) carries the heavy loads; MOCK (moto, one serialised executor) the
smaller ones. Every test ends with the lock table empty.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

IDLE = ["<VPC SPLock> ", "<SG SPLock> ", "<Key SPLock> ", "<VM SPLock> "]
AWS_DEFAULT_VPC_CIDR = "172.31.0.0/16"


def vpc_req(name: str, i: int = 1) -> dict:
    return {"Name": name, "IPv4_CIDR": "10.0.0.0/16",
            "SubnetInfoList": [{"Name": f"{name}-s1", "IPv4_CIDR": f"10.0.{i % 250}.0/24"}]}


async def assert_idle(srv) -> None:
    assert srv.sp.locks.entry_count() == 0
    r = await srv.call("GET", "splockinfo")
    assert r.status == 200 and r.json == {"splockinfo": IDLE}


async def assert_metadb_matches_cloud(srv) -> list[dict]:
    """/allvpc: nothing only in Spider; every CSP VPC is mapped, except a provider default VPC."""
    q = {"ConnectionName": srv.conn}
    lists = (await srv.call("GET", "allvpc", params=q)).json["AllList"]
    assert lists["OnlySpiderList"] == [], lists["OnlySpiderList"]
    info = (await srv.call("GET", "allvpcinfo", params=q)).json["AllListInfo"]
    extra = [v for v in (info["OnlyCSPInfoList"] or []) if v["IPv4_CIDR"] != AWS_DEFAULT_VPC_CIDR]
    assert extra == [], f"CSP VPCs Spider does not know about: {extra}"
    assert len(lists["OnlyCSPList"]) <= 1  # at most the region's default VPC (moto)
    rows = [r for r in (await srv.dump())["iid_infos"] if r[1] == "vpc"]
    assert sorted(i["NameId"] for i in lists["MappedList"]) == sorted(r[3] for r in rows)
    # every mapped SystemId is the csp part of the stored spUUID:cspId
    stored = {r[3]: r[4].split(":", 1)[1] for r in rows}
    assert {i["NameId"]: i["SystemId"] for i in lists["MappedList"]} == stored
    count = (await srv.call("GET", f"countvpc/{srv.conn}")).json["count"]
    assert count == len(rows)
    return lists["MappedList"]


@pytest.fixture(params=["null", "mock"])
def server(request):
    return request.getfixturevalue(f"{request.param}_server")


async def test_200_concurrent_creates_with_distinct_names(server):
    srv = server
    names = [f"vpc-{i:03d}" for i in range(200)]
    replies = await asyncio.gather(*(srv.call("POST", "vpc", srv.body(vpc_req(n, i))) for i, n in enumerate(names)))
    bad = [(r.status, r.text) for r in replies if r.status != 200]
    assert not bad, bad[:5]
    assert sorted(r.json["IId"]["NameId"] for r in replies) == names
    system_ids = [r.json["IId"]["SystemId"] for r in replies]
    assert len(set(system_ids)) == 200, "every VPC got its own CSP id"
    subnet_ids = [r.json["SubnetInfoList"][0]["IId"]["SystemId"] for r in replies]
    assert len(set(subnet_ids)) == 200
    listed = (await srv.call("GET", "vpc", params={"ConnectionName": srv.conn})).json["vpc"]
    assert sorted(v["IId"]["NameId"] for v in listed) == names
    assert all(v["SubnetInfoList"] and v["IPv4_CIDR"] == "10.0.0.0/16" for v in listed), "no stubs"
    mapped = await assert_metadb_matches_cloud(srv)
    assert len(mapped) == 200
    assert (await srv.call("GET", f"countsubnet/{srv.conn}")).json == {"count": 200}
    await assert_idle(srv)


async def test_50_concurrent_creates_of_one_name(server):
    srv = server
    replies = await asyncio.gather(*(srv.call("POST", "vpc", srv.body(vpc_req("vpc-same"))) for _ in range(50)))
    statuses = Counter(r.status for r in replies)
    assert statuses == {200: 1, 500: 49}, statuses
    msgs = Counter(r.json.get("message") for r in replies if r.status != 200)
    assert msgs == {f"VPC 'vpc-same' already exists in connection '{srv.conn}'": 49}
    mapped = await assert_metadb_matches_cloud(srv)
    assert [i["NameId"] for i in mapped] == ["vpc-same"], "exactly one VPC at the CSP"
    winner = next(r.json for r in replies if r.status == 200)
    assert mapped[0]["SystemId"] == winner["IId"]["SystemId"]
    await assert_idle(srv)


async def test_50_concurrent_keypair_creates_of_one_name(server):
    srv = server
    replies = await asyncio.gather(*(srv.call("POST", "keypair", srv.body({"Name": "key-same"}))
                                     for _ in range(50)))
    assert Counter(r.status for r in replies) == {200: 1, 500: 49}
    assert {r.json["message"] for r in replies if r.status != 200} == {
        f"VM KeyPair 'key-same' already exists in connection '{srv.conn}'"}
    allkey = (await srv.call("GET", "allkeypair", params={"ConnectionName": srv.conn})).json["AllList"]
    assert len(allkey["MappedList"]) == 1 and allkey["OnlyCSPList"] == [] and allkey["OnlySpiderList"] == []
    await assert_idle(srv)


def _storm_plan(seed: int, n: int, names: list[str]) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    ops = ["create"] * 4 + ["get"] * 3 + ["list"] * 2 + ["delete"] * 3 + ["subnet"]
    return [(rnd.choice(ops), rnd.choice(names)) for _ in range(n)]


@pytest.mark.parametrize("seed", [7, 2024])
async def test_mixed_storm_null(null_server, seed):
    await _storm(null_server, seed, 400, 8)


async def test_mixed_storm_mock(mock_server):
    await _storm(mock_server, 11, 150, 5)


async def _storm(srv, seed: int, n: int, n_names: int) -> None:
    names = [f"storm-{i}" for i in range(n_names)]
    plan = _storm_plan(seed, n, names)
    q = {"ConnectionName": srv.conn}
    rnd = random.Random(seed + 1)

    async def one(i: int, op: str, name: str):
        await asyncio.sleep(rnd.random() * 0.02)  # spread the arrivals a little
        if op == "create":
            return await srv.call("POST", "vpc", srv.body(vpc_req(name, i)))
        if op == "get":
            return await srv.call("GET", f"vpc/{name}", params=q)
        if op == "list":
            return await srv.call("GET", "vpc", params=q)
        if op == "subnet":
            return await srv.call("POST", f"vpc/{name}/subnet",
                                  srv.body({"Name": f"{name}-x{i}", "IPv4_CIDR": f"10.0.{i % 250}.0/24"}))
        return await srv.call("DELETE", f"vpc/{name}", srv.body())

    replies = await asyncio.wait_for(asyncio.gather(*(one(i, op, nm) for i, (op, nm) in enumerate(plan))), 60)
    outcome: Counter = Counter()
    for (op, name), r in zip(plan, replies):
        outcome[(op, r.status)] += 1
        if r.status == 200:
            if op in ("create", "get", "subnet"):
                assert r.json["IId"]["NameId"] == name
            elif op == "delete":
                assert r.json == {"Result": "true"}
            else:
                assert all(v["IId"]["NameId"] in names for v in r.json["vpc"])
            continue
        msg = r.json["message"]
        if op == "create":
            assert msg == f"VPC '{name}' already exists in connection '{srv.conn}'", msg
        elif op in ("get", "delete", "subnet"):
            assert msg == f"VPC '{name}' does not exist in connection '{srv.conn}'", (op, msg)
        else:
            raise AssertionError(f"list failed during the storm: {msg}")
    # both outcomes happened for creates and deletes: the storm really contended
    assert outcome[("create", 200)] and outcome[("create", 500)], outcome
    assert outcome[("delete", 200)], outcome
    await assert_idle(srv)
    mapped = await assert_metadb_matches_cloud(srv)
    # subnets: every stored subnet row belongs to a stored VPC and exists at the CSP
    dump = await srv.dump()
    vpcs = {r[3] for r in dump["iid_infos"] if r[1] == "vpc"}
    subnet_rows = [r for r in dump["iid_infos"] if r[1] == "subnet"]
    assert {r[2] for r in subnet_rows} <= vpcs, "no orphan subnet rows"
    for name in vpcs:
        got = await srv.call("GET", f"vpc/{name}", params=q)
        assert got.status == 200
        assert sorted(s["IId"]["NameId"] for s in got.json["SubnetInfoList"]) == \
            sorted(r[3] for r in subnet_rows if r[2] == name)
    assert len(mapped) == len(vpcs)


class _Slow:
    """Wrap a driver handler so each call yields to the loop: lock holders overlap for real."""

    def __init__(self, inner, delay: float = 0.003) -> None:
        self._inner, self._delay = inner, delay

    def __getattr__(self, attr):
        target = getattr(self._inner, attr)
        if not asyncio.iscoroutinefunction(target):
            return target

        async def call(*a, **k):
            await asyncio.sleep(self._delay)
            return await target(*a, **k)

        return call


async def test_sg_create_and_delete_in_parallel_do_not_deadlock(null_server):
    srv = null_server
    conn = await srv.sp.connection(srv.conn)
    conn.cloud.security = _Slow(conn.cloud.security)
    conn.cloud.vpc = _Slow(conn.cloud.vpc)
    for v in ("vpc-a", "vpc-b"):
        assert (await srv.call("POST", "vpc", srv.body(vpc_req(v)))).status == 200
    rnd = random.Random(5)
    q = {"ConnectionName": srv.conn}
    sg_names = [f"sg-{i}" for i in range(6)]
    calls = []
    for i in range(240):
        sg, vpc = rnd.choice(sg_names), rnd.choice(["vpc-a", "vpc-b"])
        kind = rnd.choice(["create", "create", "delete", "delete", "get", "list", "subnet", "vpcget", "rules"])
        if kind == "create":
            calls.append(("POST", "securitygroup", srv.body({"Name": sg, "VPCName": vpc, "SecurityRules": [
                {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22"}]}), None))
        elif kind == "delete":
            calls.append(("DELETE", f"securitygroup/{sg}", srv.body(), None))
        elif kind == "get":
            calls.append(("GET", f"securitygroup/{sg}", None, q))
        elif kind == "list":
            calls.append(("GET", f"securitygroup/vpc/{vpc}", None, q))
        elif kind == "subnet":
            calls.append(("POST", f"vpc/{vpc}/subnet", srv.body({"Name": f"s-{i}", "IPv4_CIDR": "10.0.9.0/24"}),
                          None))
        elif kind == "vpcget":
            calls.append(("GET", f"vpc/{vpc}", None, q))
        else:
            calls.append(("POST", f"securitygroup/{sg}/rules", srv.body({"RuleInfoList": [
                {"Direction": "inbound", "IPProtocol": "UDP", "FromPort": str(1000 + i), "ToPort": str(1000 + i)}]}),
                None))
    try:
        replies = await asyncio.wait_for(
            asyncio.gather(*(srv.call(m, p, b, params=prm) for m, p, b, prm in calls)), timeout=30)
    except asyncio.TimeoutError:
        pytest.fail(f"deadlock: SP-Lock state {srv.sp.locks.snapshot()}")
    allowed = ("already exists", "does not exist")
    for (m, p, _, _), r in zip(calls, replies):
        if r.status != 200:
            assert any(a in r.json["message"] for a in allowed), (m, p, r.text)
    await assert_idle(srv)
    # MetaDB SGs == CSP SGs
    allsg = (await srv.call("GET", "allsecuritygroup", params=q)).json["AllList"]
    assert allsg["OnlySpiderList"] == [] and allsg["OnlyCSPList"] == []
    rows = [r for r in (await srv.dump())["iid_infos"] if r[1] == "sg"]
    assert len({r[3] for r in rows}) == len(rows), "an SG name is unique across the connection's VPCs"
    assert len(allsg["MappedList"]) == len(rows)


async def test_sg_create_while_its_vpc_is_deleted(mock_server):
    """W(vpc)->W(sg) create racing W(vpc) delete and W(sg) delete on MOCK: no deadlock, consistent end."""
    srv = mock_server
    q = {"ConnectionName": srv.conn}
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("vpc-r")))).status == 200
    calls = [srv.call("POST", "securitygroup", srv.body({"Name": f"sg-{i % 4}", "VPCName": "vpc-r",
                                                         "SecurityRules": []})) for i in range(12)]
    calls += [srv.call("DELETE", f"securitygroup/sg-{i % 4}", srv.body()) for i in range(8)]
    calls += [srv.call("GET", "securitygroup", params=q) for _ in range(4)]
    calls.insert(6, srv.call("DELETE", "vpc/vpc-r", srv.body()))
    replies = await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
    vpc_delete = replies.pop(6)
    for r in replies:
        assert r.status == 200 or "exist" in r.json["message"], r.text
    # MOCK follows EC2: a VPC that still holds security groups cannot be deleted (DependencyViolation)
    assert vpc_delete.status == 200 or "depend" in vpc_delete.json["message"].lower(), vpc_delete.text
    await assert_idle(srv)
    allsg = (await srv.call("GET", "allsecuritygroup", params=q)).json["AllList"]
    assert allsg["OnlySpiderList"] == []
    rows = [r for r in (await srv.dump())["iid_infos"] if r[1] == "sg"]
    assert sorted(i["NameId"] for i in allsg["MappedList"]) == sorted(r[3] for r in rows)
    # the only CSP-only SGs allowed are EC2's per-VPC "default" groups
    for iid in allsg["OnlyCSPList"]:
        got = (await srv.call("GET", "allsecuritygroupinfo", params=q)).json["AllListInfo"]["OnlyCSPInfoList"]
        assert all(g["IId"]["NameId"] in ("default", "") or "default" in g["IId"]["NameId"] for g in got), got
        break
