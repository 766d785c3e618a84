"""The AWS driver's handlers, exercised on moto through MockDriver.connect()."""

import asyncio

import pytest

from spider_core.errors import DriverError, DriverNotFound, is_not_found
from spider_core.model import (IID, HealthCheckerInfo, KeyPairReqInfo, ListenerInfo, NLBReqInfo,
                               SecurityReqInfo, SecurityRule, SubnetInfo, VMAction, VMGroupInfo, VMReqInfo,
                               VMStatus, VPCReqInfo)

OUT_ALL = SecurityRule("outbound", "ALL", "-1", "-1", "0.0.0.0/0")


async def make_vpc(conn, name="vpc-a", subnets=(("sn-1", "default-z1", "10.0.1.0/24"),)):
    return await conn.vpc.create_vpc(VPCReqInfo(IID(name), "10.0.0.0/16",
                                                [SubnetInfo(IID(n), z, c) for n, z, c in subnets]))


async def test_vpc_lifecycle(conn):
    vpc = await make_vpc(conn, subnets=(("sn-1", "default-z1", "10.0.1.0/24"), ("sn-2", "", "10.0.2.0/24")))
    assert vpc.iid.name_id == "vpc-a" and vpc.iid.system_id.startswith("vpc-")
    assert [s.iid.name_id for s in vpc.subnets] == ["sn-1", "sn-2"]
    assert vpc.subnets[0].zone == "default-z1"
    got = await conn.vpc.get_vpc(IID("vpc-a", vpc.iid.system_id))
    assert got.iid == vpc.iid and got.ipv4_cidr == "10.0.0.0/16"
    assert sorted(s.ipv4_cidr for s in got.subnets) == ["10.0.1.0/24", "10.0.2.0/24"]
    # add / remove subnet
    after = await conn.vpc.add_subnet(vpc.iid, SubnetInfo(IID("sn-3"), "default-z3", "10.0.3.0/24"))
    sn3 = next(s for s in after.subnets if s.iid.name_id == "sn-3")
    assert sn3.zone == "default-z3"
    assert await conn.vpc.remove_subnet(vpc.iid, sn3.iid) is True
    assert len((await conn.vpc.get_vpc(vpc.iid)).subnets) == 2
    # list (the moto default VPC is hidden for MOCK)
    assert [v.iid for v in await conn.vpc.list_vpc()] == [vpc.iid]
    assert await conn.vpc.list_iid() == [vpc.iid]
    assert await conn.vpc.delete_vpc(vpc.iid) is True
    with pytest.raises(DriverNotFound):
        await conn.vpc.get_vpc(vpc.iid)
    with pytest.raises(DriverNotFound):
        await conn.vpc.delete_vpc(vpc.iid)


async def test_security_rules(conn):
    vpc = await make_vpc(conn)
    sg = await conn.security.create_security(SecurityReqInfo(IID("sg01"), vpc.iid, [
        SecurityRule("INBOUND", "tcp", "22", "22", ""), SecurityRule("inbound", "icmp", "-1", "-1", "10.0.0.0/8")]))
    assert sg.iid.system_id.startswith("sg-") and sg.iid.name_id == "sg01"
    expected = {SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0"),
                SecurityRule("inbound", "ICMP", "-1", "-1", "10.0.0.0/8"), OUT_ALL}
    assert set(sg.rules) == expected
    got = await conn.security.get_security(sg.iid)
    assert set(got.rules) == expected and got.vpc_iid.system_id == vpc.iid.system_id
    # add: ALL does not cover TCP; UDP range; IPv6
    new = [SecurityRule("inbound", "UDP", "1000", "2000", "0.0.0.0/0"),
           SecurityRule("inbound", "ALL", "-1", "-1", "192.168.0.0/16"),
           SecurityRule("inbound", "TCP", "443", "443", "::/0")]
    after = await conn.security.add_rules(sg.iid, new)
    assert set(after.rules) == expected | set(new)
    with pytest.raises(DriverError) as dup:
        await conn.security.add_rules(sg.iid, [new[0]])
    assert "already has this rule" in str(dup.value) and not is_not_found(dup.value)
    # remove, then remove again -> error that is not "not found"
    assert await conn.security.remove_rules(sg.iid, [new[0], OUT_ALL]) is True
    assert set((await conn.security.get_security(sg.iid)).rules) == expected - {OUT_ALL} | set(new[1:])
    with pytest.raises(DriverError) as missing:
        await conn.security.remove_rules(sg.iid, [new[0]])
    assert "does not have this rule" in str(missing.value) and not is_not_found(missing.value)
    assert [s.iid for s in await conn.security.list_security()] == [sg.iid]
    assert await conn.security.delete_security(sg.iid)
    with pytest.raises(DriverNotFound):
        await conn.security.get_security(sg.iid)


