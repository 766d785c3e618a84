"""The SP-Lock hierarchy (spider_core.lockplan, spider_core.splock.hold): which locks each operation
takes in ``sponge`` and ``cbspider`` mode, the one lock order, and what that means through the REST edge.

Concurrency is shown without clocks: a ``Gate`` holds a driver call open, so a test can see which
requests reached the cloud together and which queue on a key, then lets them go.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from concurrency.monitor import LockMonitor
from lock_helpers import (NULL_CLOUD, Gate, assert_consistent, is_clean_error, provider, sg_req,  # noqa: F401
                          twin, twin_server, until_waiting, vm_req, vpc_req)
from spider_core import lockplan
from spider_core.drivers.base import DriverCapability
from spider_core.drivers.null import NullDriver
from spider_core.splock import LOCK_ORDER, LockManager, Need, in_order

R, W = False, True

# ---- the plans ---------------------------------------------------------------------------------------


def test_lock_order_is_the_documented_one_and_multi_name_acquisitions_are_sorted():
    assert LOCK_ORDER == ("connection", "vpc", "subnet", "sg", "key", "vm", "nlb", "disk", "image", "nic",
                          "publicip")
    got = in_order([Need("vm", "vm-b", W), Need("sg", "sg-z", R), Need("vpc", "v", R), Need("sg", "sg-a", R),
                    Need("vpc", "v", W), Need("key", "k", R), Need("sg", "sg-z", R)])
    assert got == [Need("vpc", "v", W), Need("sg", "sg-a", R), Need("sg", "sg-z", R), Need("key", "k", R),
                   Need("vm", "vm-b", W)]
    with pytest.raises(ValueError, match="not in the lock order"):
        in_order([Need("cluster", "c", W)])
    with pytest.raises(ValueError, match="empty"):
        in_order([Need("sg", "", R)])


def test_sponge_plans_read_every_parent_and_write_the_own_name():
    none: dict[str, bool] = {}
    vm = lockplan.vm_start("sponge", "vm-1", "v", "sn", ["sg-2", "sg-1", "sg-2"], "k", none)
    assert in_order(vm.needs) == [Need("vpc", "v", R), Need("subnet", "v/sn", R), Need("sg", "sg-1", R),
                                  Need("sg", "sg-2", R), Need("key", "k", R), Need("vm", "vm-1", W)]
    assert not vm.exact
    assert set(lockplan.sg_create("sponge", "v", "g", none).needs) == {Need("vpc", "v", R), Need("sg", "g", W)}
    assert set(lockplan.subnet_change("sponge", "v", "sn", none).needs) == {Need("vpc", "v", R),
                                                                            Need("subnet", "v/sn", W)}
    assert set(lockplan.nlb_create("sponge", "n", "v", ["vm-1"], none).needs) == {
        Need("vpc", "v", R), Need("vm", "vm-1", R), Need("nlb", "n", W)}
    assert set(lockplan.nlb_members("sponge", "n", ["vm-1"]).needs) == {Need("vm", "vm-1", R), Need("nlb", "n", W)}
    assert lockplan.vpc_create("sponge", "v", "c", single_vpc=False).needs == (Need("vpc", "v", W),)
    assert Need("connection", "c", W) in lockplan.vpc_create("sponge", "v", "c", single_vpc=True).needs


def test_serialize_in_vpc_takes_the_vpc_write_lock_for_the_named_kinds_only():
    sg_only = {"sg": True}
    assert Need("vpc", "v", W) in lockplan.sg_create("sponge", "v", "g", sg_only).needs
    assert Need("vpc", "v", R) in lockplan.subnet_change("sponge", "v", "sn", sg_only).needs
    assert Need("vpc", "v", R) in lockplan.vm_start("sponge", "m", "v", "sn", ["g"], "k", sg_only).needs
    assert Need("vpc", "v", W) in lockplan.vm_start("sponge", "m", "v", "sn", ["g"], "k", {"vm": True}).needs
    with pytest.raises(ValueError, match="serialize_in_vpc knows subnet, sg, vm, nlb, not disk"):
        DriverCapability(serialize_in_vpc={"disk": True})


@pytest.mark.parametrize("mode", ["cbspider", "global"])
def test_cbspider_plans_are_cbspider_lock_use_call_for_call(mode):
    """api-runtime/common-runtime/*Manager.go: the locks, their kinds and their order."""
    serialize = {"sg": True, "subnet": True, "vm": True, "nlb": True}  # ignored: CB-Spider has no such knob
    expected = {
        lockplan.vpc_create(mode, "v", "c", single_vpc=True): [Need("vpc", "v", W)],
        lockplan.subnet_change(mode, "v", "sn", serialize): [Need("vpc", "v", W)],
        lockplan.subnet_adopt(mode, "v", "sn"): [Need("vpc", "sn", W)],
        lockplan.sg_create(mode, "v", "g", serialize): [Need("vpc", "v", W), Need("sg", "g", W)],
        lockplan.sg_register(mode, "v", "g"): [Need("vpc", "v", W), Need("sg", "g", W)],
        lockplan.sg_register(mode, "", "g"): [Need("sg", "g", W)],
        lockplan.vm_start(mode, "m", "v", "sn", ["g"], "k", serialize): [Need("vm", "m", W)],
        lockplan.nlb_create(mode, "n", "v", ["m"], serialize): [Need("vpc", "v", R), Need("nlb", "n", W)],
        lockplan.nlb_members(mode, "n", ["m"]): [Need("nlb", "n", W)],
    }
    for plan, needs in expected.items():
        assert plan.exact and list(plan.needs) == needs


def test_a_bad_mode_is_refused():
    with pytest.raises(ValueError, match="sponge, cbspider, global"):
        lockplan.sg_create("fine", "v", "g", {})
    with pytest.raises(ValueError, match="sponge, cbspider, global"):
        LockManager("fine")


# ---- hold(): several locks ---------------------------------------------------------------------------

async def test_a_request_cancelled_half_way_gives_back_what_it_took():
    locks = LockManager()
    blocker_in, blocker_out = asyncio.Event(), asyncio.Event()

    async def blocker() -> None:
        async with locks.write("sg", "c", "g"):
            blocker_in.set()
            await blocker_out.wait()

    b = asyncio.create_task(blocker())
    await blocker_in.wait()
    vm = asyncio.create_task(locks.hold("c", [Need("vpc", "v", R), Need("sg", "g", R), Need("vm", "m", W)]).__aenter__())
    while not any(e["name"] == "g" and e["waiters"] for e in locks.snapshot()["entries"]):
        await asyncio.sleep(0)
    assert {e["name"] for e in locks.snapshot()["entries"]} == {"v", "g"}  # holds the VPC, waits on the SG
    vm.cancel()
    with pytest.raises(asyncio.CancelledError):
        await vm
    assert {e["name"] for e in locks.snapshot()["entries"]} == {"g"}     # the VPC read lock went back
    async with locks.write("vpc", "c", "v"):
        pass
    blocker_out.set()
    await b
    assert locks.entry_count() == 0


async def test_random_multi_lock_requests_never_deadlock():
    """600 requests, each on 1-5 random keys of all families, read or write, yielding while they hold:
    with every acquisition in lock order, all of them finish."""
    locks = LockManager()
    rnd = random.Random(20)
    keys = [(f, n) for f in ("vpc", "subnet", "sg", "key", "vm", "nlb") for n in ("a", "b", "c")]
    finished = 0

    async def one() -> None:
        nonlocal finished
        needs = [Need(f, n, rnd.random() < 0.4) for f, n in rnd.sample(keys, rnd.randint(1, 5))]
        async with locks.hold("c", needs):
            for _ in range(rnd.randint(0, 3)):
                await asyncio.sleep(0)
        finished += 1

    tasks = [asyncio.create_task(one()) for _ in range(600)]
    done, pending = await asyncio.wait(tasks, timeout=60)
    assert not pending, f"deadlock: {len(pending)} requests stuck; {locks.snapshot()['entries']}"
    assert finished == 600 and locks.entry_count() == 0


# ---- through the REST edge: NULL ---------------------------------------------------------------------

@pytest.fixture
def cb_server(null_server):
    """The NULL server with its lock manager in ``cbspider`` mode (set before any request)."""
    sp = null_server.sp
    locks = LockManager("cbspider")
    locks.on_wait = sp.locks.on_wait
    sp.locks = locks
    return null_server


async def _handler(srv, family: str):
    return getattr((await srv.sp.connection(srv.conn)).cloud, family)


async def _post_all(srv, path: str, bodies: list[dict]) -> list[asyncio.Task]:
    return [asyncio.create_task(srv.call("POST", path, srv.body(b))) for b in bodies]


async def test_sg_creates_in_one_vpc_reach_the_cloud_together(null_server):
    srv = null_server
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("v")))).status == 200
    gate = Gate(await _handler(srv, "security"), "create_security")
    tasks = await _post_all(srv, "securitygroup", [sg_req(f"g{i}", "v") for i in range(5)])
    await asyncio.wait_for(gate.until(5), 30)  # all five in the cloud at once: none waits on the VPC
    [vpc] = [e for e in srv.sp.locks.snapshot()["entries"] if e["family"] == "vpc"]
    assert vpc["mode"] == "read" and vpc["holders"] == 5 and vpc["waiters"] == 0
    gate.open()
    assert [r.status for r in await asyncio.gather(*tasks)] == [200] * 5
    await assert_consistent(srv)


async def test_subnet_adds_to_one_vpc_reach_the_cloud_together(null_server):
    srv = null_server
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("v")))).status == 200
    gate = Gate(await _handler(srv, "vpc"), "add_subnet")
    tasks = await _post_all(srv, "vpc/v/subnet", [{"Name": f"sn-{i}", "IPv4_CIDR": f"10.0.{10 + i}.0/24"}
                                                  for i in range(4)])
    await asyncio.wait_for(gate.until(4), 30)
    gate.open()
    assert [r.status for r in await asyncio.gather(*tasks)] == [200] * 4
    got = await srv.call("GET", "vpc/v", params={"ConnectionName": srv.conn})
    assert sorted(s["IId"]["NameId"] for s in got.json["SubnetInfoList"]) == ["sn-0", "sn-1", "sn-2", "sn-3", "sn-a"]
    await assert_consistent(srv)


async def test_same_name_creates_still_queue(null_server):
    srv = null_server
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("v")))).status == 200
    gate = Gate(await _handler(srv, "security"), "create_security")
    tasks = await _post_all(srv, "securitygroup", [sg_req("same", "v"), sg_req("same", "v")])
    await gate.until(1)
    await until_waiting(srv.sp, "sg", "same")
    assert gate.entered == 1
    gate.open()
    replies = await asyncio.gather(*tasks)
    assert sorted(r.status for r in replies) == [200, 500]
    assert any(r.json.get("message") == f"Security Group 'same' already exists in connection '{srv.conn}'"
               for r in replies)
    await assert_consistent(srv)


async def test_cbspider_mode_serialises_sg_creates_on_their_vpc(cb_server):
    srv = cb_server
    assert srv.sp.locks.mode == "cbspider"
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("v")))).status == 200
    gate = Gate(await _handler(srv, "security"), "create_security")
    tasks = await _post_all(srv, "securitygroup", [sg_req(f"g{i}", "v") for i in range(3)])
    await gate.until(1)
    entry = await until_waiting(srv.sp, "vpc", "v", waiters=2)
    assert entry["mode"] == "write" and entry["holders"] == 1 and gate.entered == 1
    gate.open()
    assert [r.status for r in await asyncio.gather(*tasks)] == [200] * 3
    await assert_consistent(srv)


async def test_serialize_in_vpc_capability_brings_back_the_serialisation(null_server, monkeypatch):
    base = NullDriver.capability

    def serialising(self) -> DriverCapability:
        cap = base(self)
        return DriverCapability(**{**{f: getattr(cap, f) for f in cap.names()}, "serialize_in_vpc": {"sg": True}})

    monkeypatch.setattr(NullDriver, "capability", serialising)
    srv = null_server
    assert (await srv.call("POST", "vpc", srv.body(vpc_req("v")))).status == 200
    sg_gate = Gate(await _handler(srv, "security"), "create_security")
    sn_gate = Gate(await _handler(srv, "vpc"), "add_subnet")
    sgs = await _post_all(srv, "securitygroup", [sg_req(f"g{i}", "v") for i in range(3)])
    await sg_gate.until(1)
    await until_waiting(srv.sp, "vpc", "v", waiters=2)
    assert sg_gate.entered == 1                   # SG creates in one VPC: one at a time
    sg_gate.open()
    assert [r.status for r in await asyncio.gather(*sgs)] == [200] * 3
    subnets = await _post_all(srv, "vpc/v/subnet", [{"Name": f"sn-{i}", "IPv4_CIDR": f"10.0.{10 + i}.0/24"}
                                                    for i in range(3)])
    await asyncio.wait_for(sn_gate.until(3), 30)  # subnets are not named: still together
    sn_gate.open()
    assert [r.status for r in await asyncio.gather(*subnets)] == [200] * 3
    await assert_consistent(srv)


async def test_cbspider_mode_keeps_the_gap_a_vpc_delete_does_not_wait_for_a_vm_create(cb_server):
    srv = cb_server
    for path, body in (("vpc", vpc_req("v")), ("securitygroup", sg_req("g", "v")), ("keypair", {"Name": "k"})):
        assert (await srv.call("POST", path, srv.body(body))).status == 200
    gate = Gate(await _handler(srv, "vm"), "start_vm")
    vm = asyncio.create_task(srv.call("POST", "vm", srv.body(vm_req(NULL_CLOUD, "m", "v", "sn-a", ["g"], "k"))))
    await gate.until(1)
    assert {e["family"] for e in srv.sp.locks.snapshot()["entries"]} == {"vm"}  # W(vm) only
    delete = await asyncio.wait_for(srv.call("DELETE", "vpc/v", srv.body()), 30)  # answered while the VM builds
    assert is_clean_error(delete) and "depend" in delete.json["message"]        # the SG saved it, not a lock
    gate.open()
    assert (await vm).status == 200


# ---- a VPC delete during a VM create in that VPC, on NULL and CLOUDTWIN --------------------------------

async def test_deletes_of_what_a_vm_create_uses_wait_then_fail_in_use(provider):
    srv, cloud = provider
    for path, body in (("vpc", vpc_req("v")), ("securitygroup", sg_req("g", "v")), ("keypair", {"Name": "k"})):
        r = await srv.call("POST", path, srv.body(body))
        assert r.status == 200, r.text
    gate = Gate(await _handler(srv, "vm"), "start_vm")
    vm = asyncio.create_task(srv.call("POST", "vm", srv.body(vm_req(cloud, "m", "v", "sn-a", ["g"], "k"))))
    await gate.until(1)
    subnet_delete = asyncio.create_task(srv.call("DELETE", "vpc/v/subnet/sn-a", srv.body()))
    subnet_lock = await until_waiting(srv.sp, "subnet", "v/sn-a")
    assert subnet_lock["holder_requests"] == ["POST /spider/vm"]
    vpc_delete = asyncio.create_task(srv.call("DELETE", "vpc/v", srv.body()))
    sg_delete = asyncio.create_task(srv.call("DELETE", "securitygroup/g", srv.body()))
    vpc_lock = await until_waiting(srv.sp, "vpc", "v")
    assert sorted(vpc_lock["holder_requests"]) == ["DELETE /spider/vpc/v/subnet/sn-a", "POST /spider/vm"]
    assert vpc_lock["mode"] == "read" and vpc_lock["waiter_requests"] == ["DELETE /spider/vpc/v"]
    await until_waiting(srv.sp, "sg", "g")
    info = (await srv.call("GET", "splockinfo")).json["splockinfo"]
    assert f"({srv.conn}:v/sn-a," in info[0]  # CB-Spider's VPC SPLock string lists the subnet key
    assert not (vpc_delete.done() or subnet_delete.done() or sg_delete.done())
    gate.open()

    created = await vm
    assert created.status == 200, created.text
    assert created.json["VpcIID"]["NameId"] == "v" and created.json["SubnetIID"]["NameId"] == "sn-a"
    for reply in (await vpc_delete, await subnet_delete, await sg_delete):
        assert is_clean_error(reply), reply.text
        text = reply.json["message"].lower().replace(" ", "")
        assert "inuse" in text or "depend" in text, reply.text  # Neutron's SubnetInUse, AWS's DependencyViolation
    await assert_consistent(srv)

    q = {"ConnectionName": srv.conn}
    assert (await srv.call("GET", "vm/m", params=q)).status == 200
    for method, path in (("DELETE", "vm/m"), ("DELETE", "securitygroup/g"), ("DELETE", "keypair/k"),
                         ("DELETE", "vpc/v")):
        r = await srv.call(method, path, srv.body())
        assert r.status == 200, (path, r.text)
    await assert_consistent(srv)


async def test_lock_monitor_flags_a_long_wait_with_the_holders_request(null_server):
    srv = null_server
    for path, body in (("vpc", vpc_req("v")), ("securitygroup", sg_req("g", "v")), ("keypair", {"Name": "k"})):
        assert (await srv.call("POST", path, srv.body(body))).status == 200
    gate = Gate(await _handler(srv, "vm"), "start_vm")
    vm = asyncio.create_task(srv.call("POST", "vm", srv.body(vm_req(NULL_CLOUD, "m", "v", "sn-a", ["g"], "k"))))
    await gate.until(1)
    delete = asyncio.create_task(srv.call("DELETE", "vpc/v", srv.body()))
    await until_waiting(srv.sp, "vpc", "v")
    mon = LockMonitor(str(srv.client.make_url("/")), interval=3600, hold_threshold_s=3600, wait_threshold_s=0.0,
                      grace_s=0.0)
    await mon.start()
    try:
        await mon.sample()
    finally:
        gate.open()
        await asyncio.gather(vm, delete)
        summary = await mon.stop()
    flagged = {w["key"]: w for w in summary["long_waits"]}
    wait = flagged[f"vpc/{srv.conn}/v"]
    assert wait["holder_requests"] == ["POST /spider/vm"] and wait["waiter_requests"] == ["DELETE /spider/vpc/v"]
    assert summary["ok"] is False and summary["leftovers"] == []
    rows = dict(mon.summary_table().rows)
    assert rows[f"waited: vpc/{srv.conn}/v"].endswith("behind POST /spider/vm")


async def test_nlb_create_holds_back_the_termination_of_its_member_vm(null_server):
    srv = null_server
    for path, body in (("vpc", vpc_req("v")), ("securitygroup", sg_req("g", "v")), ("keypair", {"Name": "k"}),
                       ("vm", vm_req(NULL_CLOUD, "m", "v", "sn-a", ["g"], "k"))):
        assert (await srv.call("POST", path, srv.body(body))).status == 200
    gate = Gate(await _handler(srv, "nlb"), "create_nlb")
    nlb = asyncio.create_task(srv.call("POST", "nlb", srv.body({
        "Name": "n", "VPCName": "v", "Listener": {"Protocol": "TCP", "Port": "80"},
        "VMGroup": {"Protocol": "TCP", "Port": "80", "VMs": ["m"]},
        "HealthChecker": {"Protocol": "TCP", "Port": "80"}})))
    await gate.until(1)
    terminate = asyncio.create_task(srv.call("DELETE", "vm/m", srv.body()))
    entry = await until_waiting(srv.sp, "vm", "m")
    assert entry["holder_requests"] == ["POST /spider/nlb"] and not terminate.done()
    gate.open()
    assert (await nlb).status == 200
    assert (await terminate).status == 200
    bad = await srv.call("POST", "nlb", srv.body({"Name": "n2", "VPCName": "v", "VMGroup": {"VMs": [""]}}))
    assert is_clean_error(bad) and "VMs" in bad.json["message"]
    assert srv.sp.locks.entry_count() == 0
