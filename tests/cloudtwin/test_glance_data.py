"""Glance v2 image data and the APIs around it on Cloud-Twin: upload and download streamed through the
image directory (hashes, ranges, the size cap, cleanup), stage + import into several stores, JSON-patch
rules, members and visibility, tags, deactivation, tasks and metadefs."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from twin_helpers import FAST, keystone_login, keystone_user

I = "/cloud-1/RegionOne/image"
PATCH = "application/openstack-images-v2.1-json-patch"


@pytest.fixture
async def small_twin(tmp_path: Path) -> Any:
    """A twin whose images live in ``tmp_path/images`` and may not exceed 64 KiB."""
    srv = await TwinServer(port=0, config=TwinConfig(time_scale=FAST, image_dir=str(tmp_path / "images"),
                                                     image_max_bytes=64 * 1024)).start()
    try:
        yield srv
    finally:
        await srv.stop()


class Glance:
    def __init__(self, s: aiohttp.ClientSession, url: str, token: str) -> None:
        self.s, self.url, self.token = s, url + I, token

    async def __call__(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                       ctype: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        h = {"X-Auth-Token": self.token, **(headers or {})}
        kw: dict[str, Any] = {}
        if data is not None:
            h["Content-Type"] = "application/octet-stream"
            kw["data"] = data
        elif ctype is not None:
            import json
            h["Content-Type"] = ctype
            kw["data"] = json.dumps(body)
        elif body is not None:
            kw["json"] = body
        async with self.s.request(method, self.url + path, headers=h, **kw) as r:
            raw = await r.read()
            if r.content_type == "application/json":
                return r.status, await r.json(), r.headers
            return r.status, raw, r.headers

    async def image(self, **body: Any) -> dict[str, Any]:
        code, img, _ = await self("POST", "/v2/images", {"disk_format": "raw", "container_format": "bare", **body})
        assert code == 201, img
        return img  # type: ignore[no-any-return]

    async def wait(self, image_id: str, status: str) -> dict[str, Any]:
        for _ in range(200):
            _, img, _ = await self("GET", f"/v2/images/{image_id}")
            if img["status"] == status:
                return img  # type: ignore[no-any-return]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{image_id} never reached {status}: {img}")


@pytest.fixture
async def glance(small_twin: Any) -> Any:
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_login(s, small_twin.url, project="admin")
        yield Glance(s, small_twin.url, token)


async def test_upload_download_hashes_ranges_and_cap(glance: Glance, small_twin: Any, tmp_path: Path) -> None:
    img = await glance.image(name="data")
    code, body, h = await glance("GET", f"/v2/images/{img['id']}/file")
    assert code == 204 and body == b""                     # no data yet
    payload = bytes(range(256)) * 100                      # 25,600 bytes
    code, _, _ = await glance("PUT", f"/v2/images/{img['id']}/file", data=payload)
    assert code == 204
    _, shown, _ = await glance("GET", f"/v2/images/{img['id']}")
    assert shown["status"] == "active" and shown["size"] == len(payload) and shown["stores"] == "file"
    assert shown["checksum"] == hashlib.md5(payload).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == ("sha512", hashlib.sha512(payload).hexdigest())
    assert list((tmp_path / "images").rglob(img["id"]))     # on disk, under the configured directory
    code, body, h = await glance("GET", f"/v2/images/{img['id']}/file")
    assert code == 200 and body == payload and h["Content-MD5"] == shown["checksum"]
    code, body, h = await glance("GET", f"/v2/images/{img['id']}/file", headers={"Range": "bytes=10-19"})
    assert code == 206 and body == payload[10:20] and h["Content-Range"] == f"bytes 10-19/{len(payload)}"
    code, _, _ = await glance("PUT", f"/v2/images/{img['id']}/file", data=b"again")
    assert code == 409                                      # active: no second upload
    big = await glance.image(name="big")
    code, body, _ = await glance("PUT", f"/v2/images/{big['id']}/file", data=b"x" * (64 * 1024 + 1))
    assert code == 413 and b"size limit" in body
    _, shown, _ = await glance("GET", f"/v2/images/{big['id']}")
    assert shown["status"] == "queued" and shown["size"] is None   # nothing half-written stays
    assert not [p for p in (tmp_path / "images").rglob("*") if big["id"] in p.name]
    assert (await glance("DELETE", f"/v2/images/{img['id']}"))[0] == 204
    assert not list((tmp_path / "images").rglob(img["id"]))


async def test_stage_import_copy_and_store_delete(glance: Glance) -> None:
    _, info, _ = await glance("GET", "/v2/info/import")
    assert info["import-methods"]["value"] == ["glance-direct", "copy-image", "glance-download"]
    _, stores, _ = await glance("GET", "/v2/info/stores")
    assert [s["id"] for s in stores["stores"]] == ["file", "cheap"] and stores["stores"][0]["default"] == "true"
    img = await glance.image(name="staged")
    code, _, _ = await glance("POST", f"/v2/images/{img['id']}/import", {"method": {"name": "glance-direct"}})
    assert code == 409                                      # nothing staged yet
    assert (await glance("PUT", f"/v2/images/{img['id']}/stage", data=b"abc" * 100))[0] == 204
    assert (await glance("GET", f"/v2/images/{img['id']}"))[1]["status"] == "uploading"
    code, _, h = await glance("POST", f"/v2/images/{img['id']}/import",
                              {"method": {"name": "glance-direct"}, "stores": ["cheap"]})
    assert code == 202
    done = await glance.wait(img["id"], "active")
    assert done["stores"] == "cheap" and done["size"] == 300 and done["os_glance_importing_to_stores"] == ""
    _, tasks, _ = await glance("GET", f"/v2/images/{img['id']}/tasks")
    [task] = tasks["tasks"]
    assert task["status"] == "success" and task["request_id"] == h["X-Openstack-Request-Id"]
    code, _, _ = await glance("POST", f"/v2/images/{img['id']}/import",
                              {"method": {"name": "copy-image"}, "all_stores": True})
    assert code == 202
    for _ in range(100):
        _, shown, _ = await glance("GET", f"/v2/images/{img['id']}")
        if shown.get("stores") == "cheap,file":
            break
        await asyncio.sleep(0.02)
    assert shown["stores"] == "cheap,file"
    assert (await glance("DELETE", f"/v2/stores/cheap/{img['id']}"))[0] == 204
    assert (await glance("GET", f"/v2/images/{img['id']}"))[1]["stores"] == "file"
    assert (await glance("DELETE", f"/v2/stores/file/{img['id']}"))[0] == 409    # the last copy stays
    code, body, _ = await glance("POST", f"/v2/images/{img['id']}/import", {"method": {"name": "web-download",
                                                                                      "uri": "http://x"}})
    assert code == 400 and b"web-download" in body


async def test_json_patch_rules(glance: Glance) -> None:
    img = await glance.image(name="p", tags=["a"])
    path = f"/v2/images/{img['id']}"
    code, out, _ = await glance("PATCH", path, [
        {"op": "replace", "path": "/name", "value": "renamed"}, {"op": "add", "path": "/os_distro", "value": "debian"},
        {"op": "add", "path": "/tags", "value": ["a", "b", "a"]}], ctype=PATCH)
    assert code == 200 and out["name"] == "renamed" and out["os_distro"] == "debian" and out["tags"] == ["a", "b"]
    cases = [([{"op": "replace", "path": "/status", "value": "active"}], 403),
             ([{"op": "add", "path": "/os_glance_x", "value": "1"}], 403),
             ([{"op": "remove", "path": "/nope"}], 409),
             ([{"op": "replace", "path": "/nope", "value": "1"}], 409),
             ([{"op": "remove", "path": "/name"}], 403),
             ([{"op": "replace", "path": "/min_ram", "value": "1"}], 400),
             ([{"op": "add", "path": "/x", "value": 1}], 400),
             ([{"op": "move", "path": "/name"}], 400),
             ([{"op": "replace", "path": "/disk_format", "value": "exe"}], 400)]
    for ops, want in cases:
        code, body, _ = await glance("PATCH", path, ops, ctype=PATCH)
        assert code == want, (ops, code, body)
    code, _, _ = await glance("PATCH", path, [{"op": "replace", "path": "/name", "value": "x"}],
                              ctype="application/json")
    assert code == 415
    # all or nothing: the valid first change of a refused patch is not kept
    code, _, _ = await glance("PATCH", path, [{"op": "replace", "path": "/name", "value": "kept?"},
                                              {"op": "replace", "path": "/status", "value": "x"}], ctype=PATCH)
    assert code == 403 and (await glance("GET", path))[1]["name"] == "renamed"
    code, out, _ = await glance("PATCH", path, [{"remove": "/os_distro"}],
                                ctype="application/openstack-images-v2.0-json-patch")
    assert code == 200 and "os_distro" not in out


async def test_members_tags_deactivation_and_metadefs(small_twin: Any, glance: Glance) -> None:
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, small_twin.url, project="friend")
        friend = Glance(s, small_twin.url, token)
        friend_pid = doc["project"]["id"]
        img = await glance.image(name="shared", visibility="shared")
        assert (await friend("GET", f"/v2/images/{img['id']}"))[0] == 404
        code, member, _ = await glance("POST", f"/v2/images/{img['id']}/members", {"member": friend_pid})
        assert code == 200 and member["status"] == "pending"
        assert (await glance("POST", f"/v2/images/{img['id']}/members", {"member": friend_pid}))[0] == 409
        assert (await friend("GET", f"/v2/images/{img['id']}"))[0] == 200
        listed = (await friend("GET", "/v2/images"))[1]["images"]
        assert img["id"] not in [i["id"] for i in listed]          # pending: not in the default list
        code, _, _ = await glance("PUT", f"/v2/images/{img['id']}/members/{friend_pid}", {"status": "accepted"})
        assert code == 403                                          # only the member decides
        code, m, _ = await friend("PUT", f"/v2/images/{img['id']}/members/{friend_pid}", {"status": "accepted"})
        assert code == 200 and m["status"] == "accepted"
        assert img["id"] in [i["id"] for i in (await friend("GET", "/v2/images"))[1]["images"]]
        private = await glance.image(name="private", visibility="private")
        assert (await glance("POST", f"/v2/images/{private['id']}/members", {"member": friend_pid}))[0] == 403
        assert (await friend("PUT", f"/v2/images/{img['id']}/tags/t1"))[0] == 403   # not the owner
    assert (await glance("PUT", f"/v2/images/{img['id']}/tags/t1"))[0] == 204
    assert (await glance("DELETE", f"/v2/images/{img['id']}/tags/nope"))[0] == 404
    assert (await glance("POST", f"/v2/images/{img['id']}/actions/deactivate"))[0] == 403  # queued
    await glance("PUT", f"/v2/images/{img['id']}/file", data=b"bytes")
    assert (await glance("POST", f"/v2/images/{img['id']}/actions/deactivate"))[0] == 204
    assert (await glance("GET", f"/v2/images/{img['id']}"))[1]["status"] == "deactivated"
    assert (await glance("POST", f"/v2/images/{img['id']}/actions/reactivate"))[0] == 204
    _, rts, _ = await glance("GET", "/v2/metadefs/resource_types")
    assert "OS::Glance::Image" in [r["name"] for r in rts["resource_types"]]
    _, nss, _ = await glance("GET", "/v2/metadefs/namespaces")
    assert "OS::Compute::CPUPinning" in [n["namespace"] for n in nss["namespaces"]]
    code, ns, _ = await glance("POST", "/v2/metadefs/namespaces", {"namespace": "my-ns", "protected": True})
    assert code == 201 and ns["visibility"] == "private"
    assert (await glance("POST", "/v2/metadefs/namespaces", {"namespace": "my-ns"}))[0] == 409
    code, prop, _ = await glance("POST", "/v2/metadefs/namespaces/my-ns/properties",
                                 {"name": "speed", "title": "Speed", "type": "integer"})
    assert code == 201 and prop["title"] == "Speed"
    assert (await glance("POST", "/v2/metadefs/namespaces/my-ns/properties", {"name": "x", "type": "integer"}))[0] == 400
    assert (await glance("DELETE", "/v2/metadefs/namespaces/my-ns"))[0] == 403          # protected
    assert (await glance("PUT", "/v2/metadefs/namespaces/my-ns", {"namespace": "my-ns", "protected": False}))[0] == 200
    assert (await glance("DELETE", "/v2/metadefs/namespaces/my-ns"))[0] == 204
    for name in ("image", "members", "task", "metadefs/namespace", "metadefs/resource_types"):
        code, schema, _ = await glance("GET", f"/v2/schemas/{name}")
        assert code == 200 and schema["name"] in (name.split("/")[-1], "resource_type_associations")