async def test_keypair(conn):
    key = await conn.keypair.create_key(KeyPairReqInfo(IID("key-01")))
    assert key.iid == IID("key-01", "key-01")
    assert "PRIVATE KEY" in key.private_key and key.public_key.startswith("ssh-rsa ")
    assert key.fingerprint and key.vm_user_id == "cb-user"
    got = await conn.keypair.get_key(key.iid)
    assert got.fingerprint == key.fingerprint and got.private_key == ""
    assert [k.iid for k in await conn.keypair.list_key()] == [key.iid]
    assert await conn.keypair.delete_key(key.iid)
    with pytest.raises(DriverNotFound):
        await conn.keypair.get_key(key.iid)
    with pytest.raises(DriverNotFound):
        await conn.keypair.delete_key(key.iid)


async def start_vm(conn, vpc, sg, key, name="vm-01"):
    return await conn.vm.start_vm(VMReqInfo(
        IID(name), image_iid=IID("mock-vmimage-01", "mock-vmimage-01"), vmspec_name="mock-vmspec-01",
        vpc_iid=vpc.iid, subnet_iid=vpc.subnets[0].iid, security_group_iids=[sg.iid], keypair_iid=key.iid))


@pytest.fixture
async def infra(conn):
    vpc = await make_vpc(conn)
    sg = await conn.security.create_security(SecurityReqInfo(IID("sg01"), vpc.iid, []))
    key = await conn.keypair.create_key(KeyPairReqInfo(IID("key-01")))
    return vpc, sg, key


async def test_vm_lifecycle(conn, infra):
    vpc, sg, key = infra
    vm = await start_vm(conn, vpc, sg, key)
    assert vm.iid.name_id == "vm-01" and vm.iid.system_id.startswith("i-")
    got = await conn.vm.get_vm(vm.iid)
    assert got.public_ip and got.private_ip.startswith("10.0.1.")
    assert got.ssh_access_point == f"{got.public_ip}:22"
    assert got.region == "default" and got.zone == "default-z1"
    assert got.image_iid == IID("mock-vmimage-01", "mock-vmimage-01")
    assert got.vmspec_name == "mock-vmspec-01" and got.vm_user_id == "cb-user"
    assert got.vpc_iid.system_id == vpc.iid.system_id and got.subnet_iid.system_id == vpc.subnets[0].iid.system_id
    assert got.security_group_iids == [sg.iid] and got.keypair_iid == key.iid
    assert got.nics and got.nics[0].private_ips == [got.private_ip]
    assert got.start_time[:4].isdigit() and "T" in got.start_time
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.RUNNING
    assert await conn.vm.control_vm(vm.iid, VMAction.SUSPEND) == VMStatus.SUSPENDING
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.SUSPENDED
    with pytest.raises(DriverError):
        await conn.vm.control_vm(vm.iid, VMAction.REBOOT)
    assert await conn.vm.control_vm(vm.iid, VMAction.RESUME) == VMStatus.RESUMING
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.RUNNING
    assert await conn.vm.control_vm(vm.iid, VMAction.REBOOT) == VMStatus.REBOOTING
    statuses = await conn.vm.list_vm_status()
    assert [(s.iid.system_id, s.status) for s in statuses] == [(vm.iid.system_id, "Running")]
    assert [v.iid for v in await conn.vm.list_vm()] == [vm.iid]
    assert await conn.vm.terminate_vm(vm.iid) == VMStatus.TERMINATING
    # terminated (after the next describe) -> not found
    for _ in range(3):
        try:
            st = await conn.vm.get_vm_status(vm.iid)
        except DriverNotFound:
            break
        assert st in (VMStatus.TERMINATING, VMStatus.TERMINATED)
    else:
        pytest.fail("terminated VM still reported")
    with pytest.raises(DriverNotFound):
        await conn.vm.get_vm(vm.iid)
    assert await conn.vm.list_iid() == []


