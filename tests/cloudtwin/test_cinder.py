"""Cinder v3 on Cloud-Twin: volumes, their state machine, attachments through Nova and through Cinder's
attachments API, boot from volume, quotas, bad input, faults and snapshots; checked over raw HTTP and
with unmodified openstacksdk."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openstack.exceptions
import pytest

from cloudtwin import snapshot
from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from cloudtwin.twin import Twin
from twin_helpers import FAST, keystone_login, sdk_connect

CLOUD = "cloud-v"


class Api:
    """A logged-in raw client of one twin cloud: Cinder and Nova paths with their microversion headers."""

    def __init__(self, s: aiohttp.ClientSession, url: str, token: str, project_id: str, cloud: str = CLOUD) -> None:
        self.s, self.url, self.token, self.pid, self.cloud = s, url, token, project_id, cloud
        self.volume = f"{url}/{cloud}/RegionOne/volume/v3/{project_id}"
        self.compute = f"{url}/{cloud}/RegionOne/compute/v2.1"
        self.network = f"{url}/{cloud}/RegionOne/network/v2.0"

    async def call(self, method: str, url: str, body: Any = None, *, mv: str | None = None,
                   service: str = "volume") -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token}
        if mv:
            headers["OpenStack-API-Version"] = f"{service} {mv}"
        async with self.s.request(method, url, json=body, headers=headers) as r:
            text = await r.text()
            try:
                return r.status, (await r.json(content_type=None)) if text else None
            except ValueError:
                return r.status, text

    async def vol(self, method: str, path: str, body: Any = None, mv: str | None = None) -> tuple[int, Any]:
        return await self.call(method, self.volume + path, body, mv=mv)

    async def nova(self, method: str, path: str, body: Any = None, mv: str | None = None) -> tuple[int, Any]:
        return await self.call(method, self.compute + path, body, mv=mv, service="compute")

    async def wait_volume(self, vid: str, status: str, timeout: float = 10) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            code, body = await self.vol("GET", f"/volumes/{vid}")
            assert code == 200, body
            if body["volume"]["status"] == status:
                return body["volume"]
            assert time.monotonic() < end, f"volume {vid} stuck in {body['volume']['status']}, wanted {status}"
            await asyncio.sleep(0.01)

    async def wait_server(self, sid: str, status: str = "ACTIVE", timeout: float = 10) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            code, body = await self.nova("GET", f"/servers/{sid}", mv="2.79")
            if status == "GONE" and code == 404:
                return {}
            assert code == 200, body
            if body["server"]["status"] == status:
                return body["server"]
            assert time.monotonic() < end, f"server {sid} stuck in {body['server']['status']}"
            await asyncio.sleep(0.01)


async def login(s: aiohttp.ClientSession, url: str, cloud: str = CLOUD, project: str = "vols") -> Api:
    token, doc = await keystone_login(s, url, project=project, cloud=cloud)
    return Api(s, url, token, doc["project"]["id"], cloud)


@pytest.fixture
async def api(twin):
    async with aiohttp.ClientSession() as s:
        yield await login(s, twin.url)


async def make_net(api: Api) -> str:
    code, net = await api.call("POST", api.network + "/networks", {"network": {"name": "vnet"}})
    assert code == 201
    code, _ = await api.call("POST", api.network + "/subnets", {"subnet": {
        "network_id": net["network"]["id"], "cidr": "10.9.0.0/24", "ip_version": 4}})
    assert code == 201
    return net["network"]["id"]


async def image_id(api: Api, name: str = "cirros-0.6.2") -> str:
    code, body = await api.call("GET", f"{api.url}/{api.cloud}/RegionOne/image/v2/images?name={name}", service="image")
    assert code == 200
    return body["images"][0]["id"]


async def boot(api: Api, net: str, bdm: list[dict[str, Any]], *, image_ref: str = "", name: str = "vm") -> str:
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": name, "flavorRef": "1", "imageRef": image_ref, "networks": [{"uuid": net}],
        "block_device_mapping_v2": bdm}})
    assert code == 202, body
    return body["server"]["id"]


def cinder_of(twin: TwinServer, cloud: str = CLOUD) -> Any:
    return twin.twin.clouds[cloud].regions["RegionOne"].cinder


# ---- versions and catalog -----------------------------------------------------------------------------

async def test_version_documents_and_microversion_negotiation(twin, api):
    async with api.s.get(f"{twin.url}/{CLOUD}/RegionOne/volume/") as r:
        assert r.status == 300, "Cinder's root is a version list (multiple choices), no token needed"
        doc = await r.json()
    [v3] = doc["versions"]
    assert (v3["id"], v3["min_version"], v3["version"]) == ("v3.0", "3.0", "3.70")
    async with api.s.get(api.volume + "/volumes", headers={"X-Auth-Token": api.token,
                                                           "OpenStack-API-Version": "volume 3.59"}) as r:
        assert r.status == 200
        assert r.headers["OpenStack-API-Version"] == "volume 3.59"
    code, body = await api.vol("GET", "/volumes", mv="3.99")
    assert code == 406 and "maximum is 3.70" in body["computeFault"]["message"]
    code, body = await api.vol("GET", "/volumes", mv="three")
    assert code == 400 and "badRequest" in body


async def test_a_project_id_that_is_not_the_tokens_is_refused(api):
    code, body = await api.call("GET", api.volume.replace(api.pid, "someone-else") + "/volumes")
    assert code == 400 and "doesn't match Context's project_id" in body["badRequest"]["message"]


# ---- volumes ------------------------------------------------------------------------------------------

async def test_volume_create_show_list_update_extend_delete(twin, api):
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 2, "name": "data-1",
                                                               "metadata": {"team": "a"}}})
    assert code == 202, body
    vol = body["volume"]
    assert vol["status"] == "creating" and vol["size"] == 2 and vol["volume_type"] == "lvmdriver-1"
    assert vol["availability_zone"] == "nova" and vol["bootable"] == "false"
    vid = vol["id"]
    await api.wait_volume(vid, "available")
    code, body = await api.vol("GET", "/volumes")
    assert code == 200 and [v["name"] for v in body["volumes"]] == ["data-1"]
    assert set(body["volumes"][0]) == {"id", "name", "links"}
    code, body = await api.vol("GET", "/volumes/detail?name=data-1&status=available")
    assert [v["id"] for v in body["volumes"]] == [vid]
    code, body = await api.vol("GET", "/volumes/detail?metadata={'team':'b'}")
    assert body["volumes"] == []
    code, body = await api.vol("PUT", f"/volumes/{vid}", {"volume": {"name": "data-2", "description": "d"}})
    assert code == 200 and body["volume"]["name"] == "data-2" and body["volume"]["description"] == "d"
    code, body = await api.vol("POST", f"/volumes/{vid}/action", {"os-extend": {"new_size": 1}})
    assert code == 400 and "must be greater than current size" in body["badRequest"]["message"]
    code, _ = await api.vol("POST", f"/volumes/{vid}/action", {"os-extend": {"new_size": 5}})
    assert code == 202
    code, body = await api.vol("GET", f"/volumes/{vid}")
    assert body["volume"]["status"] == "extending"
    assert (await api.wait_volume(vid, "available"))["size"] == 5
    code, body = await api.vol("GET", "/limits")
    assert body["limits"]["absolute"]["totalGigabytesUsed"] == 5
    assert body["limits"]["absolute"]["totalVolumesUsed"] == 1
    code, _ = await api.vol("DELETE", f"/volumes/{vid}")
    assert code == 202
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "deleting"
    end = time.monotonic() + 10
    while (await api.vol("GET", f"/volumes/{vid}"))[0] != 404:
        assert time.monotonic() < end
        await asyncio.sleep(0.01)
    assert cinder_of(twin).usage(api.pid)["gigabytes"] == 0


async def test_volume_from_an_image_is_bootable_and_carries_the_image(api):
    img = await image_id(api, "ubuntu-22.04")
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "imageRef": img}})
    assert code == 400 and "Size of specified image 3 is larger than volume size 1" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 4, "imageRef": img}})
    assert code == 202
    seen = {body["volume"]["status"]}
    vid = body["volume"]["id"]
    end = time.monotonic() + 10
    while "available" not in seen:
        assert time.monotonic() < end
        seen.add((await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"])
        await asyncio.sleep(0.005)
    assert "downloading" in seen, seen
    vol = (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]
    assert vol["bootable"] == "true" and vol["volume_image_metadata"]["image_id"] == img
    assert vol["volume_image_metadata"]["os_distro"] == "ubuntu"


@pytest.mark.parametrize("body, text", [
    ({"volume": {"size": "ten"}}, "size"),
    ({"volume": {"size": 0}}, "size"),
    ({"volume": {"size": True}}, "size"),
    ({"volume": {}}, "Size must be specified"),
    ({"volume": {"size": 1, "name": 7}}, "name"),
    ({"volume": {"size": 1, "name": "x" * 256}}, "too long"),
    ({"volume": {"size": 1, "metadata": {"k": 1}}}, "metadata"),
    ({"volume": {"size": 1, "metadata": ["k"]}}, "metadata"),
    ({"volume": {"size": 1, "volume_type": "gold"}}, "Volume type with name gold could not be found"),
    ({"volume": {"size": 1, "availability_zone": "mars"}}, "Availability zone 'mars' is invalid"),
    ({"volume": {"size": 1, "imageRef": "no-such-image"}}, "Invalid image identifier"),
    ({"volume": {"size": 1, "source_volid": "no-such-volume"}}, "could not be found"),
    ({"volume": {"size": 1, "snapshot_id": "no-such-snap"}}, "Snapshot no-such-snap could not be found"),
    ({"volume": {"size": 1, "multiattach": "perhaps"}}, "multiattach"),
    ({"volume": None}, "an object under 'volume' is required"),
    ([1, 2], "an object under 'volume' is required"),
])
async def test_bad_volume_creates_are_refused_and_make_nothing(twin, api, body, text):
    code, answer = await api.vol("POST", "/volumes", body)
    assert code in (400, 404), answer
    (fault,) = answer.values()
    assert text in fault["message"]
    assert cinder_of(twin).volumes_of(api.pid) == []


async def test_malformed_json_and_unknown_actions(api):
    async with api.s.post(api.volume + "/volumes", data=b"{nope", headers={"X-Auth-Token": api.token,
                                                                          "Content-Type": "application/json"}) as r:
        assert r.status == 400 and "Malformed request body" in (await r.json())["badRequest"]["message"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    vid = body["volume"]["id"]
    code, body = await api.vol("POST", f"/volumes/{vid}/action", {"os-teleport": {}})
    assert code == 400 and "There is no such action: os-teleport" in body["badRequest"]["message"]
    code, body = await api.vol("POST", f"/volumes/{vid}/action", {"os-extend": "big"})
    assert code == 400
    code, body = await api.vol("GET", "/volumes/" + "x" * 300)
    assert code == 404 and "could not be found" in body["itemNotFound"]["message"]
    code, body = await api.vol("GET", "/volumes/detail?sort=colour:asc")
    assert code == 400 and "Invalid sort key" in body["badRequest"]["message"]
    code, body = await api.vol("GET", "/volumes/detail?marker=nobody")
    assert code == 404 and "Marker nobody could not be found" in body["itemNotFound"]["message"]


async def test_quota_is_enforced_in_cinders_words():
    config = TwinConfig(time_scale=FAST)
    async with TwinServer(Twin(config), port=0) as srv:
        srv.twin.add_cloud("small", "legacy-nova")      # volumes: 10, gigabytes: 1000
        async with aiohttp.ClientSession() as s:
            api = await login(s, srv.url, cloud="small")
            code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1001}})
            assert code == 413 and "gigabytes quota" in body["overLimit"]["message"]
            for i in range(10):
                assert (await api.vol("POST", "/volumes", {"volume": {"size": 1}}))[0] == 202
            code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
            assert code == 413 and "Maximum number of volumes allowed (10)" in body["overLimit"]["message"]
            code, body = await api.vol(f"GET", f"/os-quota-sets/{api.pid}?usage=true")
            assert body["quota_set"]["volumes"] == {"limit": 10, "in_use": 10, "reserved": 0, "allocated": 0}


async def test_volume_types_zones_extensions_and_default_type(api):
    code, body = await api.vol("GET", "/types")
    assert {t["name"] for t in body["volume_types"]} == {"lvmdriver-1", "__DEFAULT__"}
    lvm = next(t for t in body["volume_types"] if t["name"] == "lvmdriver-1")
    assert lvm["extra_specs"] == {"volume_backend_name": "lvmdriver-1"}
    assert (await api.vol("GET", f"/types/{lvm['id']}"))[1]["volume_type"]["name"] == "lvmdriver-1"
    assert (await api.vol("GET", "/types/default", mv="3.62"))[1]["volume_type"]["name"] == "lvmdriver-1"
    assert (await api.vol("GET", "/types/default"))[0] == 404, "the default type route needs 3.62"
    code, body = await api.vol("GET", "/os-availability-zone")
    assert body["availabilityZoneInfo"] == [{"zoneName": "nova", "zoneState": {"available": True}}]
    code, body = await api.vol("GET", "/extensions")
    assert "os-volume-actions" in {e["alias"] for e in body["extensions"]}


# ---- attachments through Nova --------------------------------------------------------------------------

async def test_attach_and_detach_walk_cinders_state_machine(twin, api):
    net = await make_net(api)
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": "app", "flavorRef": "1", "imageRef": await image_id(api), "networks": [{"uuid": net}]}})
    sid = body["server"]["id"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "name": "data"}})
    vid = body["volume"]["id"]
    code, body = await api.nova("POST", f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}})
    assert code == 409 and "vm_state building" in body["conflictingRequest"]["message"], "no attach while BUILD"
    await api.wait_server(sid)
    await api.wait_volume(vid, "available")
    assert (await api.vol("POST", f"/volumes/{vid}/action", {"os-reserve": None}))[0] == 202
    code, body = await api.nova("POST", f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}})
    assert code == 400 and "current status is attaching" in body["badRequest"]["message"]
    assert (await api.vol("POST", f"/volumes/{vid}/action", {"os-unreserve": None}))[0] == 202
    code, body = await api.nova("POST", f"/servers/{sid}/os-volume_attachments",
                                {"volumeAttachment": {"volumeId": vid, "delete_on_termination": True}}, mv="2.79")
    assert code == 200, body
    assert body["volumeAttachment"] == {"device": "/dev/vdb", "serverId": sid, "volumeId": vid, "id": vid,
                                        "tag": None, "delete_on_termination": True}
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "attaching"
    vol = await api.wait_volume(vid, "in-use")
    [att] = vol["attachments"]
    assert att["server_id"] == sid and att["device"] == "/dev/vdb" and att["attached_at"]
    code, body = await api.nova("GET", f"/servers/{sid}", mv="2.3")
    assert body["server"]["os-extended-volumes:volumes_attached"] == [{"id": vid, "delete_on_termination": True}]
    code, body = await api.vol("DELETE", f"/volumes/{vid}")
    assert code == 400 and "must not be migrating, attached" in body["badRequest"]["message"]
    code, body = await api.nova("POST", f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}})
    assert code == 400, "an attached volume cannot be attached again"
    code, _ = await api.nova("DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert code == 202
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "detaching"
    vol = await api.wait_volume(vid, "available")
    assert vol["attachments"] == []
    assert (await api.nova("GET", f"/servers/{sid}/os-volume_attachments"))[1] == {"volumeAttachments": []}
    code, body = await api.nova("DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert code == 404


async def test_attachments_api_reserve_connect_complete_delete(api):
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    vid = body["volume"]["id"]
    await api.wait_volume(vid, "available")
    assert (await api.vol("POST", "/attachments", {"attachment": {"volume_uuid": vid}}, mv="3.26"))[0] == 404
    code, body = await api.vol("POST", "/attachments", {"attachment": {"volume_uuid": vid,
                                                                       "instance_uuid": "i-1"}}, mv="3.44")
    assert code == 200 and body["attachment"]["status"] == "reserved"
    aid = body["attachment"]["id"]
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "reserved"
    code, body = await api.vol("POST", f"/attachments/{aid}/action", {"os-complete": None}, mv="3.44")
    assert code == 400, "no connector yet"
    code, body = await api.vol("PUT", f"/attachments/{aid}", {"attachment": {"connector": {"host": "h1"}}},
                               mv="3.44")
    assert code == 200 and body["attachment"]["connection_info"]["driver_volume_type"] == "iscsi"
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "attaching"
    code, _ = await api.vol("POST", f"/attachments/{aid}/action", {"os-complete": None}, mv="3.44")
    assert code == 204
    vol = (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]
    assert vol["status"] == "in-use" and vol["attachments"][0]["attachment_id"] == aid
    code, body = await api.vol("GET", "/attachments/detail", mv="3.44")
    assert [(a["id"], a["status"]) for a in body["attachments"]] == [(aid, "attached")]
    code, _ = await api.vol("DELETE", f"/attachments/{aid}", mv="3.44")
    assert code == 200
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "available"


async def test_legacy_volume_actions(api):
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    vid = body["volume"]["id"]
    await api.wait_volume(vid, "available")
    for action, want in (("os-reserve", "attaching"), ("os-unreserve", "available")):
        assert (await api.vol("POST", f"/volumes/{vid}/action", {action: {}}))[0] == 202
        assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == want
    code, _ = await api.vol("POST", f"/volumes/{vid}/action", {"os-attach": {"instance_uuid": "i-2",
                                                                             "mountpoint": "/dev/vdc"}})
    assert code == 202
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "in-use"
    for action, want in (("os-begin_detaching", "detaching"), ("os-roll_detaching", "in-use"),
                         ("os-detach", "available")):
        assert (await api.vol("POST", f"/volumes/{vid}/action", {action: {}}))[0] == 202
        assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == want
    code, _ = await api.vol("POST", f"/volumes/{vid}/action", {"os-set_bootable": {"bootable": True}})
    assert code == 200 and (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["bootable"] == "true"
    code, body = await api.vol("POST", f"/volumes/{vid}/action", {"os-reset_status": {"status": "weird"}})
    assert code == 400


# ---- boot from volume ------------------------------------------------------------------------------------

async def test_boot_from_volume_builds_the_root_volume_and_honours_delete_on_termination(twin, api):
    net = await make_net(api)
    img = await image_id(api, "ubuntu-22.04")
    kept = await boot(api, net, [{"boot_index": 0, "uuid": img, "source_type": "image",
                                  "destination_type": "volume", "volume_size": 10,
                                  "delete_on_termination": False}], name="kept")
    gone = await boot(api, net, [{"boot_index": "0", "uuid": img, "source_type": "image",
                                  "destination_type": "volume", "volume_size": "12",
                                  "delete_on_termination": True},
                                 {"boot_index": -1, "source_type": "blank", "destination_type": "volume",
                                  "volume_size": 2, "delete_on_termination": True}], name="gone")
    roots = {}
    for sid in (kept, gone):
        server = await api.wait_server(sid)
        assert server["image"] == "", "a volume-backed server shows no image"
        attached = server["os-extended-volumes:volumes_attached"]
        roots[sid] = attached[0]["id"]
        vol = (await api.vol("GET", f"/volumes/{roots[sid]}"))[1]["volume"]
        assert vol["status"] == "in-use" and vol["bootable"] == "true"
        assert vol["volume_image_metadata"]["image_id"] == img
        assert vol["attachments"][0]["server_id"] == sid and vol["attachments"][0]["device"] == "/dev/vda"
    assert (await api.vol("GET", f"/volumes/{roots[kept]}"))[1]["volume"]["size"] == 10
    code, body = await api.nova("GET", f"/servers/{gone}/os-volume_attachments")
    assert [a["device"] for a in body["volumeAttachments"]] == ["/dev/vda", "/dev/vdb"]
    code, body = await api.nova("DELETE", f"/servers/{gone}/os-volume_attachments/{roots[gone]}")
    assert code == 400 and "root device" in body["badRequest"]["message"]
    for sid in (kept, gone):
        assert (await api.nova("DELETE", f"/servers/{sid}"))[0] == 204
        await api.wait_server(sid, "GONE")
    await api.wait_volume(roots[kept], "available")
    end = time.monotonic() + 10
    while len(cinder_of(twin).volumes_of(api.pid)) != 1:
        assert time.monotonic() < end, "delete_on_termination volumes go with their server"
        await asyncio.sleep(0.01)
    assert cinder_of(twin).volumes_of(api.pid)[0].id == roots[kept]
    assert not cinder_of(twin).attachments


async def test_boot_from_an_existing_volume(twin, api):
    net = await make_net(api)
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 3, "imageRef": await image_id(api)}})
    vid = body["volume"]["id"]
    await api.wait_volume(vid, "available")
    sid = await boot(api, net, [{"boot_index": 0, "uuid": vid, "source_type": "volume",
                                 "destination_type": "volume"}])
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": "twice", "flavorRef": "1", "networks": [{"uuid": net}],
        "block_device_mapping_v2": [{"boot_index": 0, "uuid": vid, "source_type": "volume",
                                     "destination_type": "volume"}]}})
    assert code == 400 and "status must be available" in body["badRequest"]["message"]
    await api.wait_server(sid)
    assert (await api.wait_volume(vid, "in-use"))["attachments"][0]["server_id"] == sid
    assert len(twin.twin.clouds[CLOUD].regions["RegionOne"].nova.servers) == 1, "the refused create made nothing"


@pytest.mark.parametrize("bdm, text", [
    ([{"boot_index": 0, "uuid": "nope", "source_type": "image", "destination_type": "volume",
       "volume_size": 5}], "Image nope could not be found"),
    ([{"boot_index": 0, "uuid": "IMG", "source_type": "image", "destination_type": "volume",
       "volume_size": 1}], "Volume is smaller than the minimum size"),
    ([{"boot_index": 0, "uuid": "nope", "source_type": "volume", "destination_type": "volume"}],
     "failed to get volume nope"),
    ([{"boot_index": 0, "uuid": "snap", "source_type": "snapshot", "destination_type": "volume"}],
     "Snapshot snap could not be found"),
    ([{"boot_index": 0, "source_type": "blank", "destination_type": "volume"}], "need to have non-zero size"),
    ([{"boot_index": 0, "uuid": "IMG", "source_type": "floppy"}], "source_type"),
    ([{"boot_index": 0, "uuid": "IMG", "source_type": "image", "destination_type": "volume",
       "volume_size": "lots"}], "volume_size"),
    ([{"boot_index": 0, "uuid": "IMG", "source_type": "image", "destination_type": "volume", "volume_size": 5},
      {"boot_index": 0, "uuid": "IMG", "source_type": "image", "destination_type": "volume", "volume_size": 5}],
     "Boot sequence"),
    ("not-a-list", "block_device_mapping_v2"),
])
async def test_bad_block_device_mappings_are_refused_and_make_nothing(twin, api, bdm, text):
    net = await make_net(api)
    img = await image_id(api, "ubuntu-22.04")
    if isinstance(bdm, list):
        bdm = [{k: (img if v == "IMG" else v) for k, v in d.items()} for d in bdm]
    code, body = await api.nova("POST", "/servers", {"server": {"name": "x", "flavorRef": "1",
                                                                "networks": [{"uuid": net}],
                                                                "block_device_mapping_v2": bdm}})
    assert code == 400, body
    assert text in body["badRequest"]["message"]
    region = twin.twin.clouds[CLOUD].regions["RegionOne"]
    assert not region.nova.servers and not region.cinder.volumes and not region.cinder.attachments
    assert not [p for p in region.neutron.ports.values() if p.device_owner.startswith("compute:")]


# ---- faults, stages and snapshots ---------------------------------------------------------------------

async def test_faults_and_stages_apply_to_volumes(twin, api):
    async with api.s.post(twin.url + "/_twin/faults", json={"kind": "stuck", "resource": "volume",
                                                            "state": "creating"}) as r:
        assert r.status == 201
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    stuck = body["volume"]["id"]
    async with api.s.post(twin.url + "/_twin/faults", json={"kind": "error", "status": 503,
                                                            "match": {"operation": "volume:volume:create"},
                                                            "count": 1}) as r:
        assert r.status == 201
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    assert code == 503 and "serviceUnavailable" in body, "an injected error speaks Cinder's envelope"
    await asyncio.sleep(60 * FAST)
    assert (await api.vol("GET", f"/volumes/{stuck}"))[1]["volume"]["status"] == "creating"


async def test_snapshot_keeps_volumes_attachments_and_pending_transitions(tmp_path):
    path = tmp_path / "twin.json"
    async with TwinServer(port=0, config=TwinConfig(time_scale=FAST)) as srv:
        async with aiohttp.ClientSession() as s:
            api = await login(s, srv.url)
            net = await make_net(api)
            sid = await boot(api, net, [{"boot_index": 0, "uuid": await image_id(api), "source_type": "image",
                                         "destination_type": "volume", "volume_size": 1,
                                         "delete_on_termination": True}])
            await api.wait_server(sid)
            code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "name": "pending"}})
            pending = body["volume"]["id"]
        snapshot.save(srv.twin, path)
    async with TwinServer(port=0, config=TwinConfig(time_scale=FAST, state_file=None)) as srv:
        snapshot.load(srv.twin, path)
        async with aiohttp.ClientSession() as s:
            api = await login(s, srv.url)
            await api.wait_volume(pending, "available")
            server = await api.wait_server(sid)
            root = server["os-extended-volumes:volumes_attached"][0]["id"]
            assert (await api.vol("GET", f"/volumes/{root}"))[1]["volume"]["attachments"][0]["server_id"] == sid
            assert (await api.nova("DELETE", f"/servers/{sid}"))[0] == 204
            await api.wait_server(sid, "GONE")
            end = time.monotonic() + 10
            while (await api.vol("GET", f"/volumes/{root}"))[0] != 404:
                assert time.monotonic() < end, "the restored attachment still deletes on termination"
                await asyncio.sleep(0.01)


# ---- unmodified openstacksdk ----------------------------------------------------------------------------

def test_openstacksdk_volume_lifecycle_and_server_attachments(threaded_twin):
    conn = sdk_connect(threaded_twin.url, cloud="sdk-vol", project="p1")
    bs = conn.block_storage
    vol = bs.create_volume(size=1, name="sdk-data")
    vol = bs.wait_for_status(vol, "available", interval=0.02, wait=10)
    assert [v.name for v in bs.volumes()] == ["sdk-data"]
    assert bs.get_volume(vol.id).size == 1
    bs.extend_volume(vol, 2)
    end = time.monotonic() + 10
    while bs.get_volume(vol.id).size != 2 or bs.get_volume(vol.id).status != "available":
        assert time.monotonic() < end
        time.sleep(0.02)
    net = conn.network.create_network(name="sdk-net")
    conn.network.create_subnet(network_id=net.id, cidr="10.3.0.0/24", ip_version=4)
    img = next(i for i in conn.image.images() if i.name == "cirros-0.6.2")
    server = conn.compute.create_server(name="sdk-vm", flavor_id="1", networks=[{"uuid": net.id}],
                                        block_device_mapping=[{"boot_index": 0, "uuid": img.id,
                                                               "source_type": "image", "destination_type": "volume",
                                                               "volume_size": 1, "delete_on_termination": True}])
    server = conn.compute.wait_for_server(server, interval=0.02, wait=10)
    assert len(server.attached_volumes) == 1
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    bs.wait_for_status(bs.get_volume(vol.id), "in-use", interval=0.02, wait=10)
    assert sorted(a.device for a in conn.compute.volume_attachments(server)) == ["/dev/vda", "/dev/vdb"]
    with pytest.raises(openstack.exceptions.BadRequestException):
        bs.delete_volume(vol)
    conn.compute.delete_volume_attachment(server, vol.id)
    bs.wait_for_status(bs.get_volume(vol.id), "available", interval=0.02, wait=10)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.02, wait=10)
    bs.delete_volume(vol)
    bs.wait_for_delete(vol, interval=0.02, wait=10)
    end = time.monotonic() + 10
    while list(bs.volumes()):
        assert time.monotonic() < end, "the boot volume goes with its server"
        time.sleep(0.02)


async def test_nova_made_volumes_are_named_empty_and_attached_on_the_servers_host(api):
    net = await make_net(api)
    img = await image_id(api, "ubuntu-22.04")
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": "exact", "flavorRef": "1", "networks": [{"uuid": net}],
        "block_device_mapping_v2": [{"boot_index": 0, "uuid": img, "source_type": "image",
                                     "destination_type": "volume", "volume_size": 2}]}})
    assert code == 400 and "minimum size is 2361393152 bytes" in body["badRequest"]["message"], \
        "the volume must hold the image itself, not only its min_disk"
    sid = await boot(api, net, [{"boot_index": 0, "uuid": img, "source_type": "image",
                                 "destination_type": "volume", "volume_size": 3}])
    server = await api.wait_server(sid)
    root = server["os-extended-volumes:volumes_attached"][0]["id"]
    vol = (await api.vol("GET", f"/volumes/{root}"))[1]["volume"]
    assert (vol["name"], vol["description"]) == ("", ""), "Nova names its boot volumes ''"
    assert vol["attachments"][0]["host_name"] == server["OS-EXT-SRV-ATTR:host"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    assert body["volume"]["name"] is None, "a volume created without a name has none"


async def test_huge_numbers_are_bad_input_not_crashes(api):
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": "9" * 5000}})
    assert code == 400 and "size" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 10 ** 40}})
    assert code == 400
    net = await make_net(api)
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": "big", "flavorRef": "1", "networks": [{"uuid": net}],
        "block_device_mapping_v2": [{"boot_index": "9" * 5000, "uuid": await image_id(api),
                                     "source_type": "image", "destination_type": "volume", "volume_size": 1}]}})
    assert code == 400 and "boot_index" in body["badRequest"]["message"]
    code, body = await api.vol("GET", "/volumes/detail?limit=" + "9" * 5000)
    assert code == 200
