"""The NULL driver: a complete, instant, in-memory cloud."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from spider_core.drivers import base
from spider_core.drivers.base import ConnectionInfo
from spider_core.drivers.null import NullDriver
from spider_core.errors import DriverError, DriverNotFound, is_not_found
from spider_core.model import (
    IID,
    AnyCallInfo,
    HealthCheckerInfo,
    KeyPairReqInfo,
    KeyValue,
    ListenerInfo,
    NLBReqInfo,
    SecurityReqInfo,
    SecurityRule,
    SubnetInfo,
    VMAction,
    VMGroupInfo,
    VMReqInfo,
    VMStatus,
    VPCReqInfo,
)

R22 = SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0")
R80 = SecurityRule("inbound", "TCP", "80", "80", "0.0.0.0/0")


def conn_info(name: str = "tester") -> ConnectionInfo:
    return ConnectionInfo(provider="NULL", credential={"Name": name}, region="null-region",
                          connection_name="null-config01")


@pytest.fixture
async def conn():
    driver = NullDriver()
    connection = await driver.connect(conn_info())
    yield connection
    await connection.close()
    await driver.close()


async def make_vpc(conn, name="vpc-01"):
    return await conn.vpc.create_vpc(VPCReqInfo(
        iid=IID(f"{name}-sp"), ipv4_cidr="10.0.0.0/16",
        subnets=[SubnetInfo(iid=IID(f"{name}-subnet-sp"), ipv4_cidr="10.0.1.0/24", zone="null-zone-b")]))


async def make_vm(conn, name="vm-01"):
    vpc = await make_vpc(conn, f"{name}-vpc")
    sg = await conn.security.create_security(SecurityReqInfo(iid=IID(f"{name}-sg"), vpc_iid=vpc.iid, rules=[R22]))
    key = await conn.keypair.create_key(KeyPairReqInfo(iid=IID(f"{name}-key")))
    return await conn.vm.start_vm(VMReqInfo(
        iid=IID(f"{name}-sp"), image_iid=IID("null-image-01", "null-image-01"), vmspec_name="null-spec-01",
        vpc_iid=vpc.iid, subnet_iid=vpc.subnets[0].iid, security_group_iids=[sg.iid],
        keypair_iid=key.iid))


def test_registration_and_capability():
    driver = NullDriver()
    assert driver.provider_name == "NULL"
    assert driver.credential_keys() == []
    cap = driver.capability()
    for flag in ("region_zone_handler", "image_handler", "vmspec_handler", "vpc_handler", "security_handler",
                 "keypair_handler", "vm_handler", "nlb_handler", "zone_based_control", "disk_handler",
                 "myimage_handler", "tag_handler", "public_ip_handler", "nic_handler", "price_info_handler"):
        assert getattr(cap, flag), flag
    for flag in ("cluster_handler", "probe_ssh_after_start"):
        assert not getattr(cap, flag), flag


def test_entry_point_resolves():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="spidertwin.drivers") if ep.name == "NULL"]
    if not eps:
        pytest.skip("package metadata not installed")
    assert eps[0].load() is NullDriver


async def test_every_handler_is_present_and_concrete(conn):
    for attr, abc in (("region_zone", base.RegionZoneHandler), ("image", base.ImageHandler),
                      ("vmspec", base.VMSpecHandler), ("vpc", base.VPCHandler),
                      ("security", base.SecurityHandler), ("keypair", base.KeyPairHandler),
                      ("vm", base.VMHandler), ("nlb", base.NLBHandler), ("any_call", base.AnyCallHandler)):
        handler = getattr(conn, attr)
        assert isinstance(handler, abc), attr
        assert not inspect.isabstract(type(handler)), attr


async def test_any_credential_works_and_names_isolate_state():
    driver = NullDriver()
    a = await driver.connect(ConnectionInfo(provider="NULL", credential={}, region="r"))
    b = await driver.connect(ConnectionInfo(provider="NULL", credential={"Name": "other"}, region="r"))
    a2 = await driver.connect(ConnectionInfo(provider="NULL", credential={"name": "default"}, region="r2"))
    await make_vpc(a)
    assert len(await a.vpc.list_vpc()) == 1
    assert len(await a2.vpc.list_vpc()) == 1
    assert await b.vpc.list_vpc() == []


async def test_static_catalogue(conn):
    regions = await conn.region_zone.list_region_zone()
    assert [r.name for r in regions] == ["null-region"]
    assert [z.name for z in regions[0].zones] == ["null-zone-a", "null-zone-b"]
    assert (await conn.region_zone.get_region_zone("null-region")).name == "null-region"
    with pytest.raises(DriverNotFound):
        await conn.region_zone.get_region_zone("mars")
    assert await conn.region_zone.list_org_region()
    assert await conn.region_zone.list_org_zone()

    assert [i.iid.system_id for i in await conn.image.list_image()] == ["null-image-01", "null-image-02"]
    assert (await conn.image.get_image(IID("null-image-02", "null-image-02"))).os_platform == "Linux/UNIX"
    assert await conn.image.check_windows_image(IID("null-image-01", "null-image-01")) is False
    with pytest.raises(DriverNotFound):
        await conn.image.get_image(IID("nope", "nope"))

    assert [s.name for s in await conn.vmspec.list_vm_spec()] == ["null-spec-01", "null-spec-02"]
    assert (await conn.vmspec.get_vm_spec("null-spec-02")).vcpu_count == "2"
    with pytest.raises(DriverNotFound):
        await conn.vmspec.get_vm_spec("nope")
    assert len(await conn.vmspec.list_org_vm_spec()) == 2
    assert (await conn.vmspec.get_org_vm_spec("null-spec-01"))["InstanceType"] == "null-spec-01"


async def test_vpc_lifecycle(conn):
    vpc = await make_vpc(conn)
    assert vpc.iid.name_id == "vpc-01-sp" and vpc.iid.system_id.startswith("null-")
    assert vpc.subnets[0].iid.system_id.startswith("null-") and vpc.subnets[0].zone == "null-zone-b"
    got = await conn.vpc.get_vpc(IID("vpc-01-sp", vpc.iid.system_id))
    assert got == vpc
    got.subnets.clear()  # results never alias the store
    assert len((await conn.vpc.get_vpc(vpc.iid)).subnets) == 1
    assert await conn.vpc.get_vpc(IID("vpc-01-sp")) == vpc  # NameId fallback

    after = await conn.vpc.add_subnet(vpc.iid, SubnetInfo(iid=IID("s2"), ipv4_cidr="10.0.2.0/24"))
    assert [s.iid.name_id for s in after.subnets] == ["vpc-01-subnet-sp", "s2"]
    assert after.subnets[1].zone == "null-zone-a"  # connection default zone
    assert await conn.vpc.remove_subnet(vpc.iid, after.subnets[1].iid) is True
    with pytest.raises(DriverNotFound):
        await conn.vpc.remove_subnet(vpc.iid, IID("gone", "null-gone"))

    assert await conn.vpc.list_iid() == [vpc.iid]
    assert await conn.vpc.delete_vpc(vpc.iid) is True
    with pytest.raises(DriverNotFound) as err:
        await conn.vpc.get_vpc(vpc.iid)
    assert vpc.iid.system_id in str(err.value) and is_not_found(err.value)
    with pytest.raises(DriverNotFound):
        await conn.vpc.delete_vpc(vpc.iid)
    with pytest.raises(DriverNotFound):
        await conn.vpc.add_subnet(vpc.iid, SubnetInfo(iid=IID("s3"), ipv4_cidr="10.0.3.0/24"))


async def test_security_group_rules(conn):
    vpc = await make_vpc(conn)
    sg = await conn.security.create_security(SecurityReqInfo(iid=IID("sg-sp"), vpc_iid=vpc.iid, rules=[R22]))
    assert sg.rules == [R22] and sg.vpc_iid == vpc.iid
    added = await conn.security.add_rules(sg.iid, [R80])
    assert added.rules == [R22, R80]
    with pytest.raises(DriverError) as err:
        await conn.security.add_rules(sg.iid, [R22])
    assert not is_not_found(err.value)
    assert await conn.security.remove_rules(sg.iid, [R22]) is True
    with pytest.raises(DriverError) as err:
        await conn.security.remove_rules(sg.iid, [R22, R80])
    assert not is_not_found(err.value)
    assert (await conn.security.get_security(sg.iid)).rules == [R80]  # failed remove changed nothing
    assert [g.iid for g in await conn.security.list_security()] == [sg.iid]
    assert await conn.security.list_iid() == [sg.iid]
    assert await conn.security.delete_security(sg.iid)
    with pytest.raises(DriverNotFound):
        await conn.security.get_security(sg.iid)
    with pytest.raises(DriverNotFound):
        await conn.security.add_rules(sg.iid, [R22])
    with pytest.raises(DriverNotFound):
        await conn.security.create_security(SecurityReqInfo(iid=IID("x"), vpc_iid=IID("v", "null-nope")))


async def test_keypair(conn):
    key = await conn.keypair.create_key(KeyPairReqInfo(iid=IID("key-sp"), tags=[KeyValue("a", "b")]))
    assert key.private_key and key.public_key and key.fingerprint and key.vm_user_id == "cb-user"
    assert await conn.keypair.get_key(key.iid) == key
    assert [k.iid for k in await conn.keypair.list_key()] == [key.iid]
    assert await conn.keypair.list_iid() == [key.iid]
    assert await conn.keypair.delete_key(key.iid)
    with pytest.raises(DriverNotFound):
        await conn.keypair.get_key(key.iid)


async def test_vm_lifecycle(conn):
    vm = await make_vm(conn)
    assert vm.iid.system_id.startswith("null-") and vm.iid.name_id == "vm-01-sp"
    assert vm.public_ip.startswith(("192.0.2.", "198.51.100.", "203.0.113."))
    assert vm.private_ip.startswith("10.0.1.")
    assert vm.zone == "null-zone-b" and vm.region == "null-region"
    assert vm.nics and vm.nics[0].public_ips == [vm.public_ip]
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.RUNNING
    assert await conn.vm.get_vm(vm.iid) == vm

    assert await conn.vm.control_vm(vm.iid, VMAction.SUSPEND) == VMStatus.SUSPENDING
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.SUSPENDED
    with pytest.raises(DriverError):
        await conn.vm.control_vm(vm.iid, VMAction.REBOOT)
    assert await conn.vm.control_vm(vm.iid, VMAction.RESUME) == VMStatus.RESUMING
    assert await conn.vm.control_vm(vm.iid, VMAction.REBOOT) == VMStatus.REBOOTING
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.RUNNING

    statuses = await conn.vm.list_vm_status()
    assert [(s.iid, s.status) for s in statuses] == [(vm.iid, "Running")]
    assert [v.iid for v in await conn.vm.list_vm()] == [vm.iid]
    assert await conn.vm.list_iid() == [vm.iid]

    assert await conn.vm.terminate_vm(vm.iid) == VMStatus.TERMINATING
    for call in (conn.vm.get_vm, conn.vm.get_vm_status, conn.vm.terminate_vm):
        with pytest.raises(DriverNotFound) as err:
            await call(vm.iid)
        assert is_not_found(err.value)
    with pytest.raises(DriverNotFound):
        await conn.vm.control_vm(vm.iid, VMAction.SUSPEND)
    assert await conn.vm.list_vm_status() == []


async def test_vm_start_checks_references(conn):
    vpc = await make_vpc(conn)
    good = dict(iid=IID("vm-sp"), image_iid=IID("null-image-01", "null-image-01"), vmspec_name="null-spec-01",
                vpc_iid=vpc.iid, subnet_iid=vpc.subnets[0].iid)
    bad = [
        {"image_iid": IID("x", "x")},
        {"vmspec_name": "x"},
        {"vpc_iid": IID("v", "null-nope")},
        {"subnet_iid": IID("s", "null-nope")},
        {"security_group_iids": [IID("g", "null-nope")]},
        {"keypair_iid": IID("k", "null-nope")},
    ]
    for change in bad:
        with pytest.raises(DriverError):
            await conn.vm.start_vm(VMReqInfo(**{**good, **change}))
    assert await conn.vm.list_vm() == []
    vm = await conn.vm.start_vm(VMReqInfo(**good))  # no SG, no key: fine
    assert vm.keypair_iid == IID()


async def test_public_ips_distinct(conn):
    vms = [await make_vm(conn, f"vm-{i}") for i in range(20)]
    assert len({v.public_ip for v in vms}) == 20


async def test_nlb(conn):
    vm1 = await make_vm(conn, "vm-1")
    vm2 = await make_vm(conn, "vm-2")
    vpc = await make_vpc(conn, "nlb-vpc")
    nlb = await conn.nlb.create_nlb(NLBReqInfo(
        iid=IID("nlb-sp"), vpc_iid=vpc.iid,
        listener=ListenerInfo(protocol="TCP", port="80"),
        vm_group=VMGroupInfo(protocol="TCP", port="80", vms=[vm1.iid]),
        health_checker=HealthCheckerInfo(protocol="TCP", port="80", interval=10, timeout=5, threshold=3)))
    assert nlb.iid.system_id.startswith("null-") and nlb.listener.ip and nlb.created_time
    assert nlb.vm_group.vms == [vm1.iid]
    assert await conn.nlb.get_nlb(nlb.iid) == nlb
    assert [n.iid for n in await conn.nlb.list_nlb()] == [nlb.iid]
    assert await conn.nlb.list_iid() == [nlb.iid]

    group = await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    assert group.vms == [vm1.iid, vm2.iid]
    with pytest.raises(DriverError):
        await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    with pytest.raises(DriverError):
        await conn.nlb.add_vms(nlb.iid, [IID("x", "null-nope")])

    await conn.vm.control_vm(vm2.iid, VMAction.SUSPEND)
    health = await conn.nlb.get_vm_group_health(nlb.iid)
    assert health.all_vms == [vm1.iid, vm2.iid]
    assert health.healthy_vms == [vm1.iid] and health.unhealthy_vms == [vm2.iid]

    assert await conn.nlb.remove_vms(nlb.iid, [vm1.iid]) is True
    with pytest.raises(DriverError):
        await conn.nlb.remove_vms(nlb.iid, [vm1.iid])

    listener = await conn.nlb.change_listener(nlb.iid, ListenerInfo(protocol="TCP", port="8080"))
    assert listener.port == "8080" and listener.ip == nlb.listener.ip
    vg = await conn.nlb.change_vm_group_info(nlb.iid, VMGroupInfo(protocol="TCP", port="8080"))
    assert vg.port == "8080" and vg.vms == [vm2.iid]
    hc = await conn.nlb.change_health_checker_info(nlb.iid, HealthCheckerInfo(protocol="TCP", port="8080"))
    assert hc.port == "8080"
    got = await conn.nlb.get_nlb(nlb.iid)
    assert got.listener.port == got.vm_group.port == got.health_checker.port == "8080"

    assert await conn.nlb.delete_nlb(nlb.iid)
    with pytest.raises(DriverNotFound):
        await conn.nlb.get_nlb(nlb.iid)


async def test_any_call(conn):
    await make_vpc(conn)
    out = await conn.any_call.any_call(AnyCallInfo(fid="countAll", inputs=[KeyValue("rsType", "vpc")]))
    assert out.outputs == [KeyValue("Count", "1")]
    with pytest.raises(DriverError):
        await conn.any_call.any_call(AnyCallInfo(fid="nope"))


async def test_no_suspension_points(conn):
    """Every call completes without yielding to the loop (no sleeps, threads or I/O)."""
    vpc = await make_vpc(conn)
    coro = conn.vpc.get_vpc(vpc.iid)
    with pytest.raises(StopIteration):
        coro.send(None)
    coro = conn.vm.list_vm_status()
    with pytest.raises(StopIteration):
        coro.send(None)


async def test_concurrent_creates_are_consistent(conn):
    vpcs = await asyncio.gather(*(make_vpc(conn, f"v{i}") for i in range(200)))
    assert len({v.iid.system_id for v in vpcs}) == 200
    assert len(await conn.vpc.list_vpc()) == 200
