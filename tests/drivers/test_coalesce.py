"""Describe coalescing: concurrent gets share describe calls; each caller gets its own answer."""

import asyncio

import pytest

from spider_core.calllog import call_log
from spider_core.drivers.coalesce import Coalescer
from spider_core.errors import DriverNotFound
from spider_core.model import IID, KeyPairReqInfo, SecurityReqInfo, VPCReqInfo, SubnetInfo


async def test_coalescer_unit_batches_and_errors():
    calls: list[list[str]] = []

    async def fetch(keys):
        calls.append(list(keys))
        await asyncio.sleep(0.01)
        return {k: k.upper() for k in keys if not k.startswith("missing")}

    c = Coalescer(fetch, lambda k: DriverNotFound(f"{k} does not exist"))
    keys = [f"k{i}" for i in range(20)] + ["missing1", "k3"]
    results = await asyncio.gather(*(c.get(k) for k in keys), return_exceptions=True)
    assert results[:20] == [f"K{i}" for i in range(20)]
    assert isinstance(results[20], DriverNotFound) and "missing1" in str(results[20])
    assert results[21] == "K3"
    assert calls == [[f"k{i}" for i in range(20)] + ["missing1"]], "one batch; k3 shared, not re-fetched"
    assert c.batches == 1 and c.requests == 22
    # a get arriving while a batch runs waits for the next one (max_inflight 1)
    first = asyncio.ensure_future(c.get("a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.gather(c.get("b"), c.get("c"))
    assert await first == "A" and await second == ["B", "C"]
    assert calls[1:] == [["a"], ["b", "c"]]


async def test_coalescer_batch_failure_goes_to_every_caller():
    async def fetch(keys):
        raise RuntimeError("boom")

    c = Coalescer(fetch, lambda k: DriverNotFound(k))
    res = await asyncio.gather(c.get("a"), c.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in res)
    # and it recovers
    async def ok(keys):
        return {k: 1 for k in keys}
    c._fetch = ok
    assert await c.get("a") == 1


def _describes(since: int, api: str, connection: str) -> int:
    return len([r for r in call_log.query(connection=connection, since_seq=since, limit=0) if r["CloudOSAPI"] == api])


async def test_concurrent_get_vpc_coalesced(conn, mock_name):
    vpcs = [await conn.vpc.create_vpc(VPCReqInfo(IID(f"v{i}"), "10.0.0.0/16", [SubnetInfo(IID(f"s{i}"), "", "10.0.1.0/24")]))
            for i in range(30)]
    bogus = IID("gone", "vpc-0000000000000dead")
    seq = call_log.query(limit=1)[-1]["seq"]
    tasks = [conn.vpc.get_vpc(v.iid) for v in vpcs for _ in range(2)] + [conn.vpc.get_vpc(bogus)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[-1], DriverNotFound)  # one unknown id does not fail the batch
    for i, v in enumerate(vpcs):
        for r in results[2 * i:2 * i + 2]:
            assert r.iid == v.iid and r.subnets[0].iid.name_id == f"s{i}"
    n = _describes(seq, "describe_vpcs", f"conn-{mock_name}")
    assert 1 <= n <= 5, n  # 61 gets, a handful of describes
    assert _describes(seq, "describe_subnets", f"conn-{mock_name}") <= n


async def test_concurrent_get_sg_key_vm_coalesced(conn, mock_name):
    vpc = await conn.vpc.create_vpc(VPCReqInfo(IID("v"), "10.0.0.0/16", []))
    sgs = [await conn.security.create_security(SecurityReqInfo(IID(f"sg{i}"), vpc.iid, [])) for i in range(10)]
    keys = [await conn.keypair.create_key(KeyPairReqInfo(IID(f"k{i}"))) for i in range(10)]
    seq = call_log.query(limit=1)[-1]["seq"]
    got_sg = await asyncio.gather(*(conn.security.get_security(s.iid) for s in sgs))
    got_k = await asyncio.gather(*(conn.keypair.get_key(k.iid) for k in keys),
                                 conn.keypair.get_key(IID("nokey", "nokey")), return_exceptions=True)
    assert [g.iid for g in got_sg] == [s.iid for s in sgs]
    assert [g.iid for g in got_k[:10]] == [k.iid for k in keys] and isinstance(got_k[10], DriverNotFound)
    assert _describes(seq, "describe_security_groups", f"conn-{mock_name}") <= 3
    assert _describes(seq, "describe_key_pairs", f"conn-{mock_name}") <= 3
    with pytest.raises(DriverNotFound):
        await conn.vm.get_vm(IID("x", "i-0000000000000dead"))
