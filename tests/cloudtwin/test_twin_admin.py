"""Cloud-Twin's admin side: clouds and profiles, state, reset, snapshots (atomic, with pending
transitions), lifecycle stages (deterministic under a seed) and profile validation."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest

from cloudtwin import snapshot
from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from cloudtwin.twin import Twin
from cloudtwin.profiles import ProfileCatalog, ProfileError
from cloudtwin.lifecycles import Placement, build_lifecycles, load_lifecycles
from cloudtwin.stages import Scheduler
from test_faults import login


async def make_servers(s: aiohttp.ClientSession, url: str, n: int, cloud: str = "cloud-1") -> tuple[str, list[str]]:
    token = await login(s, url, cloud)
    h = {"X-Auth-Token": token}
    root = f"{url}/{cloud}/RegionOne"
    async with s.post(f"{root}/network/v2.0/networks", json={"network": {"name": "n"}}, headers=h) as r:
        net = (await r.json())["network"]["id"]
    async with s.post(f"{root}/network/v2.0/subnets", headers=h,
                      json={"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}}) as r:
        assert r.status == 201
    async with s.get(f"{root}/image/v2/images", headers=h) as r:
        image = next(i["id"] for i in (await r.json())["images"] if i["name"].startswith("cirros"))
    ids = []
    for i in range(n):
        async with s.post(f"{root}/compute/v2.1/servers", headers=h, json={"server": {
                "name": f"vm-{i}", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}}) as r:
            assert r.status == 202, await r.text()
            ids.append((await r.json())["server"]["id"])
    return token, ids


async def server_status(s, url, token, sid, cloud="cloud-1"):
    async with s.get(f"{url}/{cloud}/RegionOne/compute/v2.1/servers/{sid}", headers={"X-Auth-Token": token}) as r:
        return r.status, (await r.json())


async def test_clouds_and_profiles_through_the_admin_api(twin):
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/_twin/clouds", json={"name": "edge-1", "profile": "busy-csp"}) as r:
            assert r.status == 201
            assert (await r.json())["cloud"]["regions"] == {"RegionOne": ["zone-1", "zone-2"], "RegionTwo": ["zone-1"]}
        async with s.post(twin.url + "/_twin/clouds", json={"name": "edge-1"}) as r:
            assert r.status == 409
        async with s.post(twin.url + "/_twin/clouds", json={"name": "x", "profile": "nope"}) as r:
            assert r.status == 400 and "unknown profile" in (await r.json())["error"]["message"]
        async with s.post(twin.url + "/_twin/profiles", json={"name": "tiny", "extends": "openstack",
                                                             "regions": [{"name": "R1", "zones": ["a"]}]}) as r:
            assert r.status == 201
        async with s.post(twin.url + "/_twin/profiles", json={"name": "bad", "regions": []}) as r:
            assert r.status == 400 and "regions" in (await r.json())["error"]["message"]
        async with s.get(twin.url + "/_twin/profiles") as r:
            names = {p["name"] for p in (await r.json())["profiles"]}
        assert {"openstack", "lean-egress", "busy-csp", "legacy-nova", "tiny"} <= names
        async with s.delete(twin.url + "/_twin/clouds/edge-1") as r:
            assert r.status == 204
        async with s.get(twin.url + "/_twin/clouds/edge-1") as r:
            assert r.status == 404


async def test_reset_drops_objects_and_faults(twin):
    async with aiohttp.ClientSession() as s:
        token, ids = await make_servers(s, twin.url, 3)
        async with s.post(twin.url + "/_twin/faults", json={"kind": "latency", "fixed": 0.01}):
            pass
        async with s.post(twin.url + "/_twin/reset") as r:
            assert (await r.json()) == {"reset": "all", "faults_removed": 1}
        status, _ = await server_status(s, twin.url, token, ids[0])
        assert status == 404
        async with s.get(twin.url + "/_twin/state?cloud=cloud-1") as r:
            objects = (await r.json())["clouds"][0]["objects"]["RegionOne"]
        assert objects["servers"] == 0 and objects["ports"] == 0


async def test_snapshot_round_trip_keeps_objects_and_pending_transitions(tmp_path):
    path = tmp_path / "twin.json"
    async with TwinServer(port=0, config=TwinConfig(time_scale=1.0, seed=5)) as srv:
        async with aiohttp.ClientSession() as s:
            token, ids = await make_servers(s, srv.url, 4)
            await asyncio.sleep(1.5)  # BUILD -> ACTIVE (1 s +- 0.3)
            _, active = await server_status(s, srv.url, token, ids[0])
            assert active["server"]["status"] == "ACTIVE"
            async with s.post(f"{srv.url}/cloud-1/RegionOne/compute/v2.1/servers/{ids[1]}/action",
                              json={"os-stop": None}, headers={"X-Auth-Token": token}) as r:
                assert r.status == 202
            async with s.post(srv.url + "/_twin/snapshot", json={"path": str(path)}) as r:
                info = await r.json()
                assert r.status == 201 and info["objects"] >= 4 + 4 + 2
    doc = json.loads(path.read_text())
    assert doc["format"] == "cloudtwin-snapshot"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")], "no temporary file left"
    async with TwinServer(port=0, config=TwinConfig(time_scale=1.0, seed=5)) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.url + "/_twin/restore", json={"path": str(path)}) as r:
                info = await r.json()
                assert r.status == 200 and info["pending_transitions"] >= 1, info
            token = await login(s, srv.url)
            status, body = await server_status(s, srv.url, token, ids[0])
            assert status == 200 and body["server"]["status"] == "ACTIVE"
            assert body["server"]["addresses"], "ports came back with the server"
            # the stop that was in flight finishes after the restore
            for _ in range(40):
                _, body = await server_status(s, srv.url, token, ids[1])
                if body["server"]["status"] == "SHUTOFF":
                    break
                await asyncio.sleep(0.05)
            assert body["server"]["status"] == "SHUTOFF"
            # ids keep being unique after the restore (same seed: the generator skips what was issued)
            before = {o.id for r in srv.twin.clouds["cloud-1"].regions.values()
                      for st in r.services.values() for o in st.all_objects()}
            _, more = await make_servers(s, srv.url, 1, "cloud-1")
            after = [o.id for r in srv.twin.clouds["cloud-1"].regions.values()
                     for st in r.services.values() for o in st.all_objects()]
            assert more[0] not in ids and len(after) == len(set(after)) and set(after) > before


async def test_restore_of_a_bad_file_changes_nothing(twin, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    async with aiohttp.ClientSession() as s:
        token, ids = await make_servers(s, twin.url, 1)
        for path in (bad, other, tmp_path / "missing.json"):
            async with s.post(twin.url + "/_twin/restore", json={"path": str(path)}) as r:
                assert r.status == 400
        assert (await server_status(s, twin.url, token, ids[0]))[0] == 200


def test_snapshot_write_is_atomic(tmp_path, monkeypatch):
    twin = Twin(TwinConfig())
    twin.cloud("cloud-1")
    path = tmp_path / "s.json"
    snapshot.save(twin, path)
    good = path.read_text()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(snapshot.os, "replace", boom)
    with pytest.raises(OSError):
        snapshot.save(twin, path)
    assert path.read_text() == good, "the previous snapshot is intact"
    assert sorted(os.listdir(tmp_path)) == ["s.json"], "the temporary file was removed"


class Obj:
    def __init__(self, oid: str) -> None:
        self.id, self.state, self.transitions, self.due_at, self.due_state = oid, "", 0, None, None


def _walk(seed: int) -> list[tuple[str, str]]:
    life = build_lifecycles({"thing": {
        "states": {"A": {}, "B": {}, "C": {}, "ERR": {}},
        "stages": {"A": {"delay": 1, "jitter": 0.5, "next": [{"to": "B", "weight": 1}, {"to": "C", "weight": 1}],
                         "fail": {"probability": 0.2, "to": "ERR"}}},
        "actions": {}}})["thing"]
    sched = Scheduler(seed=seed, time_scale=0.0)
    seen = []
    objs = [Obj(f"o{i}") for i in range(40)]
    for o in objs:
        sched.enter(o, life, "A", Placement("c", "r"), lambda obj, st, msg: seen.append((obj.id, st)))
    sched.run_due(now=float("inf"))
    return sorted(seen)


def test_stages_are_deterministic_under_a_seed_and_use_weights_and_failures():
    a, b, c = _walk(1), _walk(1), _walk(2)
    assert a == b, "same seed, same outcome"
    assert a != c
    outcomes = [st for _, st in a]
    assert {"B", "C", "ERR"} <= set(outcomes)
    assert 2 <= outcomes.count("ERR") <= 20


def test_stage_data_and_profile_errors_are_clear(tmp_path):
    with pytest.raises(ProfileError, match="unknown state 'NOPE'"):
        load_lifecycles({"server": {"stages": {"BUILD": {"next": "NOPE"}}}})
    with pytest.raises(ProfileError, match="probability"):
        load_lifecycles({"server": {"stages": {"BUILD": {"fail": {"probability": 3}}}}})
    (tmp_path / "broken.yaml").write_text("name: broken\nextends: openstack\nflavors: [{name: x, vcpus: -1, ram: 1, disk: 1}]\n")
    with pytest.raises(ProfileError, match=r"broken.yaml: flavors\[0\].vcpus"):
        ProfileCatalog([tmp_path])
    (tmp_path / "broken.yaml").write_text("name: loop-a\nextends: loop-b\n")
    (tmp_path / "b.yaml").write_text("name: loop-b\nextends: loop-a\n")
    with pytest.raises(ProfileError, match="loops"):
        ProfileCatalog([tmp_path])
    (tmp_path / "b.yaml").write_text(": : :")
    with pytest.raises(ProfileError, match="not valid YAML"):
        ProfileCatalog([tmp_path])


def test_profile_stage_overrides_change_timings():
    twin = Twin(TwinConfig())
    lean = twin.add_cloud("l-1", "lean-egress")
    plain = twin.add_cloud("p-1", "openstack")
    assert lean.lifecycles["server"].stages["BUILD"].delay == 2.0
    assert plain.lifecycles["server"].stages["BUILD"].delay == 1.0
