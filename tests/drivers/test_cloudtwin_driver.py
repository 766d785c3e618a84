"""The CLOUDTWIN driver against a real Cloud-Twin (in-process TwinServer on a free port).

Each test logs in with its own MockName (= Keystone project), so state never leaks between tests.
Lifecycle delays run at a tenth of the profile's (time_scale 0.1).
"""

import asyncio
import uuid

import pytest

from spider_core.drivers.base import ConnectionInfo
from spider_core.errors import DriverError, DriverNotFound, is_not_found
from spider_core.model import (IID, HealthCheckerInfo, KeyPairReqInfo, ListenerInfo, NLBReqInfo, SecurityReqInfo,
                               SecurityRule, SubnetInfo, VMAction, VMGroupInfo, VMReqInfo, VMStatus, VPCReqInfo)

OUT_ALL = SecurityRule("outbound", "ALL", "-1", "-1", "0.0.0.0/0")


@pytest.fixture
async def twin():
    from cloudtwin.app import TwinServer
    from cloudtwin.clouds import CloudRule, TwinConfig

    config = TwinConfig(time_scale=0.1, cloud_rules=[CloudRule("lean-*", "lean-egress")])
    async with TwinServer(port=0, config=config) as server:
        yield server


@pytest.fixture
async def driver():
    from spider_core.drivers.openstack import CloudTwinDriver

    d = CloudTwinDriver()
    yield d
    await d.close()


async def connect(driver, twin, domain="cloud-1"):
    mock = f"t-{uuid.uuid4().hex[:10]}"
    return await driver.connect(ConnectionInfo("CLOUDTWIN", {"IdentityEndpoint": twin.url, "DomainName": domain,
                                                             "MockName": mock}, "default",
                                               connection_name=f"conn-{mock}"))


@pytest.fixture
async def conn(driver, twin):
    c = await connect(driver, twin)
    c.vm.poll_interval = 0.1
    c.nlb.poll_interval = 0.1
    yield c
    await c.close()


async def make_vpc(conn, name="vpc-a", subnets=(("sn-1", "10.0.1.0/24"),)):
    return await conn.vpc.create_vpc(VPCReqInfo(IID(name), "10.0.0.0/16", [SubnetInfo(IID(n), "", c) for n, c in subnets]))


# ---- catalogue -----------------------------------------------------------------------------------

async def test_catalogue(conn):
    images = {i.name: i for i in await conn.image.list_image()}
    assert "ubuntu-22.04" in images
    ubuntu = await conn.image.get_image(IID("ubuntu-22.04", "ubuntu-22.04"))
    assert ubuntu.iid.system_id == images["ubuntu-22.04"].iid.system_id
    assert ubuntu.os_platform == "Linux/UNIX" and ubuntu.os_distribution == "ubuntu 22.04"
    assert ubuntu.os_architecture == "x86_64"
    assert await conn.image.check_windows_image(IID("windows-2022", "windows-2022")) is True
    with pytest.raises(DriverNotFound):
        await conn.image.get_image(IID("no-such-image", "no-such-image"))
    specs = {s.name: s for s in await conn.vmspec.list_vm_spec()}
    small = await conn.vmspec.get_vm_spec("m1.small")
    assert specs["m1.small"] == small
    assert (small.vcpu_count, small.mem_size_mib, small.disk_size_gb) == ("1", "2048", "20")
    with pytest.raises(DriverNotFound):
        await conn.vmspec.get_vm_spec("m9.huge")
    regions = await conn.region_zone.list_region_zone()
    assert "RegionOne" in [r.name for r in regions]
    assert any(z.name == "nova" for r in regions for z in r.zones)


# ---- VPC -----------------------------------------------------------------------------------------