async def test_vm_start_errors(conn, infra):
    vpc, sg, key = infra
    with pytest.raises(DriverNotFound, match="nope image does not exist!!"):
        await conn.vm.start_vm(VMReqInfo(IID("x"), image_iid=IID("nope", "nope"), vmspec_name="mock-vmspec-01",
                                         vpc_iid=vpc.iid, subnet_iid=vpc.subnets[0].iid,
                                         security_group_iids=[sg.iid], keypair_iid=key.iid))
    with pytest.raises(DriverNotFound, match="zz VMSpec does not exist!!"):
        await conn.vm.start_vm(VMReqInfo(IID("x"), image_iid=IID("mock-vmimage-02", "mock-vmimage-02"),
                                         vmspec_name="zz", vpc_iid=vpc.iid, subnet_iid=vpc.subnets[0].iid,
                                         security_group_iids=[sg.iid], keypair_iid=key.iid))
    with pytest.raises(DriverError, match="InvalidKeyPair.NotFound"):
        await conn.vm.start_vm(VMReqInfo(IID("x"), image_iid=IID("mock-vmimage-02", "mock-vmimage-02"),
                                         vmspec_name="mock-vmspec-02", vpc_iid=vpc.iid,
                                         subnet_iid=vpc.subnets[0].iid, security_group_iids=[sg.iid],
                                         keypair_iid=IID("nokey", "nokey")))


async def test_nlb(conn, infra):
    vpc, sg, key = infra
    vm1 = await start_vm(conn, vpc, sg, key, "vm-1")
    vm2 = await start_vm(conn, vpc, sg, key, "vm-2")
    nlb = await conn.nlb.create_nlb(NLBReqInfo(
        IID("nlb-01"), vpc.iid, listener=ListenerInfo("TCP", "", "80"),
        vm_group=VMGroupInfo("TCP", "8080", [vm1.iid]), health_checker=HealthCheckerInfo("TCP", "8080", 10, -1, 3)))
    assert nlb.iid.name_id == "nlb-01" and nlb.iid.system_id.startswith("arn:aws:elasticloadbalancing")
    assert nlb.type == "PUBLIC" and nlb.listener.port == "80" and nlb.vm_group.port == "8080"
    assert nlb.vm_group.vms == [vm1.iid] and nlb.health_checker.threshold == 3
    assert len(nlb.vm_group.csp_id.split("targetgroup/")[1].split("/")[0]) <= 32
    got = await conn.nlb.get_nlb(nlb.iid)
    assert got.vpc_iid.system_id == vpc.iid.system_id and got.vm_group.vms == [vm1.iid]
    group = await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    assert {v.system_id for v in group.vms} == {vm1.iid.system_id, vm2.iid.system_id}
    with pytest.raises(DriverError, match="already has this VM"):
        await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    health = await conn.nlb.get_vm_group_health(nlb.iid)
    assert len(health.all_vms) == 2 and len(health.healthy_vms) + len(health.unhealthy_vms) == 2
    assert await conn.nlb.remove_vms(nlb.iid, [vm1.iid])
    with pytest.raises(DriverError, match="does not have this VM"):
        await conn.nlb.remove_vms(nlb.iid, [vm1.iid])
    assert (await conn.nlb.change_listener(nlb.iid, ListenerInfo("TCP", "", "81"))).port == "81"
    hc = await conn.nlb.change_health_checker_info(nlb.iid, HealthCheckerInfo("TCP", "9090", 30, -1, 5))
    assert (hc.port, hc.interval, hc.threshold) == ("9090", 30, 5)
    new_group = await conn.nlb.change_vm_group_info(nlb.iid, VMGroupInfo("TCP", "9000"))
    assert new_group.port == "9000" and [v.system_id for v in new_group.vms] == [vm2.iid.system_id]
    got = await conn.nlb.get_nlb(nlb.iid)
    assert got.listener.port == "81" and got.vm_group.port == "9000"
    assert [n.iid for n in await conn.nlb.list_nlb()] == [nlb.iid]
    assert await conn.nlb.delete_nlb(nlb.iid)
    with pytest.raises(DriverNotFound):
        await conn.nlb.get_nlb(nlb.iid)


async def test_concurrent_creates_and_gets_are_consistent(conn):
    vpcs = await asyncio.gather(*(make_vpc(conn, f"v{i}", ((f"s{i}", "", "10.0.1.0/24"),)) for i in range(10)))
    got = await asyncio.gather(*(conn.vpc.get_vpc(v.iid) for v in vpcs))
    assert [g.iid for g in got] == [v.iid for v in vpcs]
    assert all(g.subnets[0].iid.name_id == f"s{i}" for i, g in enumerate(got))
