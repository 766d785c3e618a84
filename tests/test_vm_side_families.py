"""Disk, MyImage, tag, NIC, public IP and prices through Spider's REST API, on NULL and MOCK; and the
route list: every operation of these families in CB-Spider's API description is routed, and no literal
path is taken by a ``{Name}`` route."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from spider_core.model import ConnectionConfigInfo, KeyValue
from spider_core.services import connection as conn_svc
from spider_helpers import InProcess, TwinSubprocess

from spider_core.rest.app import create_app
from tests import families_flow as flow

# CB-Spider's operations by family (a copy of the project's reference list, cb-spider-routes.tsv)
ROUTE_LIST = Path(__file__).with_name("data") / "cb-spider-routes.tsv"
FAMILIES = {"disk", "myimage", "tag", "nic", "publicip", "price", "vm-favorite-recent"}


def _operations() -> list[tuple[str, str]]:
    lines = [line for line in ROUTE_LIST.read_text().splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    return [(r["method"], r["path"]) for r in rows if r["family"] in FAMILIES]


async def test_route_list_is_routed_without_shadowing():
    app = create_app(object())
    ops = _operations()
    assert len(ops) == 14 + 11 + 4 + 13 + 10 + 8 + 7
    for method, path in ops:
        concrete = re.sub(r"\{\w+\}", "x-1", path)
        match = await app.router.resolve(make_mocked_request(method, concrete, app=app))
        assert match.http_exception is None, f"{method} {path} is not routed: {match.http_exception}"
        assert match.route.resource.canonical == path, f"{method} {path} is answered by {match.route.resource.canonical}"


NULL = flow.Catalogue(image="null-image-01", spec="null-spec-01", region="null-region")


async def test_families_on_null(null_server):
    srv = null_server
    names = await flow.base(srv, NULL, "n1")
    await flow.disk_flow(srv, names, "n1")
    await flow.myimage_flow(srv, NULL, names, "n1")
    await flow.tag_flow(srv, names)
    await flow.nic_and_public_ip_flow(srv, names, "n1")
    await flow.price_flow(srv, NULL)
    await flow.teardown(srv, names)
    assert (await srv.dump())["iid_infos"] == []


MOCK = flow.Catalogue(image="mock-vmimage-01", spec="mock-vmspec-01", region="default")


async def test_families_on_mock(mock_server):
    srv = mock_server
    names = await flow.base(srv, MOCK, "m1")
    await flow.disk_flow(srv, names, "m1")
    await flow.myimage_flow(srv, MOCK, names, "m1")
    await flow.tag_flow(srv, names)
    await flow.nic_and_public_ip_flow(srv, names, "m1", maps_private_ip=False)
    await flow.price_flow(srv, MOCK)
    await flow.teardown(srv, names)
    assert (await srv.dump())["iid_infos"] == []


TWIN = flow.Catalogue(image="ubuntu-22.04", spec="m1.small", region="default")


@pytest.fixture(scope="module")
def twin():
    with TwinSubprocess("--cloud", "cloud-1=openstack") as t:
        yield t


async def test_families_on_cloudtwin(spider, twin):
    await conn_svc.register_driver(spider, "cloudtwin-driver01", "CLOUDTWIN", "cloudtwin-driver-v1.0.so")
    await conn_svc.register_credential(spider, "ct-credential", "CLOUDTWIN", [
        KeyValue("IdentityEndpoint", twin.url), KeyValue("DomainName", "cloud-1"), KeyValue("MockName", "families")])
    await conn_svc.register_region(spider, "ct-region", "CLOUDTWIN", [KeyValue("Region", "default")], None)
    await conn_svc.register_connection(spider, ConnectionConfigInfo("ct-config", "CLOUDTWIN", "cloudtwin-driver01",
                                                                    "ct-credential", "ct-region"))
    client = TestClient(TestServer(create_app(spider)))
    await client.start_server()
    try:
        srv = InProcess(client, spider, "ct-config")
        names = await flow.base(srv, TWIN, "t1")
        await flow.disk_flow(srv, names, "t1")
        await flow.myimage_flow(srv, TWIN, names, "t1")
        await flow.tag_flow(srv, names)
        await flow.nic_and_public_ip_flow(srv, names, "t1")
        await flow.price_flow(srv, TWIN)
        await flow.root_disk_flow(srv, TWIN, names, "t1")
        await flow.teardown(srv, names)
        assert (await srv.dump())["iid_infos"] == []
    finally:
        await client.close()


async def test_disk_create_and_delete_run_as_jobs(null_server):
    srv = null_server
    r = await srv.call("POST", "disk", srv.body({"Name": "disk-job", "DiskType": "default", "DiskSize": "5"}),
                       params={"async": "true"})
    assert r.status == 202, r.text
    job = flow.ok(await srv.call("GET", f"job/{r.json['Id']}", params={"wait": "10"}))
    assert job["Status"] == "done" and job["Result"]["IId"]["NameId"] == "disk-job", job
    r = await srv.call("DELETE", "disk/disk-job", srv.body(), params={"async": "true"})
    job = flow.ok(await srv.call("GET", f"job/{r.json['Id']}", params={"wait": "10"}))
    assert job["Status"] == "done" and job["Result"] == {"Result": "true"}, job
    assert (await srv.dump())["iid_infos"] == []


async def test_mcinsight_searches_answer_from_the_registered_clouds(null_server):
    srv = null_server
    every = flow.ok(await srv.call("GET", "mcinsight/price-info", params={"csp": "null"}))
    assert every["total"] == 2 and {i["instance_type"] for i in every["items"]} == {"null-spec-01", "null-spec-02"}
    one = flow.ok(await srv.call("GET", "mcinsight/price-info", params={"csp": "NULL", "instance_type": "null-spec-02"}))
    assert [(i["instance_type"], i["price"]) for i in one["items"]] == [("null-spec-02", "0.0200")]
    assert flow.ok(await srv.call("GET", "mcinsight/price-info", params={"csp": "aws"}))["items"] == []
    specs = flow.ok(await srv.call("GET", "mcinsight/vm-spec", params={"csp": "null", "limit": "1"}))
    assert specs["total"] == 2 and len(specs["items"]) == 1
    filters = flow.ok(await srv.call("GET", "mcinsight/vm-image/filters"))
    assert filters["csp"] == ["null"]
    bad = await srv.call("GET", "mcinsight/vm-spec", params={"min_vcpu_count": "many"})
    assert bad.status == 400 and list(bad.json) == ["message"]
