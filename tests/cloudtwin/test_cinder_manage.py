"""Cinder on Cloud-Twin: unmanaging a volume or snapshot leaves its storage on the backend, where an
admin manages it back under a new id; extending an attached volume tells Nova (an ``extend_volume``
instance action on the server)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from test_cinder import Api, image_id, login, make_net
from test_cinder_copies import volume, wait


@pytest.fixture
async def api(twin: Any) -> Any:
    async with aiohttp.ClientSession() as s:
        yield await login(s, twin.url)


async def test_unmanage_then_manage_volume_and_snapshot(api: Api) -> None:
    vid = await volume(api, 2)
    code, body = await api.vol("POST", "/snapshots", {"snapshot": {"volume_id": vid}})
    sid = body["snapshot"]["id"]
    await wait(api, f"/snapshots/{sid}", "snapshot", "available")
    code, body = await api.vol("GET", f"/volumes/{vid}")
    host = body["volume"]["os-vol-host-attr:host"]
    code, body = await api.vol("POST", f"/volumes/{vid}/action", {"os-unmanage": {}})
    assert code == 400 and "have snapshots" in body["badRequest"]["message"]    # as a delete would
    assert (await api.vol("POST", f"/snapshots/{sid}/action", {"os-unmanage": {}}))[0] == 202
    await wait(api, f"/snapshots/{sid}", "snapshot", "GONE")
    code, body = await api.vol("GET", f"/manageable_snapshots/detail?host={host}", mv="3.8")
    assert code == 200 and {"reference": {"source-name": f"_snapshot-{sid}"}, "size": 2, "safe_to_manage": True,
                            "reason_not_safe": None, "cinder_id": None, "extra_info": None,
                            "source_reference": {"source-name": f"volume-{vid}"}} in body["manageable-snapshots"]
    code, body = await api.vol("POST", "/os-snapshot-manage", {"snapshot": {
        "volume_id": vid, "ref": {"source-name": f"_snapshot-{sid}"}, "name": "back", "metadata": {"k": "v"}}})
    assert code == 202 and body["snapshot"]["size"] == 2 and body["snapshot"]["id"] != sid
    managed_snap = body["snapshot"]["id"]
    await wait(api, f"/snapshots/{managed_snap}", "snapshot", "available")
    assert (await api.vol("DELETE", f"/snapshots/{managed_snap}"))[0] == 202
    await wait(api, f"/snapshots/{managed_snap}", "snapshot", "GONE")
    # the volume: unmanaged, listed as manageable on its host, managed back with its size and host
    assert (await api.vol("POST", f"/volumes/{vid}/action", {"os-unmanage": {}}))[0] == 202
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "unmanaging"
    await wait(api, f"/volumes/{vid}", "volume", "GONE")
    code, body = await api.vol("GET", f"/manageable_volumes?host={host}", mv="3.8")
    assert {"reference": {"source-name": f"volume-{vid}"}, "size": 2, "safe_to_manage": True} in \
        body["manageable-volumes"]
    code, body = await api.vol("POST", "/os-volume-manage", {"volume": {"host": host, "ref": {"source-name": "nope"}}})
    assert code == 400 and "invalid backend reference" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/os-volume-manage", {"volume": {"host": "elsewhere@x", "ref": {}}})
    assert code == 404
    code, body = await api.vol("POST", "/os-volume-manage", {"volume": {
        "host": host, "ref": {"source-name": f"volume-{vid}"}, "name": "again"}})
    assert code == 202 and body["volume"]["status"] == "managing" and body["volume"]["size"] == 2
    new = await api.wait_volume(body["volume"]["id"], "available")
    assert new["os-vol-host-attr:host"] == host and new["name"] == "again" and new["id"] != vid
    code, body = await api.vol("POST", "/os-volume-manage", {"volume": {
        "host": host, "ref": {"source-name": f"volume-{vid}"}}})
    assert code == 400, "the storage is managed again: no longer there to take"


async def test_extending_an_attached_volume_is_an_instance_action(api: Api) -> None:
    net = await make_net(api)
    code, body = await api.nova("POST", "/servers", {"server": {
        "name": "app", "flavorRef": "1", "imageRef": await image_id(api), "networks": [{"uuid": net}]}})
    sid = body["server"]["id"]
    vid = await volume(api, 1)
    await api.wait_server(sid)
    code, _ = await api.nova("POST", f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}})
    assert code == 200
    await api.wait_volume(vid, "in-use")
    assert (await api.vol("POST", f"/volumes/{vid}/action", {"os-extend": {"new_size": 2}}, mv="3.42"))[0] == 202
    vol = await api.wait_volume(vid, "in-use")
    assert vol["size"] == 2
    code, body = await api.nova("GET", f"/servers/{sid}/os-instance-actions")
    (action,) = [a for a in body["instanceActions"] if a["action"] == "extend_volume"]
    code, body = await api.nova("GET", f"/servers/{sid}/os-instance-actions/{action['request_id']}", mv="2.51")
    (event,) = body["instanceAction"]["events"]
    assert event["event"] == "compute_extend_volume" and event["finish_time"] and event["result"] == "Success"
