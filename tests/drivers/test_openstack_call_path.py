"""The OpenStack driver's call path (``session.py`` + ``transport.py``): REST calls on the event loop over
aiohttp, with the token and endpoints from openstacksdk — URL joining, proxies, answers of every kind,
failures without an answer, logging in again when the cloud refuses a token, and lists that span
pages."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiohttp import web

from spider_core.calllog import call_log
from spider_core.drivers.base import ConnectionInfo
from spider_core.drivers.openstack.session import next_marker, with_marker
from spider_core.drivers.openstack.transport import HttpTransport, TransportError, join_url, proxy_for
from spider_core.errors import DriverError
from spider_core.model import IID, SubnetInfo, VPCReqInfo


def test_join_url_follows_keystoneauth():
    assert join_url("http://h/compute/v2.1", "/servers") == "http://h/compute/v2.1/servers"
    assert join_url("http://h/image/v2/", "images?limit=1") == "http://h/image/v2/images?limit=1"
    assert join_url("http://h/v3/", "/auth/tokens") == "http://h/v3/auth/tokens"


def test_proxy_comes_from_the_environment_and_no_proxy_wins(monkeypatch):
    for var in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert proxy_for("https://cloud.example.com:5000/v3") is None
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1,.internal")
    assert proxy_for("https://cloud.example.com:5000/v3") == "http://proxy.corp:3128"
    assert proxy_for("https://keystone.internal:5000/v3") is None
    assert proxy_for("http://127.0.0.1:8192/v3") is None
    assert proxy_for("http://cloud.example.com/v3") is None, "no http_proxy set: http goes direct"


def test_next_page_markers_of_every_service_style():
    nova = {"servers": [{}], "servers_links": [{"rel": "next",
                                                "href": "http://h/compute/v2.1/servers/detail?limit=1000&marker=abc"}]}
    assert next_marker(nova, "servers") == "abc"
    glance = {"images": [{}], "next": "/v2/images?limit=25&marker=img-9"}
    assert next_marker(glance, "images") == "img-9"
    neutron_last = {"networks": [{}], "networks_links": [{"rel": "previous", "href": "http://h/v2.0/networks?marker=x"}]}
    assert next_marker(neutron_last, "networks") is None
    assert next_marker({"servers": []}, "servers") is None and next_marker(None, "servers") is None
    assert with_marker("/networks?router:external=True&marker=old", "n2") == (
        "/networks?router%3Aexternal=True&marker=n2")
    assert with_marker("/servers/detail", "s1") == "/servers/detail?marker=s1"


@pytest.fixture
async def echo_server():
    """Answers: JSON with the token it saw, an empty 204, plain text, and one that never answers."""
    async def json_ok(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        return web.json_response({"token": request.headers.get("X-Auth-Token"), "body": body,
                                  "mv": request.headers.get("OpenStack-API-Version")}, status=201)

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def text(request: web.Request) -> web.Response:
        return web.Response(status=503, text="Service Unavailable", headers={"Retry-After": "7"})

    released = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await released.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/v2/json", json_ok)
    app.router.add_delete("/v2/empty", empty)
    app.router.add_get("/v2/text", text)
    app.router.add_get("/v2/hang", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v2"
    released.set()
    await runner.cleanup()


async def test_answers_of_every_kind_are_returned_not_raised(echo_server):
    t = HttpTransport(limit=4, timeout=5)
    try:
        a = await t.request("POST", join_url(echo_server, "json"), token="tok-1", body={"network": {"name": "n"}},
                            headers={"OpenStack-API-Version": "compute 2.1"})
        assert a.status == 201
        assert a.body == {"token": "tok-1", "body": {"network": {"name": "n"}}, "mv": "compute 2.1"}
        a = await t.request("DELETE", join_url(echo_server, "empty"), token="t")
        assert (a.status, a.body) == (204, None)
        a = await t.request("GET", join_url(echo_server, "text"), token="t")
        assert (a.status, a.body, a.headers["Retry-After"], a.reason) == (503, "Service Unavailable", "7",
                                                                           "Service Unavailable")
    finally:
        await t.close()


async def test_no_answer_is_a_transport_error_that_says_why(echo_server):
    t = HttpTransport(limit=4, timeout=0.3)
    try:
        with pytest.raises(TransportError) as err:
            await t.request("GET", join_url(echo_server, "hang"), token="t")
        assert err.value.kind == "timeout" and "within 0.3 s" in str(err.value)
        with pytest.raises(TransportError) as err:
            await t.request("GET", "http://127.0.0.1:9/v2/x", token="t")   # discard port: nothing listens
        assert err.value.kind == "unreachable"
    finally:
        await t.close()


# ---- through the driver, against Cloud-Twin ------------------------------------------------------------

@pytest.fixture
async def twin():
    from cloudtwin.app import TwinServer
    from cloudtwin.clouds import TwinConfig

    async with TwinServer(port=0, config=TwinConfig(time_scale=0.1)) as server:
        yield server


@pytest.fixture
async def conn(twin):
    """A CLOUDTWIN connection of its own project (MockName) on cloud-1, closed after the test."""
    from spider_core.drivers.openstack import CloudTwinDriver

    driver = CloudTwinDriver()
    mock = f"t-{uuid.uuid4().hex[:10]}"
    c = await driver.connect(ConnectionInfo("CLOUDTWIN", {"IdentityEndpoint": twin.url, "DomainName": "cloud-1",
                                                          "MockName": mock}, "default", connection_name=f"conn-{mock}"))
    yield c
    await c.close()
    await driver.close()


async def test_a_refused_token_means_one_new_login_not_a_failure(twin, conn):
    """Keystone forgets every token (a restart, a revocation): a burst of calls all get 401, one of them
    logs in again in the pool, every call succeeds on retry, and no call logs in by itself."""
    session = conn.extra["session"]
    made = await conn.vpc.create_vpc(VPCReqInfo(IID("v1"), "10.0.0.0/16",
                                                [SubnetInfo(IID("s1"), "", "10.0.1.0/24")]))
    old = session._token
    assert old and list(twin.twin.tokens) == [old]
    twin.twin.forget_tokens()
    got = await asyncio.gather(*(conn.vpc.get_vpc(made.iid) for _ in range(20)))
    assert {g.iid.system_id for g in got} == {made.iid.system_id}
    assert session._token != old and list(twin.twin.tokens) == [session._token], "one login for the burst"
    await asyncio.gather(*(conn.vpc.get_vpc(made.iid) for _ in range(20)))
    assert len(twin.twin.tokens) == 1, "no login per call"


async def test_a_token_near_its_expiry_is_renewed_before_the_cloud_refuses_it(twin, conn):
    session = conn.extra["session"]
    await conn.vpc.list_vpc()
    old = session._token
    assert session._token_renew_at - time.monotonic() > 600, "Cloud-Twin tokens live an hour"
    session._token_renew_at = time.monotonic() - 1          # due now
    await asyncio.gather(*(conn.vpc.list_vpc() for _ in range(10)))
    assert session._token != old and len(twin.twin.tokens) == 2, "one new login, not ten"


async def test_an_unreachable_cloud_is_a_clear_error_naming_the_connection(twin, conn):
    session = conn.extra["session"]
    await conn.vpc.list_vpc()          # logged in, endpoints known
    session._endpoints = {k: "http://127.0.0.1:9/network/v2.0" for k in session._endpoints}
    with pytest.raises(DriverError) as err:
        await conn.vpc.list_vpc()
    text = str(err.value)
    assert "refused or unreachable" in text and session.connection in text
    assert "admin" not in text.replace(session.connection, ""), "never the credential"


async def test_lists_follow_pages_past_novas_thousand(twin, conn):
    """Nova answers at most 1,000 servers a page: Spider's VM list sees all 1,234 and the status list
    too (the same helper serves every list, e.g. the one a VPC delete reads to see which servers exist)."""
    session = conn.extra["session"]
    await conn.vpc.list_vpc()
    cloud = twin.twin.clouds["cloud-1"]
    region = cloud.regions["RegionOne"]
    project = await session.project_id()
    image = next(i.id for i in region.glance.builtin.values() if i.name == "cirros-0.6.2")
    for i in range(1234):
        region.nova.create_servers(project, "u", name=f"vm-{i:04d}", image_ref=image, flavor_ref="1",
                                   networks="none")
    listed = await conn.vm.list_iid()
    assert len(listed) == 1234 and len({i.system_id for i in listed}) == 1234
    statuses = await conn.vm.list_vm_status()
    assert len(statuses) == 1234
    pages = [r for r in call_log.query(connection=session.connection) if "servers/detail" in r["CloudOSAPI"]]
    assert len(pages) >= 4, "two lists of two pages each"


async def test_concurrent_vm_gets_share_list_calls_and_keep_their_own_answers(twin, conn):
    """Spider's VM list gets every VM at once: 40 concurrent gets cost a handful of list calls instead
    of three GETs each, every caller gets its own server (ports and floating IP included), and a
    server that is gone is that caller's not-found only."""
    from cloudtwin.services.nova.models import NetRequest
    from spider_core.errors import is_not_found

    session = conn.extra["session"]
    vpc = await conn.vpc.create_vpc(VPCReqInfo(IID("v"), "10.0.0.0/16", [SubnetInfo(IID("s"), "", "10.0.1.0/24")]))
    region = twin.twin.clouds["cloud-1"].regions["RegionOne"]
    project = await session.project_id()
    image = next(i.id for i in region.glance.builtin.values() if i.name == "cirros-0.6.2")
    made = [region.nova.create_servers(project, "u", name=f"vm-{i}", image_ref=image, flavor_ref="1",
                                       networks=[NetRequest(network_id=vpc.iid.system_id)])[0]
            for i in range(40)]
    port = region.neutron.ports_of_device(made[7].id)[0]
    fip = region.neutron.allocate_floatingip(project, port.id)
    region.nova.delete_server(made[13])
    twin.twin.scheduler.run_due(time.monotonic() + 100)
    since = (call_log.query(limit=1) or [{"seq": 0}])[-1]["seq"]
    got = await asyncio.gather(*(conn.vm.get_vm(IID(s.name, s.id)) for s in made), return_exceptions=True)
    calls = call_log.query(connection=session.connection, since_seq=since)
    assert len(calls) <= 8, [c["CloudOSAPI"] for c in calls]  # 5 here; 3 GETs a VM before
    for s, info in zip(made, got):
        if s is made[13]:
            assert isinstance(info, Exception) and is_not_found(info)
            continue
        assert not isinstance(info, Exception), info
        assert info.iid.system_id == s.id
        assert info.private_ip == region.neutron.ports_of_device(s.id)[0].fixed_ips[0]["ip_address"]
    assert got[7].public_ip == fip.floating_ip_address and got[8].public_ip == ""