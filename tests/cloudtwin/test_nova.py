"""Nova v2.1 on Cloud-Twin: unmodified openstacksdk flows, raw HTTP wire checks (microversions,
envelopes, codes), faults that hit servers, and a model-level scale check of the indexes."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_login, keystone_user

from cloudtwin.clouds import TwinConfig
from cloudtwin.twin import Twin

C = "/cloud-1/RegionOne/compute/v2.1"


# ---- helpers ---------------------------------------------------------------------------------------

async def login(s: aiohttp.ClientSession, url: str, project: str = "p1", cloud: str = "cloud-1"
                ) -> tuple[str, str, str]:
    token, doc = await keystone_login(s, url, project=project, cloud=cloud)
    return token, doc["project"]["id"], doc["user"]["id"]


class Api:
    """Raw HTTP against one project of a twin."""

    def __init__(self, s: aiohttp.ClientSession, srv: Any, token: str, project_id: str, user_id: str,
                 cloud: str = "cloud-1") -> None:
        self.s, self.srv, self.token, self.project_id, self.user_id = s, srv, token, project_id, user_id
        self.region = srv.twin.clouds[cloud].regions["RegionOne"]

    async def call(self, method: str, path: str, body: Any = None, *, mv: str | None = "2.95",
                   headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        h = {"X-Auth-Token": self.token}
        if mv is not None:
            h["OpenStack-API-Version"] = f"compute {mv}"
        h.update(headers or {})
        url = self.srv.url + (path if "/compute" in path or "/image" in path else C + path)
        async with self.s.request(method, url, json=body, headers=h) as r:
            text = await r.text()
            data = None
            if text and r.content_type == "application/json":
                data = await r.json()
            return r.status, data if data is not None else text, r.headers

    def network(self, name: str = "net1", cidr: str = "10.0.0.0/24") -> Any:
        neutron = self.region.neutron
        net = neutron.add_network(self.project_id, name=name)
        neutron.add_subnet(self.project_id, net.id, cidr=cidr, ip_version=4)
        return net

    def image_id(self, name: str = "cirros-0.6.2") -> str:
        return next(i.id for i in self.region.glance.builtin.values() if i.name == name)

    async def server(self, name: str = "vm", net: Any = None, **extra: Any) -> str:
        body = {"server": {"name": name, "imageRef": self.image_id(), "flavorRef": "1", **extra}}
        if net is not None:
            body["server"]["networks"] = [{"uuid": net.id}]
        status, doc, _ = await self.call("POST", "/servers", body)
        assert status == 202, doc
        return doc["server"]["id"]

    async def wait(self, sid: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            code, doc, _ = await self.call("GET", f"/servers/{sid}")
            assert code == 200, doc
            if doc["server"]["status"] == status and doc["server"]["OS-EXT-STS:task_state"] is None:
                return doc["server"]
            assert time.monotonic() < end, f"{sid} stuck in {doc['server']['status']}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def api(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, pid, uid = await login(s, twin.url)
        yield Api(s, twin, token, pid, uid)


# ---- openstacksdk, unmodified -----------------------------------------------------------------------

def test_openstacksdk_cloud_layer_and_late_port_release():
    """``conn.create_server`` (cloud layer: names, wait, addresses, floating IPs) and Nova's real
    ordering: a security group stays in use until the deleted server is really gone (real-time
    stages here, so DELETING lasts long enough to be seen)."""
    import openstack.exceptions as exc
    from twin_helpers import ThreadedTwin, sdk_connect

    threaded_twin = ThreadedTwin(TwinConfig(time_scale=1.0)).start()
    try:
        _cloud_layer(threaded_twin, exc, sdk_connect)
    finally:
        threaded_twin.stop()


def _cloud_layer(threaded_twin: Any, exc: Any, sdk_connect: Any) -> None:
    conn = sdk_connect(threaded_twin.url)
    net = conn.network.create_network(name="n1")
    conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4)
    sg = conn.network.create_security_group(name="web")
    server = conn.create_server("cl-vm", image="cirros-0.6.2", flavor="m1.tiny", network="n1", wait=True,
                                timeout=20, auto_ip=False, security_groups=["web"])
    assert server.status == "ACTIVE" and server.private_v4 == "10.1.0.2"
    assert server.security_groups == [{"name": "web"}]
    fip = conn.network.create_ip(floating_network_id=conn.network.find_network("public").id)
    port = next(iter(conn.network.ports(device_id=server.id)))
    conn.network.update_ip(fip, port_id=port.id)
    got = conn.get_server(server.id)
    assert got.public_v4 == fip.floating_ip_address
    assert [a["OS-EXT-IPS:type"] for a in got.addresses["n1"]] == ["fixed", "floating"]
    conn.compute.delete_server(server.id)
    with pytest.raises(exc.ConflictException):
        conn.network.delete_security_group(sg)    # the server's port still holds it
    conn.compute.wait_for_delete(conn.compute.get_server(server.id), interval=0.1, wait=10)
    conn.network.delete_security_group(sg)
    assert conn.network.find_security_group("web") is None


def test_openstacksdk_server_lifecycle(threaded_twin):
    import openstack.exceptions as exc
    from twin_helpers import sdk_connect

    conn = sdk_connect(threaded_twin.url)
    net_id = conn.network.create_network(name="lab-net").id
    conn.network.create_subnet(network_id=net_id, cidr="192.168.10.0/24", ip_version=4)
    region = threaded_twin.twin.clouds["cloud-1"].regions["RegionOne"]

    flavors = {f.name: f for f in conn.compute.flavors()}          # is_public=None path
    assert {"m1.tiny", "m1.small", "m1.medium"} <= set(flavors)
    assert flavors["m1.small"].ram == 2048 and flavors["m1.small"].id == "2"
    images = {i.name: i for i in conn.image.images()}
    assert images["ubuntu-22.04"].os_distro == "ubuntu" and images["ubuntu-22.04"].status == "active"

    kp = conn.compute.create_keypair(name="lab-kp")
    assert kp.private_key.startswith("-----BEGIN") and kp.public_key.startswith("ssh-rsa ")
    assert len(kp.fingerprint.split(":")) == 16
    assert [k.name for k in conn.compute.keypairs()] == ["lab-kp"]
    with pytest.raises(exc.ConflictException):
        conn.compute.create_keypair(name="lab-kp")

    server = conn.compute.create_server(name="lab-vm", image_id=images["ubuntu-22.04"].id,
                                        flavor_id=flavors["m1.small"].id, networks=[{"uuid": net_id}],
                                        key_name="lab-kp", security_groups=[{"name": "default"}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.05, wait=10)
    got = conn.compute.get_server(server.id)
    assert got.status == "ACTIVE" and got.key_name == "lab-kp" and got.vm_state == "active"
    assert got.power_state == 1 and got.launched_at
    assert got.flavor.original_name == "m1.small" and got.flavor.ram == 2048   # 2.47+ embedded flavor
    (label, addrs), = got.addresses.items()
    assert label == "lab-net" and addrs[0]["addr"].startswith("192.168.10.")
    assert addrs[0]["OS-EXT-IPS:type"] == "fixed"
    assert got.security_groups == [{"name": "default"}]

    def cycle(action: Any, want: str) -> None:
        action()
        end = time.monotonic() + 10
        while True:   # (wait_for_server returns at once when the object it is given already has `want`)
            s = conn.compute.get_server(got.id)
            if s.status == want and s.task_state is None:
                return
            assert time.monotonic() < end, f"stuck in {s.status}/{s.task_state}"
            time.sleep(0.03)

    cycle(lambda: conn.compute.stop_server(got), "SHUTOFF")
    with pytest.raises(exc.ConflictException) as err:
        conn.compute.stop_server(got)
    assert "vm_state stopped" in str(err.value)
    cycle(lambda: conn.compute.start_server(got), "ACTIVE")
    cycle(lambda: conn.compute.suspend_server(got), "SUSPENDED")
    cycle(lambda: conn.compute.resume_server(got), "ACTIVE")
    cycle(lambda: conn.compute.pause_server(got), "PAUSED")
    cycle(lambda: conn.compute.unpause_server(got), "ACTIVE")
    cycle(lambda: conn.compute.reboot_server(got, "HARD"), "ACTIVE")
    cycle(lambda: conn.compute.reboot_server(got, "SOFT"), "ACTIVE")
    with pytest.raises(exc.ConflictException):
        conn.compute.resume_server(got)

    assert [s.id for s in conn.compute.servers()] == [got.id]
    conn.compute.delete_server(got)
    conn.compute.wait_for_delete(got, interval=0.05, wait=10)
    with pytest.raises(exc.NotFoundException):
        conn.compute.get_server(got.id)
    assert threaded_twin.call(lambda: region.neutron.ports_of_device(got.id)) == []

    bad = dict(name="bad", image_id=images["ubuntu-22.04"].id, flavor_id="2", networks=[{"uuid": net_id}])
    for change, text in ((dict(image_id="nope"), "Image nope could not be found."),
                         (dict(flavor_id="999"), "Flavor 999 could not be found."),
                         (dict(networks=[{"uuid": "no-net"}]), "Network no-net could not be found."),
                         (dict(key_name="no-key"), "Invalid key_name provided."),
                         (dict(security_groups=[{"name": "no-sg"}]), "no-sg")):
        with pytest.raises(exc.BadRequestException) as err:
            conn.compute.create_server(**{**bad, **change})
        assert text in str(err.value)
    conn.compute.delete_keypair("lab-kp")
    assert list(conn.compute.keypairs()) == []


# ---- raw HTTP: versions and microversions -----------------------------------------------------------

async def test_version_documents_and_microversion_negotiation(api):
    code, doc, h = await api.call("GET", "/cloud-1/RegionOne/compute/v2.1", mv=None,
                                  headers={"X-Auth-Token": ""})
    assert code == 200 and doc["version"]["version"] == "2.95" and doc["version"]["min_version"] == "2.1"
    code, doc, _ = await api.call("GET", "/cloud-1/RegionOne/compute/", mv=None)
    assert code == 200 and [v["id"] for v in doc["versions"]] == ["v2.0", "v2.1"]

    code, _, h = await api.call("GET", "/servers", mv="2.47")
    assert code == 200 and h["OpenStack-API-Version"] == "compute 2.47"
    assert h["X-OpenStack-Nova-API-Version"] == "2.47" and "OpenStack-API-Version" in h["Vary"]
    code, _, h = await api.call("GET", "/servers", mv=None)
    assert h["X-OpenStack-Nova-API-Version"] == "2.1"
    code, _, h = await api.call("GET", "/servers", mv="latest")
    assert h["X-OpenStack-Nova-API-Version"] == "2.95"
    code, doc, h = await api.call("GET", "/servers", mv="2.200")
    assert code == 406 and doc == {"computeFault": {"code": 406, "message":
                                   "Version 2.200 is not supported by the API. Minimum is 2.1 and maximum is 2.95."}}


async def test_shapes_follow_the_microversion(api):
    net = api.network()
    sid = await api.server("shape", net, description="d1")
    await api.wait(sid, "ACTIVE")
    _, old, _ = await api.call("GET", f"/servers/{sid}", mv="2.1")
    old = old["server"]
    assert set(old["flavor"]) == {"id", "links"} and old["flavor"]["id"] == "1"
    for key in ("locked", "description", "tags"):
        assert key not in old
    _, new, _ = await api.call("GET", f"/servers/{sid}", mv="2.95")
    new = new["server"]
    assert new["flavor"]["original_name"] == "m1.tiny" and new["flavor"]["swap"] == 0
    assert new["locked"] is False and new["description"] == "d1" and new["tags"] == []
    assert new["OS-EXT-SRV-ATTR:launch_index"] == 0
    _, f, _ = await api.call("GET", "/flavors/1", mv="2.1")
    assert f["flavor"]["swap"] == "" and "extra_specs" not in f["flavor"] and "description" not in f["flavor"]
    _, f, _ = await api.call("GET", "/flavors/1", mv="2.75")
    assert f["flavor"]["swap"] == 0 and f["flavor"]["extra_specs"] == {} and f["flavor"]["description"] is None


# ---- raw HTTP: servers ------------------------------------------------------------------------------

async def test_create_is_202_with_location_and_lists_page(api):
    net = api.network()
    code, doc, h = await api.call("POST", "/servers", {"server": {
        "name": "web", "imageRef": f"http://x/images/{api.image_id()}", "flavorRef": "http://x/flavors/2",
        "networks": [{"uuid": net.id}], "metadata": {"role": "web"},
        "user_data": base64.b64encode(b"#!/bin/sh\necho hi").decode()}})
    assert code == 202
    server = doc["server"]
    assert h["Location"].endswith(f"{C}/servers/{server['id']}")
    assert server["adminPass"] and server["OS-DCF:diskConfig"] == "MANUAL"
    assert server["security_groups"] == [{"name": "default"}]
    code, doc, _ = await api.call("GET", f"/servers/{server['id']}")
    assert doc["server"]["status"] == "BUILD" and doc["server"]["OS-EXT-STS:task_state"] == "spawning"
    assert doc["server"]["metadata"] == {"role": "web"} and "fault" not in doc["server"]

    ids = [server["id"]] + [await api.server(f"app-{i}", net) for i in range(4)]
    code, doc, _ = await api.call("GET", "/servers")
    assert [s["id"] for s in doc["servers"]] == ids[::-1], "newest first"
    assert set(doc["servers"][0]) == {"id", "name", "links"}
    code, doc, _ = await api.call("GET", "/servers/detail?limit=2")
    assert [s["id"] for s in doc["servers"]] == ids[::-1][:2]
    nxt = doc["servers_links"][0]["href"]
    assert "marker=" + ids[3] in nxt
    code, doc, _ = await api.call("GET", nxt[nxt.index(C):])
    assert [s["id"] for s in doc["servers"]] == ids[::-1][2:4]
    code, doc, _ = await api.call("GET", "/servers/detail?name=^app-[12]$")
    assert sorted(s["name"] for s in doc["servers"]) == ["app-1", "app-2"]
    code, doc, _ = await api.call("GET", "/servers/detail?status=build")
    assert len(doc["servers"]) == 5
    code, doc, _ = await api.call("GET", "/servers?marker=nope")
    assert code == 400 and "marker" in doc["badRequest"]["message"]

    code, doc, _ = await api.call("PUT", f"/servers/{ids[1]}", {"server": {"name": "renamed",
                                                                            "description": "x"}})
    assert code == 200 and doc["server"]["name"] == "renamed" and doc["server"]["description"] == "x"


async def test_errors_use_novas_envelopes(api):
    net = api.network()
    code, doc, h = await api.call("GET", "/servers/0000")
    assert code == 404 and doc == {"itemNotFound": {"code": 404, "message": "Instance 0000 could not be found."}}
    assert h["Content-Type"].startswith("application/json") and h["X-Compute-Request-Id"].startswith("req-")
    base = {"name": "x", "imageRef": api.image_id(), "flavorRef": "1", "networks": [{"uuid": net.id}]}
    cases = [
        ({"imageRef": "nope"}, "Image nope could not be found."),
        ({"flavorRef": "nope"}, "Flavor nope could not be found."),
        ({"networks": [{"uuid": "nope"}]}, "Network nope could not be found."),
        ({"networks": [{"port": "nope"}]}, "Port id nope could not be found."),
        ({"key_name": "nope"}, "Invalid key_name provided."),
        ({"availability_zone": "mars"}, "The requested availability zone is not available"),
        ({"security_groups": [{"name": "nope"}]}, "Security group nope not found"),
        ({"user_data": "***not base64***"}, "User data needs to be valid base 64."),
        ({"name": ""}, "Invalid input for field/attribute name"),
        ({"min_count": 3, "max_count": 2}, "min_count must be <= max_count"),
        ({"networks": "auto"}, None),   # valid at 2.37+ (one network: it is used)
    ]
    for change, text in cases:
        code, doc, _ = await api.call("POST", "/servers", {"server": {**base, **change}})
        if text is None:
            assert code == 202, doc
            continue
        assert code == 400, (change, doc)
        assert text in doc["badRequest"]["message"], (change, doc)
    code, doc, _ = await api.call("POST", "/servers", {"server": {**base, "networks": "none"}}, mv="2.36")
    assert code == 400
    code, doc, _ = await api.call("POST", "/servers", {"server": {**base, "imageRef": api.image_id("windows-2022")}})
    assert code == 400 and "disk is too small" in doc["badRequest"]["message"]
    code, doc, _ = await api.call("POST", "/servers/detail", {"server": base})
    assert code == 405 and "badMethod" in doc


async def test_network_choice_when_networks_are_omitted(api):
    body = {"server": {"name": "auto", "imageRef": api.image_id(), "flavorRef": "1"}}
    code, doc, _ = await api.call("POST", "/servers", body)
    assert code == 202, "no project network: booted without a NIC"
    net = api.network("only")
    code, doc, _ = await api.call("POST", "/servers", body)
    sid = doc["server"]["id"]
    assert [p.network_id for p in api.region.neutron.ports_of_device(sid)] == [net.id]
    api.network("second", "10.0.1.0/24")
    code, doc, _ = await api.call("POST", "/servers", body)
    assert code == 409
    assert doc["conflictingRequest"]["message"] == ("Multiple possible networks found, use a Network ID to be "
                                                     "more specific.")
    code, doc, _ = await api.call("POST", "/servers", {"server": {**body["server"], "networks": "none"}})
    assert code == 202 and api.region.neutron.ports_of_device(doc["server"]["id"]) == []


async def test_ports_given_fixed_ips_and_release_at_deleted(api):
    neutron = api.region.neutron
    net = api.network()
    port = neutron.create_port(api.project_id, net.id)
    code, doc, _ = await api.call("POST", "/servers", {"server": {
        "name": "p", "imageRef": api.image_id(), "flavorRef": "1", "networks": [{"port": port.id}]}})
    assert code == 202
    sid = doc["server"]["id"]
    assert port.device_id == sid
    code, doc, _ = await api.call("POST", "/servers", {"server": {
        "name": "p2", "imageRef": api.image_id(), "flavorRef": "1", "networks": [{"port": port.id}]}})
    assert code == 409 and "in use" in doc["conflictingRequest"]["message"]
    code, doc, _ = await api.call("POST", "/servers", {"server": {
        "name": "f", "imageRef": api.image_id(), "flavorRef": "1",
        "networks": [{"uuid": net.id, "fixed_ip": "10.0.0.77"}]}})
    assert code == 202
    fid = doc["server"]["id"]
    s = await api.wait(fid, "ACTIVE")
    assert s["addresses"]["net1"][0]["addr"] == "10.0.0.77"
    assert [p.status for p in neutron.ports_of_device(fid)] == ["ACTIVE"]
    code, doc, _ = await api.call("GET", f"/servers/{fid}/os-interface")
    assert doc["interfaceAttachments"][0]["fixed_ips"][0]["ip_address"] == "10.0.0.77"
    created_port = doc["interfaceAttachments"][0]["port_id"]

    code, _, _ = await api.call("DELETE", f"/servers/{fid}")
    assert code == 204
    code, doc, _ = await api.call("GET", f"/servers/{fid}")
    assert code == 200 and doc["server"]["OS-EXT-STS:task_state"] == "deleting"
    assert created_port in neutron.ports, "ports stay until the server is really gone"
    code, _, _ = await api.call("DELETE", f"/servers/{fid}")
    assert code == 204, "deleting twice is fine while it is being deleted"
    for _ in range(100):
        code, _, _ = await api.call("GET", f"/servers/{fid}")
        if code == 404:
            break
        await asyncio.sleep(0.02)
    assert code == 404 and created_port not in neutron.ports
    await api.call("DELETE", f"/servers/{sid}")
    for _ in range(100):
        if sid not in api.region.nova.servers:
            break
        await asyncio.sleep(0.02)
    assert port.id in neutron.ports and port.device_id == "", "a given port is unbound, not deleted"


async def test_actions_conflicts_and_locks(api):
    sid = await api.server("a", api.network())
    code, doc, _ = await api.call("POST", f"/servers/{sid}/action", {"os-stop": None})
    assert code == 409
    assert doc["conflictingRequest"]["message"] == (f"Cannot 'stop' instance {sid} while it is in task_state "
                                                     "spawning")
    await api.wait(sid, "ACTIVE")
    code, doc, _ = await api.call("POST", f"/servers/{sid}/action", {"resume": None})
    assert code == 409 and doc["conflictingRequest"]["message"].endswith("while it is in vm_state active")
    code, doc, h = await api.call("POST", f"/servers/{sid}/action", {"reboot": {"type": "HARD"}})
    assert code == 202 and doc == ""
    _, doc, _ = await api.call("GET", f"/servers/{sid}")
    assert doc["server"]["status"] == "HARD_REBOOT"
    await api.wait(sid, "ACTIVE")
    code, doc, _ = await api.call("POST", f"/servers/{sid}/action", {"reboot": {"type": "GENTLE"}})
    assert code == 400
    code, doc, _ = await api.call("POST", f"/servers/{sid}/action", {"levitate": None})
    assert code == 400
    await api.call("POST", f"/servers/{sid}/action", {"lock": None})
    code, doc, _ = await api.call("DELETE", f"/servers/{sid}")
    assert code == 409 and "locked" in doc["conflictingRequest"]["message"]
    await api.call("POST", f"/servers/{sid}/action", {"unlock": None})
    assert (await api.call("DELETE", f"/servers/{sid}"))[0] == 204


async def test_other_projects_do_not_see_servers(api, twin):
    sid = await api.server("mine", api.network())
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, twin.url, project="p2")
        other = Api(s, twin, token, doc["project"]["id"], doc["user"]["id"])
        assert (await other.call("GET", f"/servers/{sid}"))[0] == 404
        assert (await other.call("DELETE", f"/servers/{sid}"))[0] == 404
        assert (await other.call("GET", "/servers"))[1] == {"servers": []}


async def test_build_failure_and_crash_show_fault(api, twin):
    net = api.network()
    sid = await api.server("ok", net)
    await api.wait(sid, "ACTIVE")
    server = api.region.nova.servers[sid]
    api.region.nova.crash(server, "ERROR", "Host lost power")
    _, doc, _ = await api.call("GET", f"/servers/{sid}")
    s = doc["server"]
    assert s["status"] == "ERROR" and s["fault"]["message"] == "Host lost power" and s["fault"]["code"] == 500
    code, _, _ = await api.call("POST", f"/servers/{sid}/action", {"os-stop": None})
    assert code == 202, "os-stop is allowed from ERROR"
    s = await api.wait(sid, "SHUTOFF")
    assert "fault" not in s

    api.region.nova.crash(server, "CRASHED", "")
    _, doc, _ = await api.call("GET", f"/servers/{sid}")
    assert doc["server"]["status"] == "SHUTOFF" and doc["server"]["OS-EXT-STS:power_state"] == 6

    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/_twin/faults", json={
                "kind": "fail_transition", "resource": "server", "state": "BUILD",
                "message": "No valid host was found."}) as r:
            assert r.status == 201, await r.text()
    bad = await api.server("doomed", net)
    s = await api.wait(bad, "ERROR")
    assert s["fault"]["message"] == "No valid host was found." and s["OS-EXT-STS:vm_state"] == "error"


async def test_zone_outage_hits_server_calls_in_that_zone(api, twin):
    sid = await api.server("z", api.network())
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/_twin/faults", json={"kind": "outage", "match": {"zone": "nova"}}) as r:
            assert r.status == 201, await r.text()
    code, doc, h = await api.call("GET", f"/servers/{sid}")
    assert code == 503 and "serviceUnavailable" in doc
    code, doc, _ = await api.call("POST", "/servers", {"server": {"name": "n", "imageRef": api.image_id(),
                                                                 "flavorRef": "1", "networks": "none"}})
    assert code == 503
    assert len(api.region.nova.servers) == 1, "nothing was created in the failed zone"
    code, doc, _ = await api.call("GET", "/os-availability-zone")
    assert doc["availabilityZoneInfo"] == [{"zoneName": "nova", "zoneState": {"available": False}, "hosts": None}]
    code, doc, _ = await api.call("GET", "/servers")
    assert code == 200, "lists are not zone-scoped"


# ---- raw HTTP: flavors, keypairs, limits, quotas ----------------------------------------------------

async def test_flavor_filters(api):
    for q in ("", "?is_public=None", "?is_public=none", "?is_public=true"):
        code, doc, _ = await api.call("GET", "/flavors/detail" + q, mv="2.61")
        assert code == 200 and [f["id"] for f in doc["flavors"]] == ["1", "2", "3", "4", "5"], q
    code, doc, _ = await api.call("GET", "/flavors/detail?is_public=false")
    assert doc["flavors"] == []
    code, doc, _ = await api.call("GET", "/flavors/detail?is_public=maybe")
    assert code == 400
    code, doc, _ = await api.call("GET", "/flavors?minRam=4096")
    assert [f["name"] for f in doc["flavors"]] == ["m1.medium", "m1.large", "m1.xlarge"]
    code, doc, _ = await api.call("GET", "/flavors/3/os-extra_specs")
    assert code == 200 and doc == {"extra_specs": {}}
    code, doc, _ = await api.call("GET", "/flavors/42")
    assert code == 404 and doc["itemNotFound"]["message"] == "Flavor 42 could not be found."


async def test_keypairs_by_microversion(api):
    code, doc, _ = await api.call("POST", "/os-keypairs", {"keypair": {"name": "k21"}}, mv="2.1")
    assert code == 200 and "type" not in doc["keypair"] and "BEGIN RSA PRIVATE KEY" in doc["keypair"]["private_key"]
    code, doc, _ = await api.call("DELETE", "/os-keypairs/k21", mv="2.1")
    assert code == 202
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives import serialization
    pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    code, doc, _ = await api.call("POST", "/os-keypairs", {"keypair": {"name": "imp", "public_key": pub}}, mv="2.10")
    assert code == 201 and doc["keypair"]["type"] == "ssh" and "private_key" not in doc["keypair"]
    blob = base64.b64decode(pub.split()[1])
    import hashlib
    md5 = hashlib.md5(blob).hexdigest()
    assert doc["keypair"]["fingerprint"] == ":".join(md5[i:i + 2] for i in range(0, 32, 2))
    code, doc, _ = await api.call("POST", "/os-keypairs", {"keypair": {"name": "bad", "public_key": "ssh-rsa xx"}})
    assert code == 400 and doc["badRequest"]["message"].startswith("Keypair data is invalid")
    code, doc, _ = await api.call("POST", "/os-keypairs", {"keypair": {"name": "gen"}}, mv="2.92")
    assert code == 400 and "public_key" in doc["badRequest"]["message"]
    code, doc, _ = await api.call("POST", "/os-keypairs", {"keypair": {"name": "imp", "public_key": pub}})
    assert code == 409 and doc == {"conflictingRequest": {"code": 409, "message": "Key pair 'imp' already exists."}}
    code, doc, _ = await api.call("GET", "/os-keypairs", mv="2.10")
    assert doc == {"keypairs": [{"keypair": {"name": "imp", "public_key": pub, "type": "ssh",
                                             "fingerprint": doc["keypairs"][0]["keypair"]["fingerprint"]}}]}
    code, doc, _ = await api.call("GET", "/os-keypairs/imp", mv="2.10")
    assert code == 200 and doc["keypair"]["user_id"] == api.user_id and doc["keypair"]["deleted"] is False
    code, doc, _ = await api.call("GET", "/os-keypairs/nope")
    assert code == 404 and doc["itemNotFound"]["message"] == f"Keypair nope not found for user {api.user_id}"
    code, _, _ = await api.call("DELETE", "/os-keypairs/imp", mv="2.10")
    assert code == 204


async def test_quotas_limits_and_zones(twin):
    srv = twin
    srv.twin.add_cloud("small", "legacy-nova")    # instances: 10, key_pairs: 20, max microversion 2.1
    async with aiohttp.ClientSession() as s:
        token, pid, uid = await login(s, srv.url, cloud="small")
        api = Api(s, srv, token, pid, uid, "small")
        base = "/small/RegionOne/compute/v2.1"
        img = api.image_id()
        code, doc, h = await api.call("POST", base + "/servers", {"server": {
            "name": "many", "imageRef": img, "flavorRef": "1", "min_count": 10, "max_count": 10}}, mv=None)
        assert code == 202 and h["X-OpenStack-Nova-API-Version"] == "2.1"
        code, doc, _ = await api.call("GET", base + "/servers", mv=None)
        assert sorted(x["name"] for x in doc["servers"]) == sorted(f"many-{i}" for i in range(1, 11))
        code, doc, _ = await api.call("POST", base + "/servers", {"server": {
            "name": "one-more", "imageRef": img, "flavorRef": "1"}}, mv=None)
        assert code == 403
        assert doc == {"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but "
                                                             "already used 10 of 10 instances"}}
        code, doc, _ = await api.call("GET", base + "/limits", mv=None)
        absolute = doc["limits"]["absolute"]
        assert absolute["maxTotalInstances"] == 10 and absolute["totalInstancesUsed"] == 10
        assert absolute["totalCoresUsed"] == 10 and absolute["totalRAMUsed"] == 5120
        code, doc, _ = await api.call("GET", base + f"/os-quota-sets/{pid}", mv=None)
        assert doc["quota_set"]["instances"] == 10 and doc["quota_set"]["key_pairs"] == 20
        code, doc, _ = await api.call("GET", base + "/os-availability-zone", mv="2.2")
        assert code == 406
    srv.twin.add_cloud("zoned", "lean-egress")       # zones zone-a, zone-b
    async with aiohttp.ClientSession() as s:
        token, pid, uid = await login(s, srv.url, cloud="zoned")
        api = Api(s, srv, token, pid, uid, "zoned")
        base = "/zoned/RegionOne/compute/v2.1"
        code, doc, _ = await api.call("GET", base + "/os-availability-zone/detail")
        assert [z["zoneName"] for z in doc["availabilityZoneInfo"]] == ["internal", "zone-a", "zone-b"]
        code, doc, _ = await api.call("POST", base + "/servers", {"server": {
            "name": "b", "imageRef": api.image_id(), "flavorRef": "1", "availability_zone": "zone-b",
            "networks": "none"}})
        assert code == 202
        sid = doc["server"]["id"]
        code, doc, _ = await api.call("GET", base + f"/servers/{sid}")
        assert doc["server"]["OS-EXT-AZ:availability_zone"] == "zone-b"
        assert [x.id for x in api.region.nova.servers_in("zone-b")] == [sid]


# ---- model level: scale and indexes -----------------------------------------------------------------

def test_two_thousand_servers_keep_the_indexes_right():
    twin = Twin(TwinConfig(time_scale=0.0))
    cloud = twin.cloud("scale", create=True)
    region = cloud.regions["RegionOne"]
    nova, neutron = region.nova, region.neutron
    p1 = cloud.project("p1", create=True).id
    p2 = cloud.project("p2", create=True).id
    net = neutron.add_network(p1, name="n")
    neutron.add_subnet(p1, net.id, cidr="10.0.0.0/20", ip_version=4)
    image = next(i.id for i in region.glance.builtin.values() if i.name == "cirros-0.6.2")
    chunk_times = []
    made = []
    for chunk in range(4):
        t0 = time.perf_counter()
        for i in range(500):
            (s,) = nova.create_servers(p1, "u", name=f"s{chunk}-{i}", image_ref=image, flavor_ref="2",
                                       networks=[_net(net.id)])
            made.append(s)
        chunk_times.append(time.perf_counter() - t0)
    nova.create_servers(p2, "u", name="other", image_ref=image, flavor_ref="1", networks="none")
    assert len(nova.servers) == 2001 and len(nova.servers_of(p1)) == 2000
    assert [s.id for s in nova.servers_of(p1)][:3] == [s.id for s in made[::-1][:3]]
    assert nova.usage(p1) == {"instances": 2000, "cores": 2000, "ram": 2000 * 2048, "key_pairs": 0}
    assert len(neutron.ports) == 2000
    assert len({p.fixed_ips[0]["ip_address"] for p in neutron.ports.values()}) == 2000
    twin.scheduler.run_due(time.monotonic() + 10)
    assert all(s.state == "ACTIVE" for s in nova.servers.values())
    for s in made[::2]:
        nova.delete_server(s)
    twin.scheduler.run_due(time.monotonic() + 10)
    assert len(nova.servers_of(p1)) == 1000 and len(neutron.ports) == 1000
    assert nova.usage(p1)["instances"] == 1000
    assert len(nova.servers_in("nova")) == 1001
    # the indexes rebuilt from the tables alone agree with the live ones
    before = ([s.id for s in nova.servers_of(p1)], nova.usage(p1))
    nova.rebuild()
    assert ([s.id for s in nova.servers_of(p1)], nova.usage(p1)) == before
    # creation cost does not grow with the number of servers (reported, not asserted)
    print("seconds per 500 creates:", [round(t, 3) for t in chunk_times])


def test_a_server_is_active_only_with_its_ports_active(tmp_path):
    """Nova says ACTIVE only after Neutron's network-vif-plugged: at the very moment a server turns
    ACTIVE every port it has (made for it or given to it) is ACTIVE, however slow port binding is."""
    from cloudtwin.services.nova.models import NetRequest

    (tmp_path / "slow-binding.yaml").write_text(
        "name: slow-binding\nextends: openstack\nstages:\n  port:\n    stages:\n"
        "      BINDING: {delay: 1000.0, jitter: 0.0}\n")
    twin = Twin(TwinConfig(time_scale=1.0, profile_dirs=[str(tmp_path)]))
    cloud = twin.add_cloud("plug", "slow-binding")
    region = cloud.regions["RegionOne"]
    nova, neutron = region.nova, region.neutron
    p1 = cloud.project("p1", create=True).id
    net = neutron.add_network(p1, name="n")
    neutron.add_subnet(p1, net.id, cidr="10.0.0.0/24", ip_version=4)
    given = neutron.create_port(p1, net.id)
    image = next(i.id for i in region.glance.builtin.values() if i.name == "cirros-0.6.2")
    (s,) = nova.create_servers(p1, "u", name="s", image_ref=image, flavor_ref="1",
                               networks=[NetRequest(network_id=net.id), NetRequest(port_id=given.id)])
    made = next(p for p in neutron.ports_of_device(s.id) if p.id != given.id)
    assert s.state == "BUILD" and made.status == "DOWN", "not plugged while the server builds"
    twin.scheduler.run_due(time.monotonic() + 10)
    assert s.state == "ACTIVE"
    assert sorted(p.status for p in neutron.ports_of_device(s.id)) == ["ACTIVE", "ACTIVE"]


def _net(network_id: str) -> Any:
    from cloudtwin.services.nova.models import NetRequest
    return NetRequest(network_id=network_id)


def test_snapshot_round_trip_keeps_servers_keypairs_and_indexes(tmp_path):
    from cloudtwin import snapshot
    from cloudtwin.services.nova.models import generate_keypair

    twin = Twin(TwinConfig(time_scale=0.0))
    cloud = twin.cloud("snap", create=True)
    region = cloud.regions["RegionOne"]
    p1 = cloud.project("p1", create=True).id
    net = region.neutron.add_network(p1, name="n")
    region.neutron.add_subnet(p1, net.id, cidr="10.0.0.0/24", ip_version=4)
    image = next(i.id for i in region.glance.builtin.values() if i.name == "cirros-0.6.2")
    _, pub = generate_keypair()
    region.nova.create_keypair("u", p1, "k", pub)
    (a,) = region.nova.create_servers(p1, "u", name="a", image_ref=image, flavor_ref="1", key_name="k",
                                      networks=[_net(net.id)], metadata={"m": "1"})
    twin.scheduler.run_due(time.monotonic() + 10)
    region.nova.crash(a, "ERROR", "boom")
    region.nova.create_servers(p1, "u", name="b", image_ref=image, flavor_ref="1", networks="none")
    snapshot.save(twin, tmp_path / "s.json")

    fresh = Twin(TwinConfig(time_scale=0.0))
    snapshot.load(fresh, tmp_path / "s.json")
    nova = fresh.clouds["snap"].regions["RegionOne"].nova
    assert [s.name for s in nova.servers_of(p1)] == ["b", "a"]
    got = nova.servers[a.id]
    assert (got.state, got.fault["message"], got.metadata, got.key_name) == ("ERROR", "boom", {"m": "1"}, "k")
    assert nova.usage(p1)["instances"] == 2 and nova.get_keypair("u", p1, "k").public_key == pub
    b = next(s for s in nova.servers.values() if s.name == "b")
    assert b.state == "BUILD" and b.due_state == "ACTIVE", "the pending BUILD resumes after restore"
    fresh.scheduler.run_due(time.monotonic() + 10)
    assert b.state == "ACTIVE" and b.launched_at is not None


async def test_server_tags_subresource_from_2_26(twin):
    """CB-Spider's driver reads and writes VM tags through /servers/{id}/tags."""
    import aiohttp

    from test_cinder import login, make_net, image_id

    async with aiohttp.ClientSession() as s:
        api = await login(s, twin.url)
        net = await make_net(api)
        code, body = await api.nova("POST", "/servers", {"server": {
            "name": "tagged", "flavorRef": "1", "imageRef": await image_id(api), "networks": [{"uuid": net}],
            "tags": ["env=dev"]}}, mv="2.52")
        assert code == 202, body
        sid = body["server"]["id"]
        assert (await api.nova("GET", f"/servers/{sid}/tags"))[0] == 404, "no tags API before 2.26"
        assert (await api.nova("GET", f"/servers/{sid}/tags", mv="2.26"))[1] == {"tags": ["env=dev"]}
        assert (await api.nova("PUT", f"/servers/{sid}/tags/owner=me", mv="2.26"))[0] == 201
        assert (await api.nova("PUT", f"/servers/{sid}/tags/owner=me", mv="2.26"))[0] == 204
        assert (await api.nova("GET", f"/servers/{sid}/tags/owner=me", mv="2.26"))[0] == 204
        code, body = await api.nova("GET", f"/servers/{sid}", mv="2.26")
        assert body["server"]["tags"] == ["env=dev", "owner=me"]
        assert (await api.nova("DELETE", f"/servers/{sid}/tags/env=dev", mv="2.26"))[0] == 204
        assert (await api.nova("DELETE", f"/servers/{sid}/tags/env=dev", mv="2.26"))[0] == 404
        code, body = await api.nova("PUT", f"/servers/{sid}/tags", {"tags": ["a", "b", "a"]}, mv="2.26")
        assert code == 200 and body == {"tags": ["a", "b"]}
        code, body = await api.nova("PUT", f"/servers/{sid}/tags", {"tags": [f"t{i}" for i in range(51)]}, mv="2.26")
        assert code == 400 and "per-server limit 50" in body["badRequest"]["message"]
        code, body = await api.nova("PUT", f"/servers/{sid}/tags", {"tags": ["x" * 61]}, mv="2.26")
        assert code == 400
        code, body = await api.nova("PUT", f"/servers/{sid}/tags", {"tags": "a"}, mv="2.26")
        assert code == 400
        assert (await api.nova("DELETE", f"/servers/{sid}/tags", mv="2.26"))[0] == 204
        assert (await api.nova("GET", f"/servers/{sid}/tags", mv="2.26"))[1] == {"tags": []}