async def test_vpc_lifecycle(conn):
    vpc = await make_vpc(conn, subnets=(("sn-1", "10.0.1.0/24"), ("sn-2", "10.0.2.0/24")))
    assert vpc.iid.name_id == "vpc-a" and vpc.iid.system_id
    assert vpc.ipv4_cidr == "10.0.0.0/16"
    assert [(s.iid.name_id, s.ipv4_cidr) for s in vpc.subnets] == [("sn-1", "10.0.1.0/24"), ("sn-2", "10.0.2.0/24")]
    got = await conn.vpc.get_vpc(vpc.iid)
    assert got.iid == vpc.iid and got.ipv4_cidr == "10.0.0.0/16"
    assert sorted(s.ipv4_cidr for s in got.subnets) == ["10.0.1.0/24", "10.0.2.0/24"]
    after = await conn.vpc.add_subnet(vpc.iid, SubnetInfo(IID("sn-3"), "", "10.0.3.0/24"))
    sn3 = next(s for s in after.subnets if s.iid.name_id == "sn-3")
    assert await conn.vpc.remove_subnet(vpc.iid, sn3.iid) is True
    assert len((await conn.vpc.get_vpc(vpc.iid)).subnets) == 2
    # the cloud's external network is not a VPC
    assert [v.iid for v in await conn.vpc.list_vpc()] == [vpc.iid]
    assert await conn.vpc.list_iid() == [vpc.iid]
    assert await conn.vpc.delete_vpc(vpc.iid) is True
    with pytest.raises(DriverNotFound):
        await conn.vpc.get_vpc(vpc.iid)
    with pytest.raises(DriverNotFound):
        await conn.vpc.delete_vpc(vpc.iid)


async def test_projects_are_isolated(driver, twin):
    a = await connect(driver, twin)
    b = await connect(driver, twin)
    await make_vpc(a)
    await a.keypair.create_key(KeyPairReqInfo(IID("kp-iso")))
    assert len(await a.vpc.list_vpc()) == 1
    assert await b.vpc.list_vpc() == []
    assert await b.keypair.list_key() == []
    assert (await b.keypair.create_key(KeyPairReqInfo(IID("kp-iso")))).private_key  # same name, other project
    await a.close()
    await b.close()


# ---- security groups -----------------------------------------------------------------------------

