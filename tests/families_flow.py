"""The VM-side families' REST flow (disk, MyImage, tag, NIC, public IP, prices), run against any provider
(tests/test_vm_side_families.py: NULL and MOCK in process; CLOUDTWIN through a twin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Catalogue:
    image: str
    spec: str
    region: str
    cidr: str = "10.20.0.0/16"
    subnet_cidr: str = "10.20.1.0/24"


def ok(reply: Any) -> Any:
    assert reply.status == 200, reply.text
    return reply.json


async def base(srv: Any, cat: Catalogue, tag: str) -> dict[str, str]:
    """A VPC, SG, key pair and VM named after ``tag``."""
    names = {k: f"{k}-{tag}" for k in ("vpc", "subnet", "sg", "key", "vm")}
    ok(await srv.call("POST", "vpc", srv.body({"Name": names["vpc"], "IPv4_CIDR": cat.cidr, "SubnetInfoList": [
        {"Name": names["subnet"], "IPv4_CIDR": cat.subnet_cidr}]})))
    ok(await srv.call("POST", "securitygroup", srv.body({"Name": names["sg"], "VPCName": names["vpc"],
                                                          "SecurityRules": []})))
    ok(await srv.call("POST", "keypair", srv.body({"Name": names["key"]})))
    vm = ok(await srv.call("POST", "vm", srv.body(_vm_req(names, names["vm"], cat.image, cat.spec))))
    assert vm["Platform"] in ("LINUX/UNIX", "WINDOWS"), vm["Platform"]
    return names


def _vm_req(names: dict, vm: str, image: str, spec: str, image_type: str = "PublicImage") -> dict:
    return {"Name": vm, "ImageType": image_type, "ImageName": image, "VMSpecName": spec, "VPCName": names["vpc"],
            "SubnetName": names["subnet"], "SecurityGroupNames": [names["sg"]], "KeyPairName": names["key"]}


async def disk_flow(srv: Any, names: dict, tag: str) -> None:
    disk = f"disk-{tag}"
    made = ok(await srv.call("POST", "disk", srv.body({"Name": disk, "DiskType": "default", "DiskSize": "10"})))
    assert made["IId"]["NameId"] == disk and made["DiskSize"] == "10" and made["Status"] == "Available", made
    assert list(made)[:7] == ["IId", "Zone", "DiskType", "DiskSize", "Status", "OwnerVM", "CreatedTime"]
    attached = ok(await srv.call("PUT", f"disk/{disk}/attach", srv.body({"VMName": names["vm"]})))
    assert attached["Status"] == "Attached" and attached["OwnerVM"]["NameId"] == names["vm"], attached
    listed = ok(await srv.call("GET", "disk", params={"ConnectionName": srv.conn}))["disk"]
    assert [d["IId"]["NameId"] for d in listed] == [disk] and listed[0]["OwnerVM"]["NameId"] == names["vm"]
    vm = ok(await srv.call("GET", f"vm/{names['vm']}", params={"ConnectionName": srv.conn}))
    assert disk in [d["NameId"] for d in vm.get("DataDiskIIDs", [])], vm
    assert ok(await srv.call("PUT", f"disk/{disk}/size", srv.body({"Size": "20"}))) == {"Result": "true"}
    assert ok(await srv.call("GET", f"disk/{disk}", params={"ConnectionName": srv.conn}))["DiskSize"] == "20"
    shrink = await srv.call("PUT", f"disk/{disk}/size", srv.body({"Size": "5"}))
    assert shrink.status == 500 and "greater" in shrink.json["message"]
    busy = await srv.call("DELETE", f"disk/{disk}", srv.body())
    assert busy.status == 500, busy.text  # attached: the cloud refuses, the row stays
    assert ok(await srv.call("PUT", f"disk/{disk}/detach", srv.body({"VMName": names["vm"]}))) == {"Result": "true"}
    got = ok(await srv.call("GET", f"disk/{disk}", params={"ConnectionName": srv.conn}))
    assert got["Status"] == "Available" and got["OwnerVM"] == {"NameId": "", "SystemId": ""}, got
    assert ok(await srv.call("DELETE", f"disk/{disk}", srv.body())) == {"Result": "true"}
    assert ok(await srv.call("GET", "disk", params={"ConnectionName": srv.conn})) == {"disk": []}


async def myimage_flow(srv: Any, cat: Catalogue, names: dict, tag: str) -> None:
    image = f"img-{tag}"
    made = ok(await srv.call("POST", "myimage", srv.body({"Name": image, "SourceVM": names["vm"]})))
    assert made["IId"]["NameId"] == image and made["SourceVM"]["NameId"] == names["vm"], made
    assert [i["IId"]["NameId"] for i in ok(await srv.call("GET", "myimage",
                                                          params={"ConnectionName": srv.conn}))["myImage"]] == [image]
    vm2 = f"vm2-{tag}"
    started = ok(await srv.call("POST", "vm", srv.body(_vm_req(names, vm2, image, cat.spec, "MyImage"))))
    assert started["ImageType"] == "MyImage" and started["ImageIId"]["NameId"] == image, started
    assert ok(await srv.call("DELETE", f"vm/{vm2}", srv.body()))["Status"]
    assert ok(await srv.call("DELETE", f"myimage/{image}", srv.body())) == {"Result": "true"}


async def tag_flow(srv: Any, names: dict) -> None:
    for rtype, name in (("VPC", names["vpc"]), ("VM", names["vm"])):
        kv = ok(await srv.call("POST", "tag", srv.body({"ResourceType": rtype, "ResourceName": name,
                                                         "Tag": {"Key": "team", "Value": f"blue-{rtype}"}})))
        assert kv == {"Key": "team", "Value": f"blue-{rtype}"}
        dup = await srv.call("POST", "tag", srv.body({"ResourceType": rtype, "ResourceName": name,
                                                       "Tag": {"Key": "team", "Value": "x"}}))
        assert dup.status == 500 and "already exists" in dup.json["message"]
        q = {"ConnectionName": srv.conn, "ResourceType": rtype, "ResourceName": name}
        listed = ok(await srv.call("GET", "tag", params=q))
        assert {"Key": "team", "Value": f"blue-{rtype}"} in listed["tag"] and listed["resourceType"] in ("VPC", "VM")
        assert ok(await srv.call("GET", "tag/team", params=q)) == {"Key": "team", "Value": f"blue-{rtype}"}
    found = ok(await srv.call("POST", "tag/find", srv.body({"ResourceType": "all", "Keyword": "blue"})))["tag"]
    assert {(t["ResType"], t["ResIId"]["NameId"]) for t in found} >= {("vpc", names["vpc"]), ("vm", names["vm"])}
    for rtype, name in (("VPC", names["vpc"]), ("VM", names["vm"])):
        assert ok(await srv.call("DELETE", "tag/team", srv.body({"ResourceType": rtype, "ResourceName": name}))) == \
            {"Result": "true"}
        q = {"ConnectionName": srv.conn, "ResourceType": rtype, "ResourceName": name}
        assert {"Key": "team", "Value": f"blue-{rtype}"} not in ok(await srv.call("GET", "tag", params=q))["tag"]
    assert not ok(await srv.call("POST", "tag/find", srv.body({"ResourceType": "all", "Keyword": "blue"})))["tag"]


async def nic_and_public_ip_flow(srv: Any, names: dict, tag: str, *, maps_private_ip: bool = True) -> None:
    """``maps_private_ip``: the cloud maps the public IP onto the private IP asked for (moto always
    takes the interface's primary address)."""
    nic = f"nic-{tag}"
    made = ok(await srv.call("POST", "nic", srv.body({"Name": nic, "VPCName": names["vpc"], "SubnetName": names["subnet"],
                                                       "SecurityGroupNames": [names["sg"]]})))
    assert made["SubnetIID"]["NameId"] == names["subnet"] and made["Status"] == "Available", made
    two = ok(await srv.call("POST", f"nic/{nic}/privateip", srv.body({"PrivateIP": ""})))
    assert len(two["PrivateIPs"]) == 2 and two["PrivateIPs"][0] == made["PrivateIP"], two
    attached = ok(await srv.call("PUT", f"nic/{nic}/attach", srv.body({"VMName": names["vm"]})))
    assert attached["Status"] == "Attached" and attached["OwnerVM"]["NameId"] == names["vm"], attached
    assert attached["DeviceIndex"] >= 1 and len(attached["PrivateIPs"]) == 2
    script = ok(await srv.call("GET", f"nic/{nic}/osconfigscript", params={"ConnectionName": srv.conn}))
    assert list(script) == ["ConnectionName", "NICName", "Script"] and script["NICName"] == nic

    pip = f"pip-{tag}"
    made_ip = ok(await srv.call("POST", "publicip", srv.body({"Name": pip})))
    assert made_ip["Status"] == "Available" and made_ip["PublicIPAddress"], made_ip
    second = two["PrivateIPs"][1]
    assoc = ok(await srv.call("PUT", f"publicip/{pip}/associate", srv.body({"NICName": nic, "PrivateIP": second})))
    assert assoc["Status"] == "Associated" and assoc["OwnedNIC"]["NameId"] == nic, assoc
    assert assoc["OwnedPrivateIP"] == (second if maps_private_ip else two["PrivateIPs"][0]), assoc
    listed = ok(await srv.call("GET", "publicip", params={"ConnectionName": srv.conn}))["publicip"]
    assert [p["Status"] for p in listed] == ["Associated"]
    busy = await srv.call("DELETE", f"publicip/{pip}", srv.body())
    assert busy.status == 500, busy.text
    assert ok(await srv.call("PUT", f"publicip/{pip}/disassociate", srv.body())) == {"Result": "true"}
    assert ok(await srv.call("GET", f"publicip/{pip}", params={"ConnectionName": srv.conn}))["Status"] == "Available"
    assert ok(await srv.call("DELETE", f"publicip/{pip}", srv.body())) == {"Result": "true"}

    assert ok(await srv.call("DELETE", f"nic/{nic}/privateip/{second}", srv.body())) == {"Result": "true"}
    assert ok(await srv.call("PUT", f"nic/{nic}/detach", srv.body())) == {"Result": "true"}
    assert ok(await srv.call("DELETE", f"nic/{nic}", srv.body())) == {"Result": "true"}


async def price_flow(srv: Any, cat: Catalogue) -> None:
    families = ok(await srv.call("GET", f"productfamily/{cat.region}", params={"ConnectionName": srv.conn}))
    assert families["productfamily"], families
    every = ok(await srv.call("GET", f"priceinfo/vm/{cat.region}", params={"ConnectionName": srv.conn}))
    assert list(every) == ["Meta", "CloudName", "RegionName", "PriceList"] and len(every["PriceList"]) >= 2
    row = every["PriceList"][0]
    assert row["ProductInfo"]["VMSpecInfo"]["Name"] and float(row["PriceInfo"]["OnDemand"]["Price"]) >= 0
    wanted = cat.spec
    one = ok(await srv.call("POST", f"priceinfo/vm/{cat.region}",
                            {"ConnectionName": srv.conn, "FilterList": [{"Key": "vmSpecName", "Value": wanted}]}))
    assert [p["ProductInfo"]["VMSpecInfo"]["Name"] for p in one["PriceList"]] == [wanted], one
    simple = ok(await srv.call("GET", f"priceinfo/vm/{cat.region}", params={"ConnectionName": srv.conn,
                                                                             "simple": "true"}))
    assert "VMSpecName" in simple["PriceList"][0]["ProductInfo"]


async def teardown(srv: Any, names: dict) -> None:
    ok(await srv.call("DELETE", f"vm/{names['vm']}", srv.body()))
    for path in (f"keypair/{names['key']}", f"securitygroup/{names['sg']}", f"vpc/{names['vpc']}"):
        ok(await srv.call("DELETE", path, srv.body()))


async def root_disk_flow(srv: Any, cat: Catalogue, names: dict, tag: str) -> None:
    """A VM with a RootDiskSize boots from a volume of that size (the cloud's own volume, not a Spider disk)."""
    vm = f"vm3-{tag}"
    req = {**_vm_req(names, vm, cat.image, cat.spec), "RootDiskSize": "30"}
    ok(await srv.call("POST", "vm", srv.body(req)))
    csp_only = ok(await srv.call("GET", "alldiskinfo", params={"ConnectionName": srv.conn}))["AllListInfo"]
    assert [d["DiskSize"] for d in csp_only["OnlyCSPInfoList"]] == ["30"], csp_only
    assert csp_only["OnlyCSPInfoList"][0]["Status"] == "Attached"
    ok(await srv.call("DELETE", f"vm/{vm}", srv.body()))
