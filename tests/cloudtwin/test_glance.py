"""Glance v2 on Cloud-Twin: the 300 version list the SDK needs, profile images (public, active, stable
ids, every region), user images (queued, deletable), filters, paging and Glance's text/plain errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_login, keystone_user

from cloudtwin.ids import stable_id

I = "/cloud-1/RegionOne/image"


async def login(s: aiohttp.ClientSession, url: str, project: str = "p1", cloud: str = "cloud-1") -> tuple[str, str]:
    token, doc = await keystone_login(s, url, project=project, cloud=cloud)
    return token, doc["project"]["id"]


@pytest.fixture
async def g(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, pid = await login(s, twin.url)

        async def call(method: str, path: str, body: Any = None, *, token_: str | None = None
                       ) -> tuple[int, Any, Any]:
            async with s.request(method, twin.url + I + path, json=body,
                                 headers={"X-Auth-Token": token_ or token}) as r:
                text = await r.text()
                data = await r.json() if r.content_type == "application/json" else text
                return r.status, data, r.headers

        call.pid = pid  # type: ignore[attr-defined]
        call.session = s  # type: ignore[attr-defined]
        yield call


async def test_root_is_a_300_version_list_without_a_token(twin):
    async with aiohttp.ClientSession() as s:
        await login(s, twin.url)   # a cloud exists once someone logged in to it
        async with s.get(twin.url + I) as r:
            assert r.status == 300
            doc = await r.json()
    assert doc["versions"][0]["id"] == "v2.16" and doc["versions"][0]["status"] == "CURRENT"
    assert doc["versions"][0]["links"][0]["href"].endswith(I + "/v2/")


async def test_profile_images_are_public_active_and_stable(g, twin):
    code, doc, _ = await g("GET", "/v2/images")
    assert code == 200 and doc["first"] == "/v2/images" and doc["schema"] == "/v2/schemas/images"
    assert "next" not in doc
    by_name = {i["name"]: i for i in doc["images"]}
    assert set(by_name) == {"ubuntu-22.04", "ubuntu-24.04", "cirros-0.6.2", "windows-2022"}
    u = by_name["ubuntu-22.04"]
    assert u["id"] == stable_id("image", "cloud-1", "ubuntu-22.04")
    assert (u["status"], u["visibility"], u["protected"]) == ("active", "public", False)
    assert (u["os_distro"], u["os_version"], u["os_type"], u["architecture"]) == ("ubuntu", "22.04", "linux", "x86_64")
    assert u["min_disk"] == 2 and u["size"] == 2361393152 and u["self"] == f"/v2/images/{u['id']}"
    code, one, _ = await g("GET", f"/v2/images/{u['id']}")
    assert code == 200 and one == u, "GET returns the bare object"
    code, text, h = await g("GET", "/v2/images/nope")
    assert code == 404 and h["Content-Type"].startswith("text/plain") and "No image found with ID nope" in text
    code, _, _ = await g("DELETE", f"/v2/images/{u['id']}")
    assert code == 403
    region2 = twin.twin.clouds["cloud-1"]
    assert all(u["id"] in r.glance.builtin for r in region2.regions.values())


async def test_filters_and_paging(g):
    code, doc, _ = await g("GET", "/v2/images?os_distro=ubuntu")
    assert sorted(i["name"] for i in doc["images"]) == ["ubuntu-22.04", "ubuntu-24.04"]
    code, doc, _ = await g("GET", "/v2/images?name=cirros-0.6.2")
    assert [i["name"] for i in doc["images"]] == ["cirros-0.6.2"]
    code, doc, _ = await g("GET", "/v2/images?visibility=private")
    assert doc["images"] == []
    code, doc, _ = await g("GET", "/v2/images?status=queued")
    assert doc["images"] == []
    seen = []
    path = "/v2/images?limit=3"
    while path:
        code, doc, _ = await g("GET", path)
        assert code == 200
        seen += [i["id"] for i in doc["images"]]
        path = doc.get("next")
        if path:
            assert path.startswith("/v2/images?")
    assert len(seen) == len(set(seen)) == 4
    code, _, _ = await g("GET", "/v2/images?marker=nope")
    assert code == 400
    code, doc, _ = await g("GET", "/v2/images?sort_key=name&sort_dir=asc")
    assert [i["name"] for i in doc["images"]] == sorted(i["name"] for i in doc["images"])


async def test_user_images_are_queued_private_and_deletable(g, twin):
    code, img, h = await g("POST", "/v2/images", {"name": "golden", "disk_format": "qcow2",
                                                 "container_format": "bare", "visibility": "private",
                                                 "tags": ["a", "b"], "os_distro": "debian"})
    assert code == 201 and img["status"] == "queued" and img["owner"] == g.pid
    assert img["os_distro"] == "debian" and img["tags"] == ["a", "b"] and img["size"] is None
    assert h["Location"].endswith(f"/v2/images/{img['id']}")
    code, doc, _ = await g("GET", "/v2/images?tag=a&tag=b")
    assert [i["id"] for i in doc["images"]] == [img["id"]]
    code, doc, _ = await g("GET", "/v2/images?visibility=private")
    assert [i["id"] for i in doc["images"]] == [img["id"]]
    token2, _ = await keystone_user(g.session, twin.url, project="p2")   # a member, not an admin
    code, _, _ = await g("GET", f"/v2/images/{img['id']}", token_=token2)
    assert code == 404, "private images are invisible to other projects"
    code, _, _ = await g("DELETE", f"/v2/images/{img['id']}", token_=token2)
    assert code == 404
    code, text, _ = await g("POST", "/v2/images", {"name": "x", "status": "active"})
    assert code == 403 and "read-only" in text
    code, text, _ = await g("POST", "/v2/images", {"name": "x", "disk_format": "floppy"})
    assert code == 400
    code, p, _ = await g("POST", "/v2/images", {"name": "keep", "protected": True})
    code, _, _ = await g("DELETE", f"/v2/images/{p['id']}")
    assert code == 403
    code, _, _ = await g("DELETE", f"/v2/images/{img['id']}")
    assert code == 204
    code, _, _ = await g("GET", f"/v2/images/{img['id']}")
    assert code == 404
    code, doc, _ = await g("GET", "/v2/schemas/image")
    assert code == 200 and doc["name"] == "image"


def test_openstacksdk_images(threaded_twin):
    from twin_helpers import sdk_connect
    import openstack.exceptions as exc

    conn = sdk_connect(threaded_twin.url)
    images = {i.name: i for i in conn.image.images()}
    assert images["windows-2022"].os_type == "windows" and images["windows-2022"].min_disk == 40
    got = conn.image.get_image(images["cirros-0.6.2"].id)
    assert got.name == "cirros-0.6.2" and got.visibility == "public"
    assert conn.image.find_image("ubuntu-24.04").id == images["ubuntu-24.04"].id
    with pytest.raises(exc.NotFoundException):
        conn.image.get_image("nope")
    mine = conn.image.create_image(name="mine", disk_format="raw", container_format="bare", allow_duplicates=True)
    assert mine.status == "queued"
    conn.image.delete_image(mine)
    assert conn.image.find_image("mine") is None
