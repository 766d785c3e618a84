"""Keystone v3 of Cloud-Twin: discovery, password and token logins, scoping, catalog, errors."""

from __future__ import annotations

import aiohttp

from twin_helpers import add_probe_route, sdk_connect


def auth_body(user="admin", password="admin", domain="cloud-1", project="admin"):
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": domain}}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}}}


async def test_discovery_documents(twin):
    async with aiohttp.ClientSession() as s:
        async with s.get(twin.url + "/") as r:
            assert r.status == 300
            doc = await r.json()
            assert doc["versions"]["values"][0]["id"] == "v3.14"
        for path in ("/v3", "/identity/v3"):
            async with s.get(twin.url + path) as r:
                assert r.status == 200
                assert (await r.json())["version"]["links"][0]["href"] == twin.url + "/v3/"
                assert r.headers["X-Openstack-Request-Id"].startswith("req-")


async def test_password_login_scopes_a_cloud_and_project(twin):
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body(project="tenant-a")) as r:
            assert r.status == 201
            token = r.headers["X-Subject-Token"]
            body = (await r.json())["token"]
        assert body["project"]["name"] == "tenant-a"
        assert body["project"]["domain"]["name"] == "cloud-1"
        assert body["expires_at"].endswith("Z") and "." in body["expires_at"]
        types = {svc["type"] for svc in body["catalog"]}
        assert types == {"compute", "network", "image", "load-balancer", "identity", "block-storage", "volumev3"}
        for vtype in ("block-storage", "volumev3"):
            volume = next(svc for svc in body["catalog"] if svc["type"] == vtype)
            assert {e["url"] for e in volume["endpoints"] if e["region"] == "RegionOne"} == {
                f"{twin.url}/cloud-1/RegionOne/volume/v3/{body['project']['id']}"}, "Cinder's URL holds the project"
        compute = next(svc for svc in body["catalog"] if svc["type"] == "compute")
        urls = {(e["region"], e["interface"]): e["url"] for e in compute["endpoints"]}
        assert urls[("RegionOne", "public")] == twin.url + "/cloud-1/RegionOne/compute/v2.1"
        assert urls[("default", "public")] == urls[("RegionOne", "public")], "CB-Spider's Region=default alias"
        # the token validates, then is revoked
        h = {"X-Auth-Token": token, "X-Subject-Token": token}
        async with s.get(twin.url + "/v3/auth/tokens", headers=h) as r:
            assert r.status == 200
        async with s.delete(twin.url + "/v3/auth/tokens", headers=h) as r:
            assert r.status == 204
        async with s.get(twin.url + "/v3/projects", headers=h) as r:
            assert r.status == 401
    # each domain is its own cloud, created from the default profile on first login
    assert set(twin.twin.clouds) == {"cloud-1"}
    assert twin.twin.clouds["cloud-1"].project("tenant-a") is not None


async def test_bad_logins_get_keystone_errors(twin):
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body(password="wrong")) as r:
            assert r.status == 401
            assert await r.json() == {"error": {"code": 401, "title": "Unauthorized",
                                                "message": "The request you have made requires authentication."}}
        async with s.post(twin.url + "/v3/auth/tokens", data=b"{not json",
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["title"] == "Bad Request"
        async with s.post(twin.url + "/v3/auth/tokens", json={"auth": {"identity": "x"}}) as r:
            assert r.status == 400
        async with s.get(twin.url + "/v3/projects") as r:
            assert r.status == 401
        async with s.get(twin.url + "/v3/nope", headers={"X-Auth-Token": "x"}) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == 404


async def test_token_from_one_cloud_is_refused_by_another(twin):
    add_probe_route(twin)
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body(domain="cloud-1")) as r:
            token1 = r.headers["X-Subject-Token"]
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body(domain="cloud-2")):
            pass
        async with s.get(twin.url + "/cloud-1/RegionOne/compute/v2.1/_probe",
                         headers={"X-Auth-Token": token1}) as r:
            assert r.status == 200
        async with s.get(twin.url + "/cloud-2/RegionOne/compute/v2.1/_probe",
                         headers={"X-Auth-Token": token1}) as r:
            assert r.status == 401
            assert await r.json() == {"unauthorized": {"code": 401, "message":
                                                       "The request you have made requires authentication."}}
        async with s.get(twin.url + "/cloud-9/RegionOne/compute/v2.1/_probe",
                         headers={"X-Auth-Token": token1}) as r:
            assert r.status == 404, "an unknown cloud in the URL"


