"""MOCK provider specifics: profile catalogue, regions, AnyCall, isolation, state loss."""

import pytest

from mock_driver.driver import MockDriver
from mock_driver.backends import account_id, get_backend
from spider_core.drivers.base import ConnectionInfo
from spider_core.errors import DriverError, DriverNotFound, is_not_found
from spider_core.model import IID, AnyCallInfo, KeyValue, SecurityReqInfo, SubnetInfo, VPCReqInfo


def test_driver_metadata():
    d = MockDriver()
    assert d.provider_name == "MOCK" and d.credential_keys() == ["MockName"] and d.region_keys() == ["Region"]
    cap = d.capability()
    for f in ("zone_based_control", "region_zone_handler", "image_handler", "vmspec_handler", "vpc_handler",
              "security_handler", "keypair_handler", "vm_handler", "nlb_handler", "tag_handler", "vpc_cidr"):
        assert getattr(cap, f) is True, f
    assert cap.single_vpc is False and cap.cluster_handler is False
    assert d.id_max_length("nlb") == 32 and d.id_max_length("vpc") == 255
    assert account_id("a") == account_id("a") != account_id("b") and len(account_id("a")) == 12


async def test_images_specs_regions(conn):
    images = await conn.image.list_image()
    assert [i.iid.name_id for i in images] == [f"mock-vmimage-0{i}" for i in range(1, 6)]
    img = await conn.image.get_image(IID("mock-vmimage-02", "mock-vmimage-02"))
    assert (img.name, img.os_architecture, img.os_distribution, img.os_disk_size_gb) == \
        ("mock-vmimage-name-02", "arm64", "CentOS 8", "40")
    with pytest.raises(DriverNotFound, match="^xx image does not exist!!$"):
        await conn.image.get_image(IID("xx", "xx"))
    specs = await conn.vmspec.list_vm_spec()
    assert [s.name for s in specs] == [f"mock-vmspec-0{i}" for i in range(1, 5)]
    s1 = await conn.vmspec.get_vm_spec("mock-vmspec-01")
    assert (s1.region, s1.vcpu_count, s1.vcpu_clock_ghz, s1.mem_size_mib, s1.disk_size_gb) == \
        ("common-region", "4", "2.7", "32768", "-1")
    assert s1.gpus[0].count == "2" and s1.gpus[0].total_mem_size_gb == "1024"
    with pytest.raises(DriverNotFound, match="^nope VMSpec does not exist!!$"):
        await conn.vmspec.get_vm_spec("nope")
    org = await conn.vmspec.list_org_vm_spec()
    assert org[0]["Name"] == "mock-vmspec-01" and org[0]["VCpu"]["Count"] == "4"
    regions = await conn.region_zone.list_region_zone()
    assert [r.name for r in regions] == ["default", "mercury", "venus", "mars", "jupiter", "saturn",
                                         "uranus", "neptune"]
    d = regions[0]
    assert d.display_name == "Default, Default Region"
    assert [(z.name, z.status, z.display_name) for z in d.zones] == [
        ("default-z1", "Available", "Default Zone 1, Default"),
        ("default-z2", "Unavailable", "Default Zone 2, Default"),
        ("default-z3", "Available", "Default Zone 3, Default")]
    venus = await conn.region_zone.get_region_zone("venus")
    assert [z.status for z in venus.zones] == ["StatusNotSupported", "Available", "Available"]
    assert (await conn.region_zone.list_org_zone())["Name"] == "default"
    assert len(await conn.region_zone.list_org_region()) == 8


async def test_other_region_maps_to_other_aws_region(mock_name):
    c = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name}, "mars"))
    vpc = await c.vpc.create_vpc(VPCReqInfo(IID("v"), "10.0.0.0/16", [SubnetInfo(IID("s"), "mars-z3", "10.0.1.0/24")]))
    assert vpc.subnets[0].zone == "mars-z3"
    c_default = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name}, "default"))
    assert await c_default.vpc.list_iid() == []  # regions are isolated
    assert [v.iid for v in await c.vpc.list_vpc()] == [vpc.iid]


async def test_anycall_count_all(conn):
    call = AnyCallInfo("countAll", [KeyValue("rsType", "vpc")])
    assert (await conn.any_call.any_call(call)).outputs == [KeyValue("Count", "0")]
    vpc = await conn.vpc.create_vpc(VPCReqInfo(IID("v1"), "10.0.0.0/16", []))
    await conn.security.create_security(SecurityReqInfo(IID("sg1"), vpc.iid, []))
    out = await conn.any_call.any_call(call)
    assert out.fid == "countAll" and out.inputs == call.inputs and out.outputs == [KeyValue("Count", "1")]
    out = await conn.any_call.any_call(AnyCallInfo("countAll", [KeyValue("rsType", "sg")]))
    assert out.outputs == [KeyValue("Count", "1")]
    with pytest.raises(DriverError, match="^Mock Driver: foo Function is not implemented!$"):
        await conn.any_call.any_call(AnyCallInfo("foo"))
    with pytest.raises(DriverError, match="^Mock Driver: countAll's Argument is empty!$"):
        await conn.any_call.any_call(AnyCallInfo("countAll"))
    with pytest.raises(DriverError, match="^Mock Driver: countAll's Argument is not 'rsType'!$"):
        await conn.any_call.any_call(AnyCallInfo("countAll", [KeyValue("x", "vpc")]))


async def test_mockname_isolation(mock_name):
    a = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name + "-a"}, "default"))
    a2 = await MockDriver().connect(ConnectionInfo("MOCK", {"mockname": mock_name + "-a"}, "default"))
    b = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name + "-b"}, "default"))
    vpc = await a.vpc.create_vpc(VPCReqInfo(IID("shared-name"), "10.0.0.0/16", []))
    assert await b.vpc.list_iid() == []
    with pytest.raises(DriverNotFound):
        await b.vpc.get_vpc(vpc.iid)
    assert (await a2.vpc.get_vpc(vpc.iid)).iid == vpc.iid  # same MockName -> same cloud


async def test_connect_errors():
    with pytest.raises(DriverError):
        await MockDriver().connect(ConnectionInfo("MOCK", {}, "default"))
    with pytest.raises(DriverError, match="pluto"):
        await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": "x"}, "pluto"))


async def test_state_loss_gives_not_found(conn, mock_name):
    vpc = await conn.vpc.create_vpc(VPCReqInfo(IID("v1"), "10.0.0.0/16", [SubnetInfo(IID("s1"), "", "10.0.1.0/24")]))
    sg = await conn.security.create_security(SecurityReqInfo(IID("sg1"), vpc.iid, []))
    get_backend().reset()  # what a process restart does to the in-memory cloud
    fresh = await MockDriver().connect(ConnectionInfo("MOCK", {"MockName": mock_name}, "default"))
    for coro in (fresh.vpc.get_vpc(vpc.iid), fresh.vpc.delete_vpc(vpc.iid),
                 fresh.security.get_security(sg.iid), fresh.security.delete_security(sg.iid),
                 fresh.keypair.get_key(IID("k", "k")), fresh.vm.get_vm(IID("vm", "i-0123456789abcdef0")),
                 fresh.vm.get_vm_status(IID("vm", "i-0123456789abcdef0")),
                 fresh.nlb.get_nlb(IID("n", "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1"))):
        with pytest.raises(DriverNotFound) as err:
            await coro
        assert is_not_found(err.value)
    # images are registered again after the reset, so VMs can still start
    assert await fresh.vpc.list_iid() == []
