"""Shared pieces of the lock-hierarchy tests: request bodies for NULL and CLOUDTWIN, a CLOUDTWIN
connection on an in-process Spider, a gate that holds a driver call open, and the end-state checks
(no lock entry, no MetaDB row without its parent, Spider and the cloud agree)."""

from __future__ import annotations

import asyncio
import copy
import itertools
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from spider_helpers import TwinSubprocess

CT_CONN = "cloudtwin-cloud-1-config"


@dataclass(frozen=True)
class Cloud:
    """What a VM create needs on one provider."""

    image: str
    spec: str


NULL_CLOUD = Cloud("null-image-01", "null-spec-01")
TWIN_CLOUD = Cloud("ubuntu-22.04", "m1.small")


def vpc_req(name: str, subnet: str = "sn-a", third_octet: int = 1) -> dict:
    return {"Name": name, "IPv4_CIDR": "10.0.0.0/16",
            "SubnetInfoList": [{"Name": subnet, "IPv4_CIDR": f"10.0.{third_octet}.0/24"}]}


def sg_req(name: str, vpc: str) -> dict:
    return {"Name": name, "VPCName": vpc, "SecurityRules": [
        {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}]}


def vm_req(cloud: Cloud, name: str, vpc: str, subnet: str, sgs: list[str], key: str) -> dict:
    return {"Name": name, "ImageName": cloud.image, "VMSpecName": cloud.spec, "VPCName": vpc,
            "SubnetName": subnet, "SecurityGroupNames": sgs, "KeyPairName": key}


async def register_twin(srv: Any, twin_url: str, cloud: str = "cloud-1") -> None:
    """CB-Spider's Cloud-Twin registration of connection ``CT_CONN`` on one twin cloud, in process."""
    for path, body in (
            ("driver", {"DriverName": "cloudtwin-driver01", "ProviderName": "CLOUDTWIN",
                        "DriverLibFileName": "cloudtwin-driver-v1.0.so"}),
            ("region", {"RegionName": "cloudtwin-region", "ProviderName": "CLOUDTWIN",
                        "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]}),
            ("credential", {"CredentialName": "cloudtwin-cloud-1-credential01", "ProviderName": "CLOUDTWIN",
                            "KeyValueInfoList": [{"Key": "IdentityEndpoint", "Value": twin_url},
                                                 {"Key": "DomainName", "Value": cloud},
                                                 {"Key": "MockName", "Value": "mock_name01"}]}),
            ("connectionconfig", {"ConfigName": CT_CONN, "ProviderName": "CLOUDTWIN",
                                  "DriverName": "cloudtwin-driver01",
                                  "CredentialName": "cloudtwin-cloud-1-credential01",
                                  "RegionName": "cloudtwin-region"})):
        r = await srv.call("POST", path, body)
        assert r.status == 200, (path, r.text)


TWIN_CLOUDS = 6  # a fresh twin cloud for each test of a module


@pytest.fixture(scope="module")
def twin():
    t = TwinSubprocess(*itertools.chain.from_iterable(("--cloud", f"cloud-{i}=openstack")
                                                      for i in range(1, TWIN_CLOUDS + 1)))
    t.start()
    t.clouds = itertools.count(1)
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
async def twin_server(twin, null_server):
    """The in-process server of ``null_server`` with a CLOUDTWIN connection on a twin cloud of its own."""
    cloud = next(twin.clouds)
    assert cloud <= TWIN_CLOUDS, "more CLOUDTWIN tests in this module than twin clouds"
    srv = copy.copy(null_server)
    srv.conn = CT_CONN
    srv.sp.settings.vm_ip_poll_interval = 0.1
    srv.sp.settings.vm_terminate_poll_interval = 0.1
    await register_twin(srv, twin.url, f"cloud-{cloud}")
    return srv


@pytest.fixture(params=["null", "cloudtwin"])
def provider(request):
    if request.param == "null":
        return request.getfixturevalue("null_server"), NULL_CLOUD
    return request.getfixturevalue("twin_server"), TWIN_CLOUD


class Gate:
    """Holds every call of one driver method at its door until ``open()``; ``entered`` counts arrivals.

    Installed on the connection's handler instance, so it works for any driver."""

    def __init__(self, handler: Any, method: str) -> None:
        self.entered = 0
        self._arrived = asyncio.Condition()
        self._open = asyncio.Event()
        inner: Callable[..., Any] = getattr(handler, method)

        async def gated(*args: Any, **kwargs: Any) -> Any:
            async with self._arrived:
                self.entered += 1
                self._arrived.notify_all()
            await self._open.wait()
            return await inner(*args, **kwargs)

        setattr(handler, method, gated)

    async def until(self, n: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.entered >= n)

    def open(self) -> None:
        self._open.set()


async def until_waiting(sp: Any, family: str, name: str, waiters: int = 1) -> dict:
    """Yield to the loop until ``waiters`` requests queue on a key; returns that lock entry."""
    while True:
        for entry in sp.locks.snapshot()["entries"]:
            if entry["family"] == family and entry["name"] == name and entry["waiters"] >= waiters:
                return entry
        await asyncio.sleep(0.005)


def is_clean_error(reply: Any) -> bool:
    """A CB-Spider error: a JSON ``{"message": ...}`` naming what went wrong, never a bare 500 or a trace."""
    try:
        body = reply.json
    except ValueError:
        return False
    message = body.get("message") if isinstance(body, dict) else None
    return (reply.status in (400, 404, 409, 500) and isinstance(message, str) and bool(message.strip())
            and message != "Internal Server Error" and "Traceback" not in message)


ALL_WORDS = ("vpc", "securitygroup", "keypair", "vm")


async def assert_consistent(srv: Any) -> None:
    """No lock entry left; every subnet/SG/NLB row has its VPC; Spider and the cloud list the same."""
    assert srv.sp.locks.entry_count() == 0, srv.sp.locks.snapshot()
    rows = (await srv.dump())["iid_infos"]
    vpcs = {r[3] for r in rows if r[1] == "vpc"}
    orphans = [r for r in rows if r[1] in ("subnet", "sg", "nlb") and r[2] not in vpcs]
    assert orphans == [], f"MetaDB rows pointing at a missing VPC: {orphans}"
    q = {"ConnectionName": srv.conn}
    for vpc in sorted(vpcs):  # the cloud has every subnet the MetaDB has (a half-deleted VPC would not)
        got = await srv.call("GET", f"vpc/{vpc}", params=q)
        assert got.status == 200, got.text
        assert sorted(sn["IId"]["NameId"] for sn in got.json["SubnetInfoList"] or []) == \
            sorted(r[3] for r in rows if r[1] == "subnet" and r[2] == vpc), vpc
    for word in ALL_WORDS:
        reply = await srv.call("GET", f"all{word}", params=q)
        assert reply.status == 200, reply.text
        lists = reply.json["AllList"]
        assert lists["OnlySpiderList"] in ([], None), (word, lists)
        assert lists["OnlyCSPList"] in ([], None), (word, lists)
