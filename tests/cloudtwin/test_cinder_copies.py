"""Cinder v3 copies and administration on Cloud-Twin: snapshots (and volumes from them, cascade delete),
backups (incremental, restore, export/import), transfers between projects, volume type management with
private access, QoS specs, per-project quotas that are enforced, and a scheduler user message."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_login, keystone_user

from test_cinder import Api, login


@pytest.fixture
async def api(twin: Any) -> Any:
    async with aiohttp.ClientSession() as s:
        yield await login(s, twin.url, cloud="cloud-1", project="admin")


async def wait(api: Api, path: str, key: str, status: str, timeout: float = 10,
               mv: str | None = None) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        code, body = await api.vol("GET", path, mv=mv)
        if status == "GONE" and code == 404:
            return {}
        assert code == 200, body
        if body[key]["status"] == status:
            return body[key]  # type: ignore[no-any-return]
        assert time.monotonic() < end, f"{path} stuck in {body[key]['status']}, wanted {status}"
        await asyncio.sleep(0.01)


async def volume(api: Api, size: int = 1, **extra: Any) -> str:
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": size, **extra}})
    assert code == 202, body
    assert "os-vol-host-attr:host" not in body["volume"]       # GET-only extension attributes
    await api.wait_volume(body["volume"]["id"], "available")
    return body["volume"]["id"]  # type: ignore[no-any-return]


async def test_snapshots_volumes_from_them_and_cascade(api: Api) -> None:
    vid = await volume(api, 2)
    code, body = await api.vol("POST", "/snapshots", {"snapshot": {"volume_id": vid, "name": "s1",
                                                                   "metadata": {"k": "v"}}})
    assert code == 202 and body["snapshot"]["status"] == "creating"
    sid = body["snapshot"]["id"]
    snap = await wait(api, f"/snapshots/{sid}", "snapshot", "available")
    assert snap["size"] == 2 and snap["os-extended-snapshot-attributes:progress"] == "100%"
    assert (await api.vol("PUT", f"/snapshots/{sid}/metadata/k", {"meta": {"k": "w"}}))[1] == {"meta": {"k": "w"}}
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "snapshot_id": sid}})
    assert code == 400 and "snapshot size" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/volumes", {"volume": {"snapshot_id": sid}})
    assert code == 202 and body["volume"]["size"] == 2 and body["volume"]["snapshot_id"] == sid
    await api.wait_volume(body["volume"]["id"], "available")
    code, body = await api.vol("DELETE", f"/volumes/{vid}")
    assert code == 400 and "have snapshots" in body["badRequest"]["message"]
    code, listed = await api.vol("GET", "/snapshots?sort=display_name:asc&limit=1")
    assert code == 200 and len(listed["snapshots"]) == 1 and listed["snapshots_links"][0]["rel"] == "next"
    assert (await api.vol("GET", "/snapshots?marker=nobody"))[0] == 404
    assert (await api.vol("POST", f"/snapshots/{sid}/action", {"os-reset_status": {"status": "error"}}))[0] == 202
    assert (await api.vol("GET", f"/snapshots/{sid}"))[1]["snapshot"]["status"] == "error"
    assert (await api.vol("DELETE", f"/volumes/{vid}?cascade=true"))[0] == 202
    await wait(api, f"/snapshots/{sid}", "snapshot", "GONE")
    await wait(api, f"/volumes/{vid}", "volume", "GONE")


async def test_backups_incremental_restore_export_import(api: Api) -> None:
    vid = await volume(api)
    code, body = await api.vol("POST", "/backups", {"backup": {"volume_id": vid, "incremental": True}})
    assert code == 400 and "No backups available" in body["badRequest"]["message"]
    code, body = await api.vol("POST", "/backups", {"backup": {"volume_id": vid, "name": "full"}})
    assert code == 202 and set(body["backup"]) == {"id", "name", "links"}
    full = body["backup"]["id"]
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "backing-up"
    await wait(api, f"/backups/{full}", "backup", "available")
    await api.wait_volume(vid, "available")
    code, body = await api.vol("POST", "/backups", {"backup": {"volume_id": vid, "incremental": True}})
    incr = body["backup"]["id"]
    b = await wait(api, f"/backups/{incr}", "backup", "available")
    assert b["is_incremental"] is True
    assert (await api.vol("GET", f"/backups/{full}"))[1]["backup"]["has_dependent_backups"] is True
    assert (await api.vol("DELETE", f"/backups/{full}"))[0] == 400             # an incremental depends on it
    code, body = await api.vol("POST", f"/backups/{full}/restore", {"restore": {"name": "restored"}})
    assert code == 202 and body["restore"]["volume_name"] == "restored"
    await wait(api, f"/backups/{full}", "backup", "available")
    await api.wait_volume(body["restore"]["volume_id"], "available")
    code, rec = await api.vol("GET", f"/backups/{incr}/export_record")
    assert code == 200 and rec["backup-record"]["backup_url"]
    assert (await api.vol("POST", "/backups/import_record", rec))[0] == 400       # still exists
    assert (await api.vol("DELETE", f"/backups/{incr}"))[0] == 202
    await wait(api, f"/backups/{incr}", "backup", "GONE")
    code, body = await api.vol("POST", "/backups/import_record", rec)
    assert code == 201 and body["backup"]["id"] == incr


async def test_transfer_moves_a_volume_between_projects(twin: Any, api: Api) -> None:
    vid = await volume(api)
    code, body = await api.vol("POST", "/os-volume-transfer", {"transfer": {"volume_id": vid, "name": "t"}})
    assert code == 202
    tid, key = body["transfer"]["id"], body["transfer"]["auth_key"]
    assert (await api.vol("GET", f"/volumes/{vid}"))[1]["volume"]["status"] == "awaiting-transfer"
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, twin.url, project="receiver")
        other = Api(s, twin.url, token, doc["project"]["id"], "cloud-1")
        code, body = await other.vol("POST", f"/os-volume-transfer/{tid}/accept", {"accept": {"auth_key": "bad"}})
        assert code == 400
        code, _ = await other.vol("POST", f"/os-volume-transfer/{tid}/accept", {"accept": {"auth_key": key}})
        assert code == 202
        v = await other.wait_volume(vid, "available")
        assert v["user_id"] == doc["user"]["id"]
        assert (await other.vol("POST", "/types", {"volume_type": {"name": "nope"}}))[0] == 403   # not an admin
    assert (await api.vol("GET", f"/os-volume-transfer/{tid}"))[0] == 404


async def test_types_access_qos_quotas_and_messages(twin: Any, api: Api) -> None:
    code, body = await api.vol("POST", "/types", {"volume_type": {
        "name": "gold", "os-volume-type-access:is_public": False, "extra_specs": {"volume_backend_name": "lvmdriver-1"}}})
    assert code == 200 and "qos_specs_id" not in body["volume_type"]
    gold = body["volume_type"]["id"]
    assert (await api.vol("POST", "/types", {"volume_type": {"name": "gold"}}))[0] == 409
    assert (await api.vol("PUT", f"/types/{gold}/extra_specs/a", {"b": "1"}))[0] == 400   # key mismatch
    assert (await api.vol("PUT", f"/types/{gold}/extra_specs/a", {"a": "1"}))[1] == {"a": "1"}
    assert (await api.vol("POST", f"/types/{gold}/action", {"addProjectAccess": {"project": api.pid}}))[0] == 202
    _, access = await api.vol("GET", f"/types/{gold}/os-volume-type-access")
    assert access["volume_type_access"] == [{"volume_type_id": gold, "project_id": api.pid}]
    code, body = await api.vol("POST", "/qos-specs", {"qos_specs": {"name": "fast", "consumer": "back-end",
                                                                   "read_iops_sec": "100"}})
    assert code == 200 and body["qos_specs"]["specs"] == {"read_iops_sec": "100"}
    qos = body["qos_specs"]["id"]
    assert (await api.vol("GET", f"/qos-specs/{qos}/associate?vol_type_id={gold}"))[0] == 202
    assert (await api.vol("DELETE", f"/qos-specs/{qos}"))[0] == 400                     # still associated
    assert (await api.vol("DELETE", f"/qos-specs/{qos}?force=true"))[0] == 202
    vid = await volume(api, volume_type="gold")
    assert (await api.vol("DELETE", f"/types/{gold}"))[0] == 400                        # in use
    code, body = await api.vol("PUT", f"/os-quota-sets/{api.pid}", {"quota_set": {"volumes": 0}})
    assert code == 400                                                                   # below usage
    code, body = await api.vol("PUT", f"/os-quota-sets/{api.pid}", {"quota_set": {"volumes": 1}})
    assert code == 200 and body["quota_set"]["volumes"] == 1
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1}})
    assert code == 413
    _, q = await api.vol("GET", f"/os-quota-sets/{api.pid}?usage=true")
    assert q["quota_set"]["volumes"] == {"limit": 1, "in_use": 1, "reserved": 0, "allocated": 0}
    assert (await api.vol("DELETE", f"/os-quota-sets/{api.pid}"))[0] == 200
    code, body = await api.vol("POST", "/types", {"volume_type": {"name": "nowhere",
                                                                  "extra_specs": {"storage_protocol": "carrier-pigeon"}}})
    code, body = await api.vol("POST", "/volumes", {"volume": {"size": 1, "volume_type": "nowhere"}})
    bad = body["volume"]["id"]
    await api.wait_volume(bad, "error")
    _, msgs = await api.vol("GET", "/messages", mv="3.3")
    [msg] = [m for m in msgs["messages"] if m["resource_uuid"] == bad]
    assert msg["event_id"] == "VOLUME_000002"
    assert (await api.vol("GET", "/messages"))[0] == 404                                 # before 3.3
    _, pools = await api.vol("GET", "/scheduler-stats/get_pools?detail=true")
    assert pools["pools"][0]["capabilities"]["storage_protocol"] == "iSCSI"
    assert vid
