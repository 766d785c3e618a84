"""Nova server actions and operator APIs on Cloud-Twin, over raw HTTP: snapshots into Glance, resize
with confirm and revert (in the power state it began), rescue, shelve, migrations that change host,
server groups honoured by the scheduler, hypervisors, services, aggregates, quotas, flavors, metadata
and instance actions."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from test_nova import C, Api, login
from twin_helpers import keystone_user

G = "/cloud-1/RegionOne/image/v2"


@pytest.fixture
async def api(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, pid, uid = await login(s, twin.url, project="admin")
        yield Api(s, twin, token, pid, uid)


async def _active(api: Api, name: str = "vm", **extra: Any) -> str:
    sid = await api.server(name, **extra)
    await api.wait(sid, "ACTIVE")
    return sid


async def _act(api: Api, sid: str, body: Any, code: int = 202, mv: str = "2.95") -> Any:
    status, doc, headers = await api.call("POST", f"/servers/{sid}/action", body, mv=mv)
    assert status == code, doc
    return doc, headers


async def test_create_image_is_saved_into_glance_then_active(api):
    sid = await _active(api)
    doc, _ = await _act(api, sid, {"createImage": {"name": "snap", "metadata": {"k": "v"}}})
    image_id = doc["image_id"]
    _, server, _ = await api.call("GET", f"/servers/{sid}")
    assert server["server"]["OS-EXT-STS:task_state"] in ("image_snapshot", "image_uploading")
    code, err, _ = await api.call("POST", f"/servers/{sid}/action", {"createImage": {"name": "again"}})
    assert code == 409 and "task_state" in err["conflictingRequest"]["message"]
    await api.wait(sid, "ACTIVE")
    code, img, _ = await api.call("GET", f"{G}/images/{image_id}")
    assert code == 200 and img["status"] == "active" and img["visibility"] == "private"
    assert img["image_type"] == "snapshot" and img["instance_uuid"] == sid and img["k"] == "v"
    # before 2.45 the image is named by Location
    _, headers = await _act(api, sid, {"createImage": {"name": "old"}}, mv="2.44")
    assert "/images/" in headers["Location"]


async def test_resize_confirm_revert_and_from_stopped(api):
    sid = await _active(api)
    await _act(api, sid, {"resize": {"flavorRef": "2"}})
    s = await api.wait(sid, "VERIFY_RESIZE")
    assert s["flavor"]["original_name"] == "m1.small"
    await _act(api, sid, {"confirmResize": None}, code=204)
    s = await api.wait(sid, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.small"
    code, err, _ = await api.call("POST", f"/servers/{sid}/action", {"resize": {"flavorRef": "2"}})
    assert code == 400, err
    await _act(api, sid, {"resize": {"flavorRef": "3"}})
    await api.wait(sid, "VERIFY_RESIZE")
    await _act(api, sid, {"revertResize": None})
    s = await api.wait(sid, "ACTIVE")
    assert s["flavor"]["original_name"] == "m1.small"
    await _act(api, sid, {"os-stop": None})
    await api.wait(sid, "SHUTOFF")
    await _act(api, sid, {"resize": {"flavorRef": "3"}})
    await api.wait(sid, "VERIFY_RESIZE")
    await _act(api, sid, {"confirmResize": None}, code=204)
    await api.wait(sid, "SHUTOFF")
    _, doc, _ = await api.call("GET", "/os-migrations")
    kinds = [(m["migration_type"], m["status"]) for m in doc["migrations"]]
    assert kinds.count(("resize", "confirmed")) == 2 and ("resize", "reverted") in kinds


async def test_rescue_rebuild_shelve_and_lock(api):
    sid = await _active(api, flavorRef="2")
    doc, _ = await _act(api, sid, {"rescue": {}}, code=200)
    assert doc["adminPass"]
    await api.wait(sid, "RESCUE")
    await _act(api, sid, {"unrescue": None})
    await api.wait(sid, "ACTIVE")
    doc, _ = await _act(api, sid, {"rebuild": {"imageRef": api.image_id("ubuntu-22.04"), "name": "rebuilt"}})
    assert doc["server"]["name"] == "rebuilt" and doc["server"]["adminPass"]
    s = await api.wait(sid, "ACTIVE")
    assert s["image"]["id"] == api.image_id("ubuntu-22.04")
    await _act(api, sid, {"shelve": None})
    s = await api.wait(sid, "SHELVED_OFFLOADED")
    assert s["OS-EXT-SRV-ATTR:host"] is None
    _, imgs, _ = await api.call("GET", f"{G}/images?name=rebuilt-shelved")
    assert len(imgs["images"]) == 1
    await _act(api, sid, {"unshelve": None})
    s = await api.wait(sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"]
    _, imgs, _ = await api.call("GET", f"{G}/images?name=rebuilt-shelved")
    assert imgs["images"] == []
    await _act(api, sid, {"lock": {"locked_reason": "maintenance"}})
    _, doc, _ = await api.call("GET", f"/servers/{sid}")
    assert doc["server"]["locked"] and doc["server"]["locked_reason"] == "maintenance"
    _, doc, _ = await api.call("GET", f"/servers/{sid}/os-instance-actions")
    names = [a["action"] for a in doc["instanceActions"]]
    assert names[0] == "lock" and names[-1] == "create" and "shelve" in names and "rescue" in names


async def test_migrations_change_host_and_groups_place_servers(api):
    code, doc, _ = await api.call("POST", "/os-server-groups", {"server_group": {"name": "g",
                                                                                 "policy": "anti-affinity"}})
    assert code == 200 and doc["server_group"]["rules"] == {}
    gid = doc["server_group"]["id"]
    a = await api.server("a", **{})
    status, doc, _ = await api.call("POST", "/servers", {
        "server": {"name": "b", "imageRef": api.image_id(), "flavorRef": "1"},
        "os:scheduler_hints": {"group": gid}})
    b = doc["server"]["id"]
    status, doc, _ = await api.call("POST", "/servers", {
        "server": {"name": "c", "imageRef": api.image_id(), "flavorRef": "1"},
        "os:scheduler_hints": {"group": gid}})
    c = doc["server"]["id"]
    sb, sc = await api.wait(b, "ACTIVE"), await api.wait(c, "ACTIVE")
    assert sb["OS-EXT-SRV-ATTR:host"] != sc["OS-EXT-SRV-ATTR:host"]
    status, doc, _ = await api.call("POST", "/servers", {
        "server": {"name": "d", "imageRef": api.image_id(), "flavorRef": "1"},
        "os:scheduler_hints": {"group": gid}})
    sd = await api.wait(doc["server"]["id"], "ERROR")
    assert "No valid host" in sd["fault"]["message"]
    sa = await api.wait(a, "ACTIVE")
    await _act(api, a, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
    moved = await api.wait(a, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] != sa["OS-EXT-SRV-ATTR:host"]
    await _act(api, a, {"migrate": None})
    await api.wait(a, "VERIFY_RESIZE")
    await _act(api, a, {"confirmResize": None}, code=204)
    back = await api.wait(a, "ACTIVE")
    assert back["OS-EXT-SRV-ATTR:host"] == sa["OS-EXT-SRV-ATTR:host"]


async def test_hypervisors_services_aggregates_and_zones(api):
    _, doc, _ = await api.call("GET", "/os-hypervisors/detail", mv="2.52")
    assert [h["hypervisor_hostname"] for h in doc["hypervisors"]] == ["nova-compute-1", "nova-compute-2"]
    assert doc["hypervisors"][0]["vcpus"] == 64 and isinstance(doc["hypervisors"][0]["cpu_info"], dict)
    _, doc, _ = await api.call("GET", "/os-hypervisors/statistics", mv="2.1")
    assert doc["hypervisor_statistics"]["count"] == 2
    _, doc, _ = await api.call("GET", "/os-services?binary=nova-compute")
    svc = doc["services"][0]
    code, doc, _ = await api.call("PUT", f"/os-services/{svc['id']}", {"status": "disabled",
                                                                        "disabled_reason": "test"})
    assert code == 200 and doc["service"]["status"] == "disabled"
    sid = await _active(api)
    _, doc, _ = await api.call("GET", f"/servers/{sid}")
    assert doc["server"]["OS-EXT-SRV-ATTR:host"] == "nova-compute-2", "the disabled host gets nothing"
    code, doc, _ = await api.call("POST", "/os-aggregates", {"aggregate": {"name": "ag", "availability_zone": "z2"}})
    assert code == 200 and "hosts" not in doc["aggregate"]
    agg = doc["aggregate"]["id"]
    code, doc, _ = await api.call("POST", f"/os-aggregates/{agg}/action", {"add_host": {"host": "nova-compute-1"}})
    assert code == 200 and doc["aggregate"]["hosts"] == ["nova-compute-1"]
    _, doc, _ = await api.call("GET", "/os-availability-zone")
    assert {z["zoneName"] for z in doc["availabilityZoneInfo"]} == {"nova", "z2"}
    code, doc, _ = await api.call("DELETE", f"/os-aggregates/{agg}")
    assert code == 400


async def test_quotas_flavors_metadata(api):
    code, doc, _ = await api.call("PUT", f"/os-quota-sets/{api.project_id}", {"quota_set": {"instances": 1}})
    assert code == 200 and doc["quota_set"]["instances"] == 1
    await api.server("one")
    code, doc, _ = await api.call("POST", "/servers", {"server": {"name": "two", "imageRef": api.image_id(),
                                                                  "flavorRef": "1"}})
    assert code == 403 and "Quota exceeded for instances" in doc["forbidden"]["message"]
    code, doc, _ = await api.call("GET", f"/os-quota-sets/{api.project_id}/detail")
    assert doc["quota_set"]["instances"] == {"limit": 1, "in_use": 1, "reserved": 0}
    code, doc, _ = await api.call("POST", "/flavors", {"flavor": {"name": "priv", "ram": 64, "vcpus": 1, "disk": 0,
                                                                  "os-flavor-access:is_public": False}})
    assert code == 200 and doc["flavor"]["os-flavor-access:is_public"] is False
    fid = doc["flavor"]["id"]
    code, doc, _ = await api.call("POST", f"/flavors/{fid}/action", {"addTenantAccess": {"tenant": "p9"}})
    assert doc == {"flavor_access": [{"flavor_id": fid, "tenant_id": "p9"}]}
    code, doc, _ = await api.call("POST", f"/flavors/{fid}/os-extra_specs", {"extra_specs": {"hw:cpu": "2"}})
    assert code == 200
    code, doc, _ = await api.call("PUT", f"/flavors/{fid}/os-extra_specs/hw:cpu", {"other": "1"})
    assert code == 400
    assert (await api.call("DELETE", f"/flavors/{fid}"))[0] == 202
    sid = (await api.call("GET", "/servers"))[1]["servers"][0]["id"]
    code, doc, _ = await api.call("PUT", f"/servers/{sid}/metadata", {"metadata": {"a": "1"}})
    assert doc == {"metadata": {"a": "1"}}
    code, doc, _ = await api.call("POST", f"/servers/{sid}/metadata", {"metadata": {"b": "2"}})
    assert doc == {"metadata": {"a": "1", "b": "2"}}
    code, doc, _ = await api.call("PUT", f"/servers/{sid}/metadata/a", {"meta": {"a": "3"}})
    assert doc == {"meta": {"a": "3"}}
    assert (await api.call("DELETE", f"/servers/{sid}/metadata/b"))[0] == 204
    assert (await api.call("GET", f"/servers/{sid}/metadata/b"))[0] == 404


async def test_member_cannot_use_admin_apis_nor_see_other_projects(api, twin):
    sid = await api.server("admins")
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, twin.url, project="p2")
        pid = doc["project"]["id"]
        member = Api(s, twin, token, pid, doc["user"]["id"])
        assert (await member.call("GET", "/os-hypervisors"))[0] == 403
        assert (await member.call("GET", f"/servers/{sid}"))[0] == 404
        mine = await member.server("mine")
    _, doc, _ = await api.call("GET", "/servers?all_tenants=1")
    assert {sid, mine} <= {s["id"] for s in doc["servers"]}
    _, doc, _ = await api.call("GET", f"/servers/{mine}")
    assert doc["server"]["tenant_id"] == pid


async def test_volume_proxies_extensions_and_audit_log(api):
    code, doc, _ = await api.call("POST", "/os-volumes", {"volume": {"size": 1, "display_name": "pv"}}, mv="2.35")
    assert code == 200 and doc["volume"]["displayName"] == "pv" and doc["volume"]["attachments"] == [{}]
    vid = doc["volume"]["id"]
    _, doc, _ = await api.call("GET", "/os-volumes", mv="2.35")
    assert [v["id"] for v in doc["volumes"]] == [vid]
    assert (await api.call("GET", "/os-volumes", mv="2.36"))[0] == 404
    _, doc, _ = await api.call("GET", "/extensions")
    assert "Hosts" in {e["name"] for e in doc["extensions"]}
    assert (await api.call("GET", "/extensions/os-consoles"))[1]["extension"]["alias"] == "os-consoles"
    _, doc, _ = await api.call("GET", "/os-instance_usage_audit_log")
    assert doc["instance_usage_audit_logs"]["num_hosts"] == 2
    assert (await api.call("GET", "/os-instance_usage_audit_log/nonsense"))[0] == 400


async def test_image_metadata_proxy_and_access_ip_normalized(api):
    sid = await _active(api)
    doc, _ = await _act(api, sid, {"createImage": {"name": "meta"}})
    image = doc["image_id"]
    await api.wait(sid, "ACTIVE")
    code, doc, _ = await api.call("POST", f"{C}/images/{image}/metadata", {"metadata": {"os": "linux"}}, mv="2.35")
    assert code == 200 and doc["metadata"]["os"] == "linux"
    code, doc, _ = await api.call("GET", f"{C}/images/{image}/metadata/os", mv="2.35")
    assert doc == {"meta": {"os": "linux"}}
    assert (await api.call("DELETE", f"{C}/images/{image}/metadata/os", mv="2.35"))[0] == 204
    code, doc, _ = await api.call("PUT", f"/servers/{sid}", {"server": {"accessIPv6": "0:0:0:0:0:babe:220.12.22.2"}})
    assert code == 200 and doc["server"]["accessIPv6"] == "::babe:dc0c:1602"


async def test_novnc_console_serves_the_page_and_an_rfb_session(api):
    import struct
    from urllib.parse import parse_qs, urlparse

    sid = await _active(api, "desk")
    status, doc, _ = await api.call("POST", f"/servers/{sid}/remote-consoles",
                                    {"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert status == 200 and doc["remote_console"]["type"] == "novnc"
    url = doc["remote_console"]["url"]
    async with api.s.get(url) as r:                         # no token header: the URL carries it
        page = await r.text()
        assert r.status == 200 and "noVNC" in page and "<script" in page and "desk" in page
    parts = urlparse(url)
    ws_url = f"ws://{parts.netloc}/{parse_qs(parts.query)['path'][0]}"
    async with api.s.ws_connect(ws_url, protocols=("binary",)) as ws:
        assert await ws.receive_bytes() == b"RFB 003.008\n"
        await ws.send_bytes(b"RFB 003.008\n")
        assert await ws.receive_bytes() == bytes((1, 1))     # one security type: None
        await ws.send_bytes(bytes((1,)))
        assert await ws.receive_bytes() == bytes(4)          # security result: OK
        await ws.send_bytes(bytes((1,)))                     # ClientInit, shared
        init = await ws.receive_bytes()
        assert struct.unpack(">HH", init[:4]) == (1024, 768) and init[24:] == b"desk"
        assert struct.unpack(">L", init[20:24])[0] == len(init) - 24
    async with api.s.get(f"http://{parts.netloc}/{parse_qs(parts.query)['path'][0]}".replace("token=", "token=bad"),
                         headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                  "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
                                  "Sec-WebSocket-Version": "13"}) as r:
        assert r.status == 403 and await r.read() == b"", "a bad token is refused before any byte"


async def test_same_host_and_different_host_hints_place_servers(api):
    first = await _active(api, "a")

    async def boot(name: str, hints: Any) -> dict[str, Any]:
        """A server booted with these scheduler hints, once ACTIVE."""
        status, doc, _ = await api.call("POST", "/servers", {
            "server": {"name": name, "imageRef": api.image_id(), "flavorRef": "1"}, "os:scheduler_hints": hints})
        assert status == 202, doc
        return await api.wait(doc["server"]["id"], "ACTIVE")

    host = (await api.wait(first, "ACTIVE"))["OS-EXT-SRV-ATTR:host"]
    apart = await boot("b", {"different_host": first})
    assert apart["OS-EXT-SRV-ATTR:host"] != host
    near = await boot("c", {"same_host": [first]})
    assert near["OS-EXT-SRV-ATTR:host"] == host
    assert len({host, apart["OS-EXT-SRV-ATTR:host"]}) == len(api.region.nova.hosts.hosts_in("nova")) == 2
    status, doc, _ = await api.call("POST", "/servers", {       # away from both hosts of the zone: none left
        "server": {"name": "d", "imageRef": api.image_id(), "flavorRef": "1"},
        "os:scheduler_hints": {"different_host": [first, apart["id"]]}})
    failed = await api.wait(doc["server"]["id"], "ERROR")
    assert "No valid host" in failed["fault"]["message"]
    status, doc, _ = await api.call("POST", "/servers", {
        "server": {"name": "e", "imageRef": api.image_id(), "flavorRef": "1"}, "os:scheduler_hints": {"same_host": 7}})
    assert status == 400
