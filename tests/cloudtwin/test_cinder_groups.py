"""Cinder generic volume groups on Cloud-Twin: group types with their specs (admin), groups of volumes of
the group's types, membership changes, group snapshots, groups made from a group or a group snapshot,
and the rules that keep a group's volumes and snapshots together."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_user

from test_cinder import Api
from test_cinder_copies import login, volume, wait

MV = "3.14"


@pytest.fixture
async def api(twin: Any) -> Any:
    async with aiohttp.ClientSession() as s:
        yield await login(s, twin.url, cloud="cloud-1", project="admin")


async def _type(api: Api, name: str) -> str:
    code, body = await api.vol("POST", "/types", {"volume_type": {"name": name}})
    assert code == 200, body
    return body["volume_type"]["id"]  # type: ignore[no-any-return]


async def test_group_types_and_specs(twin: Any, api: Api) -> None:
    code, body = await api.vol("POST", "/group_types", {"group_type": {"name": "gt1", "is_public": False,
                                                                       "group_specs": {"k1": "v1"}}}, mv="3.11")
    assert code == 202 and body["group_type"]["group_specs"] == {"k1": "v1"}
    gid = body["group_type"]["id"]
    assert (await api.vol("GET", "/group_types", mv="3.10"))[0] == 404          # before 3.11 there are none
    code, body = await api.vol("GET", "/group_types?is_public=false", mv="3.11")
    assert [t["name"] for t in body["group_types"]] == ["gt1"]
    code, body = await api.vol("GET", "/group_types/default", mv="3.11")
    assert code == 200 and body["group_type"]["name"] == "default_group_type"
    code, body = await api.vol("POST", f"/group_types/{gid}/group_specs", {"group_specs": {"k2": "v2"}}, mv="3.11")
    assert code == 202 and body == {"group_specs": {"k2": "v2"}}
    assert (await api.vol("PUT", f"/group_types/{gid}/group_specs/k2", {"k2": "w"}, mv="3.11"))[1] == {"k2": "w"}
    assert (await api.vol("GET", f"/group_types/{gid}/group_specs", mv="3.11"))[1] == {
        "group_specs": {"k1": "v1", "k2": "w"}}
    assert (await api.vol("DELETE", f"/group_types/{gid}/group_specs/k1", mv="3.11"))[0] == 202
    assert (await api.vol("GET", f"/group_types/{gid}/group_specs/k1", mv="3.11"))[0] == 404
    code, body = await api.vol("PUT", f"/group_types/{gid}", {"group_type": {"name": "gt2", "description": "d"}},
                               mv="3.11")
    assert code == 200 and (body["group_type"]["name"], body["group_type"]["description"]) == ("gt2", "d")
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, twin.url, project="admin")
        member = Api(s, twin.url, token, doc["project"]["id"], "cloud-1")
        assert (await member.vol("POST", "/group_types", {"group_type": {"name": "x"}}, mv="3.11"))[0] == 403
        assert (await member.vol("GET", f"/group_types/{gid}", mv="3.11"))[0] == 404      # private
    assert (await api.vol("DELETE", f"/group_types/{gid}", mv="3.11"))[0] == 202


async def test_groups_volumes_snapshots_and_copies(api: Api) -> None:
    vtype = await _type(api, "grouped")
    code, body = await api.vol("POST", "/group_types", {"group_type": {"name": "gt"}}, mv=MV)
    gtype = body["group_type"]["id"]
    code, body = await api.vol("POST", "/groups", {"group": {"group_type": gtype, "volume_types": [vtype],
                                                             "name": "g1"}}, mv=MV)
    assert code == 202 and set(body["group"]) == {"id", "name"}
    gid = body["group"]["id"]
    group = await wait(api, f"/groups/{gid}", "group", "available", mv=MV)
    assert group["volume_types"] == [vtype] and group["group_type"] == gtype
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "group_id": gid}}, mv=MV)
    assert code == 400 and "does not support this volume type" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "volume_type": vtype, "group_id": gid}},
                               mv=MV)
    assert code == 202 and body["volume"]["group_id"] == gid
    v1 = body["volume"]["id"]
    await api.wait_volume(v1, "available")
    v2 = await volume(api, volume_type=vtype)
    assert (await api.vol("GET", f"/volumes/{v1}", mv=MV))[1]["volume"]["group_id"] == gid
    code, body = await api.vol("DELETE", f"/volumes/{v1}")
    assert code == 400 and "belong to a group" in body["badRequest"]["message"]
    # membership: add v2, then take it out again
    assert (await api.vol("PUT", f"/groups/{gid}", {"group": {"add_volumes": v2}}, mv=MV))[0] == 202
    assert (await api.vol("GET", f"/groups/{gid}", mv=MV))[1]["group"]["status"] == "updating"
    await wait(api, f"/groups/{gid}", "group", "available", mv=MV)
    code, body = await api.vol("PUT", f"/groups/{gid}", {"group": {"remove_volumes": v2, "name": "g2"}}, mv=MV)
    await wait(api, f"/groups/{gid}", "group", "available", mv=MV)
    assert (await api.vol("GET", f"/volumes/{v2}", mv=MV))[1]["volume"]["group_id"] is None
    # a group snapshot takes a snapshot of each member, which goes only with it
    code, body = await api.vol("POST", "/group_snapshots", {"group_snapshot": {"group_id": gid, "name": "gs"}},
                               mv=MV)
    assert code == 202 and body["group_snapshot"]["group_type_id"] == gtype
    gsid = body["group_snapshot"]["id"]
    await wait(api, f"/group_snapshots/{gsid}", "group_snapshot", "available", mv=MV)
    code, body = await api.vol("GET", f"/snapshots/detail?volume_id={v1}", mv=MV)
    (snap,) = body["snapshots"]
    assert snap["group_snapshot_id"] == gsid
    assert (await api.vol("DELETE", f"/snapshots/{snap['id']}"))[0] == 400
    # groups made from the group snapshot and from the group hold a copy of each volume
    for src in ({"group_snapshot_id": gsid}, {"source_group_id": gid}):
        code, body = await api.vol("POST", "/groups/action", {"create-from-src": {"name": "copy", **src}}, mv=MV)
        assert code == 202, body
        copy = body["group"]["id"]
        await wait(api, f"/groups/{copy}", "group", "available", mv=MV)
        code, body = await api.vol("GET", "/volumes/detail", mv=MV)
        members = [v for v in body["volumes"] if v["group_id"] == copy]
        assert len(members) == 1 and members[0]["size"] == 1
        await api.wait_volume(members[0]["id"], "available")
        code, body = await api.vol("POST", f"/groups/{copy}/action", {"delete": {"delete-volumes": False}}, mv=MV)
        assert code == 400 and "has volumes" in body["badRequest"]["message"]
        assert (await api.vol("POST", f"/groups/{copy}/action", {"delete": {"delete-volumes": True}}, mv=MV))[0] == 202
        await wait(api, f"/groups/{copy}", "group", "GONE", mv=MV)
        await wait(api, f"/volumes/{members[0]['id']}", "volume", "GONE")
    assert (await api.vol("POST", f"/groups/{gid}/action", {"delete": {"delete-volumes": True}}, mv=MV))[0] == 400
    assert (await api.vol("POST", f"/group_snapshots/{gsid}/action", {"reset_status": {"status": "error"}},
                          mv="3.19"))[0] == 202
    assert (await api.vol("DELETE", f"/group_snapshots/{gsid}", mv=MV))[0] == 202
    await wait(api, f"/group_snapshots/{gsid}", "group_snapshot", "GONE", mv=MV)
    await wait(api, f"/snapshots/{snap['id']}", "snapshot", "GONE")
    assert (await api.vol("POST", f"/groups/{gid}/action", {"delete": {"delete-volumes": True}}, mv=MV))[0] == 202
    await wait(api, f"/groups/{gid}", "group", "GONE", mv=MV)
    await wait(api, f"/volumes/{v1}", "volume", "GONE")
    code, body = await api.vol("DELETE", f"/group_types/{gtype}", mv=MV)
    assert code == 202, body