async def test_profile_without_auto_projects_refuses_unknown_project(twin):
    t = twin.twin
    t.profiles.add("closed", {"extends": "openstack", "auth": {"auto_projects": False,
                                                               "users": [{"name": "ops", "password": "s3cret"}],
                                                               "projects": ["prod"]}})
    t.add_cloud("closed-1", "closed")
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens",
                          json=auth_body("ops", "s3cret", "closed-1", "prod")) as r:
            assert r.status == 201
        async with s.post(twin.url + "/v3/auth/tokens",
                          json=auth_body("ops", "s3cret", "closed-1", "other")) as r:
            assert r.status == 401
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body("admin", "admin", "closed-1", "prod")) as r:
            assert r.status == 401, "the profile replaced the default login"


def test_openstacksdk_logs_in_with_the_documented_default(threaded_twin):
    conn = sdk_connect(threaded_twin.url, cloud="cloud-7", project="admin", region="default")
    assert conn.session.get_token()
    assert conn.compute.get_endpoint() == threaded_twin.url + "/cloud-7/RegionOne/compute/v2.1"
    assert [p.name for p in conn.identity.projects()] == ["admin"]


async def test_services_and_endpoints_are_the_catalog(twin):
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body(project="tenant-a")) as r:
            token = r.headers["X-Subject-Token"]
            body = (await r.json())["token"]
        pid, cat = body["project"]["id"], body["catalog"]
        h = {"X-Auth-Token": token}
        async with s.get(twin.url + "/v3/services", headers=h) as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["links"] == {"self": twin.url + "/v3/services", "previous": None, "next": None}
        assert sorted((x["id"], x["type"], x["name"]) for x in doc["services"]) == sorted(
            (x["id"], x["type"], x["name"]) for x in cat)
        assert all(x["enabled"] and x["links"]["self"] == f"{twin.url}/v3/services/{x['id']}" for x in doc["services"])
        async with s.get(twin.url + "/v3/endpoints", headers=h) as r:
            assert r.status == 200
            endpoints = (await r.json())["endpoints"]
        # the same endpoints; the stored URL keeps the project as a template where the catalog fills it in
        listed = sorted((e["id"], e["service_id"], e["interface"], e["region"], e["region_id"],
                         e["url"].replace("$(project_id)s", pid)) for e in endpoints)
        expected = sorted((e["id"], x["id"], e["interface"], e["region"], e["region_id"], e["url"])
                          for x in cat for e in x["endpoints"])
        assert listed == expected and len(listed) == 3 * 2 * len(cat), "public/internal/admin in RegionOne + default"
        assert not any(pid in e["url"] for e in endpoints), "no token's project in a registered URL"
        compute = next(x for x in cat if x["type"] == "compute")
        async with s.get(twin.url + "/v3/services?type=compute", headers=h) as r:
            assert [x["id"] for x in (await r.json())["services"]] == [compute["id"]]
        async with s.get(twin.url + "/v3/services/" + compute["id"], headers=h) as r:
            assert r.status == 200 and (await r.json())["service"]["name"] == "nova"
        query = f"service_id={compute['id']}&interface=public&region_id=RegionOne"
        async with s.get(twin.url + "/v3/endpoints?" + query, headers=h) as r:
            doc = await r.json()
        (ep,) = doc["endpoints"]
        assert ep["url"] == twin.url + "/cloud-1/RegionOne/compute/v2.1"
        assert doc["links"]["self"] == twin.url + "/v3/endpoints?" + query
        async with s.get(twin.url + "/v3/endpoints/" + ep["id"], headers=h) as r:
            assert r.status == 200 and (await r.json())["endpoint"] == ep
        async with s.get(twin.url + "/v3/endpoints?interface=nope", headers=h) as r:
            assert (await r.json())["endpoints"] == []
        for kind in ("services", "endpoints"):
            async with s.get(f"{twin.url}/v3/{kind}/nope", headers=h) as r:
                assert r.status == 404
                assert await r.json() == {"error": {"code": 404, "title": "Not Found",
                                                    "message": f"Could not find {kind[:-1]}: nope."}}
            async with s.get(f"{twin.url}/v3/{kind}") as r:
                assert r.status == 401


def test_openstacksdk_lists_services_and_endpoints(threaded_twin):
    conn = sdk_connect(threaded_twin.url)
    services = {svc.type: svc for svc in conn.identity.services()}
    assert {"compute", "network", "image", "load-balancer", "identity"} <= set(services)
    (ep,) = list(conn.identity.endpoints(service_id=services["network"].id, interface="public",
                                         region_id="RegionOne"))
    assert ep.url == conn.network.get_endpoint().rstrip("/").removesuffix("/v2.0")