async def test_security_rules(conn):
    vpc = await make_vpc(conn)
    rules = [SecurityRule("inbound", "tcp", "22", "22", ""), SecurityRule("INBOUND", "ALL", "-1", "-1", "10.0.0.0/8"),
             SecurityRule("inbound", "icmp", "-1", "-1", "0.0.0.0/0"),
             SecurityRule("outbound", "udp", "1000", "2000", "192.168.0.0/16")]
    sg = await conn.security.create_security(SecurityReqInfo(IID("sg-a"), vpc.iid, rules))
    want = {SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0"), SecurityRule("inbound", "ALL", "-1", "-1", "10.0.0.0/8"),
            SecurityRule("inbound", "ICMP", "-1", "-1", "0.0.0.0/0"),
            SecurityRule("outbound", "UDP", "1000", "2000", "192.168.0.0/16"), OUT_ALL}
    assert set(sg.rules) == want and len(sg.rules) == 5
    got = await conn.security.get_security(sg.iid)
    # exactly the requested rules + the default outbound allow-all; Neutron's IPv6 default is gone
    assert set(got.rules) == want and len(got.rules) == 5
    assert got.vpc_iid.system_id == vpc.iid.system_id
    # add: both directions; a duplicate fails without changing anything
    more = [SecurityRule("inbound", "UDP", "2000", "2000", "0.0.0.0/0"), SecurityRule("outbound", "TCP", "22", "22", "1.2.3.4/32")]
    after = await conn.security.add_rules(sg.iid, more)
    assert set(after.rules) == want | set(more)
    with pytest.raises(DriverError, match="already has this rule"):
        await conn.security.add_rules(sg.iid, [SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0")])
    # remove: including the default outbound allow-all
    assert await conn.security.remove_rules(sg.iid, [OUT_ALL, more[0]]) is True
    left = set((await conn.security.get_security(sg.iid)).rules)
    assert left == (want | set(more)) - {OUT_ALL, more[0]}
    with pytest.raises(DriverError, match="does not have this rule"):
        await conn.security.remove_rules(sg.iid, [OUT_ALL])
    assert sg.iid in await conn.security.list_iid()
    assert [s.iid for s in await conn.security.list_security()] == [sg.iid]  # no 'default' group
    assert await conn.security.delete_security(sg.iid) is True
    with pytest.raises(DriverNotFound):
        await conn.security.get_security(sg.iid)


async def test_default_egress_added_where_the_cloud_has_none(driver, twin):
    c = await connect(driver, twin, domain="lean-1")
    vpc = await make_vpc(c)
    sg = await c.security.create_security(SecurityReqInfo(IID("sg-lean"), vpc.iid,
                                                          [SecurityRule("inbound", "TCP", "22", "22")]))
    got = await c.security.get_security(sg.iid)
    assert set(got.rules) == {SecurityRule("inbound", "TCP", "22", "22", "0.0.0.0/0"), OUT_ALL}
    # requesting the default explicitly does not duplicate it
    sg2 = await c.security.create_security(SecurityReqInfo(IID("sg-lean2"), vpc.iid, [OUT_ALL]))
    assert (await c.security.get_security(sg2.iid)).rules == [OUT_ALL]
    await c.close()


# ---- key pairs -----------------------------------------------------------------------------------

async def test_keypair(conn):
    kp = await conn.keypair.create_key(KeyPairReqInfo(IID("kp-a")))
    assert kp.iid == IID("kp-a", "kp-a")
    assert "PRIVATE KEY" in kp.private_key and kp.public_key.startswith("ssh-") and kp.fingerprint
    got = await conn.keypair.get_key(kp.iid)
    assert got.fingerprint == kp.fingerprint and got.private_key == ""
    assert [k.iid for k in await conn.keypair.list_key()] == [kp.iid]
    with pytest.raises(DriverError):
        await conn.keypair.create_key(KeyPairReqInfo(IID("kp-a")))
    assert await conn.keypair.delete_key(kp.iid) is True
    with pytest.raises(DriverNotFound):
        await conn.keypair.get_key(kp.iid)


# ---- VMs -----------------------------------------------------------------------------------------

async def vm_setup(conn, subnets=(("sn-1", "10.0.1.0/24"),)):
    vpc = await make_vpc(conn, subnets=subnets)
    sg = await conn.security.create_security(SecurityReqInfo(IID("sg-vm"), vpc.iid,
                                                             [SecurityRule("inbound", "TCP", "22", "22")]))
    kp = await conn.keypair.create_key(KeyPairReqInfo(IID("kp-vm")))
    return vpc, sg, kp


def vm_req(name, vpc, sg, kp, subnet=0):
    return VMReqInfo(IID(name), image_iid=IID("ubuntu-22.04", "ubuntu-22.04"), vmspec_name="m1.small",
                     vpc_iid=vpc.iid, subnet_iid=vpc.subnets[subnet].iid, security_group_iids=[sg.iid],
                     keypair_iid=kp.iid)


async def wait_status(conn, iid, want, timeout=15.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        status = await conn.vm.get_vm_status(iid)
        if status == want or loop.time() > end:
            return status
        await asyncio.sleep(0.1)


async def test_vm_lifecycle_and_immediate_deletes(conn):
    vpc, sg, kp = await vm_setup(conn)
    vm = await conn.vm.start_vm(vm_req("vm-1", vpc, sg, kp))
    assert vm.iid.name_id == "vm-1" and vm.iid.system_id
    assert vm.public_ip and vm.private_ip.startswith("10.0.1.")
    assert vm.ssh_access_point == f"{vm.public_ip}:22"
    assert await conn.vm.get_vm_status(vm.iid) == VMStatus.RUNNING
    got = await conn.vm.get_vm(vm.iid)
    assert (got.public_ip, got.private_ip) == (vm.public_ip, vm.private_ip)
    assert got.vmspec_name == "m1.small" and got.vpc_iid.system_id == vpc.iid.system_id
    assert got.subnet_iid.system_id == vpc.subnets[0].iid.system_id
    assert [s.system_id for s in got.security_group_iids] == [sg.iid.system_id]
    assert got.keypair_iid.system_id == kp.iid.system_id and got.image_iid.system_id
    assert [v.iid.system_id for v in await conn.vm.list_vm()] == [vm.iid.system_id]
    assert [(s.iid.system_id, s.status) for s in await conn.vm.list_vm_status()] == [(vm.iid.system_id, "Running")]

    # CB-Spider's legacy script: every action twice, back to back, no pause
    assert await conn.vm.control_vm(vm.iid, VMAction.SUSPEND) == VMStatus.SUSPENDING
    assert await conn.vm.control_vm(vm.iid, VMAction.SUSPEND) == VMStatus.SUSPENDING
    assert await conn.vm.control_vm(vm.iid, VMAction.RESUME) == VMStatus.RESUMING
    assert await conn.vm.control_vm(vm.iid, VMAction.RESUME) == VMStatus.RESUMING
    assert await conn.vm.control_vm(vm.iid, VMAction.REBOOT) == VMStatus.REBOOTING
    assert await conn.vm.control_vm(vm.iid, VMAction.REBOOT) == VMStatus.REBOOTING
    assert await wait_status(conn, vm.iid, VMStatus.RUNNING) == VMStatus.RUNNING
    # the second suspend after a settled suspend still answers Suspending, and resume brings it back
    assert await conn.vm.control_vm(vm.iid, VMAction.SUSPEND) == VMStatus.SUSPENDING
    assert await wait_status(conn, vm.iid, VMStatus.SUSPENDED) == VMStatus.SUSPENDED
    with pytest.raises(DriverError, match="reboot"):
        await conn.vm.control_vm(vm.iid, VMAction.REBOOT)
    assert await conn.vm.control_vm(vm.iid, VMAction.RESUME) == VMStatus.RESUMING
    assert await wait_status(conn, vm.iid, VMStatus.RUNNING) == VMStatus.RUNNING

    # terminate, then at once delete what the VM used (CB-Spider's script order)
    assert await conn.vm.terminate_vm(vm.iid) == VMStatus.TERMINATING
    assert await conn.keypair.delete_key(kp.iid) is True
    assert await conn.security.delete_security(sg.iid) is True
    assert await conn.vpc.delete_vpc(vpc.iid) is True
    with pytest.raises(DriverError) as err:
        await conn.vm.get_vm_status(vm.iid)
    assert is_not_found(err.value)
    assert await conn.vm.list_vm() == []


async def test_vm_on_second_subnet_gets_its_own_port(conn):
    vpc, sg, kp = await vm_setup(conn, subnets=(("sn-1", "10.0.1.0/24"), ("sn-2", "10.0.2.0/24")))
    vm = await conn.vm.start_vm(vm_req("vm-2", vpc, sg, kp, subnet=1))
    assert vm.private_ip.startswith("10.0.2.") and vm.public_ip
    got = await conn.vm.get_vm(vm.iid)
    assert got.subnet_iid.system_id == vpc.subnets[1].iid.system_id
    assert [s.system_id for s in got.security_group_iids] == [sg.iid.system_id]
    await conn.vm.terminate_vm(vm.iid)
    assert await conn.security.delete_security(sg.iid) is True
    assert await conn.vpc.delete_vpc(vpc.iid) is True  # the driver's own port went with the VM


async def test_vm_with_unknown_image_fails_cleanly(conn):
    vpc, sg, kp = await vm_setup(conn)
    req = vm_req("vm-x", vpc, sg, kp)
    req.image_iid = IID("no-such-image", "no-such-image")
    with pytest.raises(DriverNotFound):
        await conn.vm.start_vm(req)
    assert await conn.vm.list_iid() == []


# ---- NLB -----------------------------------------------------------------------------------------

async def test_nlb(conn):
    vpc, sg, kp = await vm_setup(conn)
    vm1, vm2 = await asyncio.gather(conn.vm.start_vm(vm_req("vm-n1", vpc, sg, kp)),
                                    conn.vm.start_vm(vm_req("vm-n2", vpc, sg, kp)))
    req = NLBReqInfo(IID("nlb-1"), vpc.iid, listener=ListenerInfo("TCP", port="80"),
                     vm_group=VMGroupInfo("TCP", "8080", [vm1.iid]),
                     health_checker=HealthCheckerInfo("TCP", "8080", 10, 5, 3))
    nlb = await conn.nlb.create_nlb(req)
    assert nlb.iid.name_id == "nlb-1" and nlb.iid.system_id and nlb.type == "PUBLIC"
    assert (nlb.listener.protocol, nlb.listener.port) == ("TCP", "80") and nlb.listener.ip
    assert (nlb.vm_group.protocol, nlb.vm_group.port) == ("TCP", "8080")
    assert (nlb.health_checker.protocol, nlb.health_checker.port, nlb.health_checker.interval,
            nlb.health_checker.timeout, nlb.health_checker.threshold) == ("TCP", "8080", 10, 5, 3)
    got = await conn.nlb.get_nlb(nlb.iid)
    assert got.listener.ip == nlb.listener.ip and got.vpc_iid.system_id == vpc.iid.system_id
    assert [v.system_id for v in got.vm_group.vms] == [vm1.iid.system_id]
    assert got.health_checker.interval == 10 and got.vm_group.port == "8080"

    group = await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    assert sorted(v.system_id for v in group.vms) == sorted([vm1.iid.system_id, vm2.iid.system_id])
    with pytest.raises(DriverError, match="already has this VM"):
        await conn.nlb.add_vms(nlb.iid, [vm2.iid])
    health = await conn.nlb.get_vm_group_health(nlb.iid)
    assert sorted(v.system_id for v in health.all_vms) == sorted([vm1.iid.system_id, vm2.iid.system_id])
    assert len(health.healthy_vms) + len(health.unhealthy_vms) == 2

    # a suspended member becomes unhealthy (member operating_status follows the server)
    await conn.vm.control_vm(vm2.iid, VMAction.SUSPEND)
    await wait_status(conn, vm2.iid, VMStatus.SUSPENDED)
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:
        health = await conn.nlb.get_vm_group_health(nlb.iid)
        if vm2.iid.system_id in [v.system_id for v in health.unhealthy_vms] or loop.time() > end:
            break
        await asyncio.sleep(0.2)
    assert [v.system_id for v in health.unhealthy_vms] == [vm2.iid.system_id]
    assert [v.system_id for v in health.healthy_vms] == [vm1.iid.system_id]

    assert await conn.nlb.remove_vms(nlb.iid, [vm2.iid]) is True
    with pytest.raises(DriverError, match="does not have this VM"):
        await conn.nlb.remove_vms(nlb.iid, [vm2.iid])
    listener = await conn.nlb.change_listener(nlb.iid, ListenerInfo("TCP", port="81"))
    assert listener.port == "81" and listener.ip == nlb.listener.ip
    hc = await conn.nlb.change_health_checker_info(nlb.iid, HealthCheckerInfo("TCP", "8080", 20, 10, 5))
    assert (hc.interval, hc.timeout, hc.threshold) == (20, 10, 5)
    group = await conn.nlb.change_vm_group_info(nlb.iid, VMGroupInfo("TCP", "9090"))
    assert group.port == "9090" and [v.system_id for v in group.vms] == [vm1.iid.system_id]
    got = await conn.nlb.get_nlb(nlb.iid)
    assert (got.listener.port, got.vm_group.port, got.health_checker.interval) == ("81", "9090", 20)
    assert got.health_checker.port == "9090"  # it followed the group port
    assert [n.iid for n in await conn.nlb.list_nlb()] == [got.iid]

    assert await conn.nlb.delete_nlb(nlb.iid) is True
    with pytest.raises(DriverNotFound):
        await conn.nlb.get_nlb(nlb.iid)
    await asyncio.gather(conn.vm.terminate_vm(vm1.iid), conn.vm.terminate_vm(vm2.iid))
    assert await conn.security.delete_security(sg.iid) is True
    assert await conn.vpc.delete_vpc(vpc.iid) is True
