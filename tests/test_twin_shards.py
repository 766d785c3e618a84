"""Cloud-Twin as two shard processes: each cloud lives on one shard, any shard answers a login, the
catalog points at the owner, a token works through either shard, ``/_twin`` reaches the right shard or
all of them, and a shard killed with SIGKILL takes only its own clouds down, with fast, clear errors.

Real clients only: openstacksdk, a Spider subprocess with CLOUDTWIN connections, plain HTTP. The tests
run in file order; the last one kills a shard."""

from __future__ import annotations

import time

import pytest
import requests

from cloudtwin import cluster
from cloudtwin.identity.fernet import KeyRepository
from spider_helpers import SpiderProcess, TwinSubprocess, free_port
from test_cloudtwin_spider import register

def _sdk(url: str, cloud: str):
    import openstack

    return openstack.connect(auth_url=f"{url}/v3", username="admin", password="admin", project_name="p1",
                             user_domain_name=cloud, project_domain_name=cloud, region_name="RegionOne",
                             load_yaml_config=False, load_envvars=False)


def login(url: str, cloud: str, project: str = "p1") -> requests.Response:
    return requests.post(url + "/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": "admin", "domain": {"name": cloud}}}},
        "scope": {"project": {"name": project, "domain": {"name": cloud}}}}})


def endpoint(token_doc: dict, stype: str = "network") -> str:
    [svc] = [s for s in token_doc["catalog"] if s["type"] == stype]
    return next(e["url"] for e in svc["endpoints"] if e["interface"] == "public" and e["region"] == "RegionOne")


@pytest.mark.parametrize("doc,words", [
    ("- not a mapping", "a mapping with 'shards' and 'clouds'"),
    ({"shards": {"a": {"address": "127.0.0.1"}}, "clouds": [{"match": "*", "shard": "a"}]}, "shards.a.address"),
    ({"shards": {"a": {"address": "h:1", "weight": 2}}, "clouds": [{"match": "*", "shard": "a"}]}, "weight"),
    ({"shards": {"a": {"address": "h:1"}}, "clouds": [{"match": "*", "shard": "z"}]}, "unknown shard 'z'"),
    ({"shards": {"a": {"address": "h:1"}}, "clouds": [{"match": "*"}]}, "exactly one of 'shard'"),
    ({"shards": {"a": {"address": "h:1"}}, "clouds": []}, "clouds"),
    ({"shards": {"a": {"address": "h:1"}, "b": {"address": "h:1"}}, "clouds": [{"match": "*", "shard": "a"}]},
     "also shard 'a'"),
    ({"shards": {"a": {"address": "h:1"}}, "clouds": [{"match": "*", "shard": "a"}], "timeouts": {"connect": 0}},
     "timeouts.connect"),
])
def test_cluster_file_errors_name_the_field(doc, words):
    with pytest.raises(cluster.ClusterError) as err:
        cluster.parse(doc, "c.yaml")
    assert str(err.value).startswith("c.yaml: ") and words in str(err.value)


def test_cluster_map_places_clouds_by_first_matching_rule():
    m = cluster.parse({"shards": {"a": {"address": "127.0.0.1:1"}, "b": {"address": "127.0.0.1:2",
                                                                          "url": "http://10.0.0.2:2"}},
                       "clouds": [{"match": "cloud-1", "shard": "b", "profile": "busy-csp"},
                                  {"match": "load-*", "spread": ["a", "b"]}, {"match": "cloud-*", "shard": "a"}]})
    assert m.owner("cloud-1").name == "b" and m.owner("cloud-7").name == "a" and m.owner("other") is None
    assert m.shards["b"].url == "http://10.0.0.2:2" and m.shards["a"].url == "http://127.0.0.1:1"
    spread = {m.owner(f"load-{i}").name for i in range(50)}
    assert spread == {"a", "b"} and m.owner("load-3") == m.owner("load-3")
    assert [(r.match, r.profile) for r in m.cloud_rules("b")] == [("cloud-1", "busy-csp")]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shard a holds cloud-1 (and anything unnamed), shard b holds cloud-2 and the b-* clouds."""
    root = tmp_path_factory.mktemp("shards")
    ports = {"a": free_port(), "b": free_port()}
    path = root / "cluster.yaml"
    KeyRepository(root / "keys")     # Keystone's fernet_setup, once, before the shards read it
    path.write_text(cluster.dump({n: f"127.0.0.1:{p}" for n, p in ports.items()}, [
        {"match": "cloud-2", "shard": "b", "profile": "lean-egress"},
        {"match": "b-*", "shard": "b"},
        {"match": "*", "shard": "a"}], key_repo="keys"))
    procs = {n: TwinSubprocess(time_scale=0.05, shard=(path, n, p)) for n, p in ports.items()}
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def admin(url: str, method: str, path: str, body=None, status: int = 200):
    r = requests.request(method, url + "/_twin" + path, json=body, timeout=30)
    assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def test_any_shard_answers_a_login_and_the_catalog_points_at_the_owner(shards):
    a, b = shards["a"].url, shards["b"].url
    for via in (a, b):
        for cloud, owner in (("cloud-1", a), ("cloud-2", b)):
            r = login(via, cloud)
            assert r.status_code == 201, r.text
            assert r.headers["X-Twin-Shard"] == ("a" if owner == a else "b")
            doc = r.json()["token"]
            assert endpoint(doc).startswith(owner + f"/{cloud}/RegionOne/network"), endpoint(doc)
            assert endpoint(doc, "compute").startswith(owner)
    bad = login(a, "cloud-2", project="p1")
    bad_pw = requests.post(a + "/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "admin", "password": "nope",
                                                       "domain": {"name": "cloud-2"}}}}}})
    assert bad.status_code == 201 and bad_pw.status_code == 401, "the owner checks the password"
    assert "error" in bad_pw.json()


def test_openstacksdk_on_clouds_of_both_shards_through_one_shard(shards):
    a, b = shards["a"].url, shards["b"].url
    made = {}
    for cloud in ("cloud-1", "cloud-2"):
        conn = _sdk(a, cloud)     # both logins through shard a
        net = conn.network.create_network(name=f"net-{cloud}")
        conn.network.create_subnet(network_id=net.id, name=f"sub-{cloud}", cidr="10.9.0.0/24", ip_version=4)
        sg = conn.network.create_security_group(name=f"sg-{cloud}")
        server = conn.compute.create_server(name=f"vm-{cloud}", image_id=conn.image.find_image("ubuntu-22.04").id,
                                            flavor_id=conn.compute.find_flavor("m1.small").id,
                                            networks=[{"uuid": net.id}])
        conn.compute.wait_for_server(server, wait=30, interval=0.2)
        made[cloud] = (net.id, sg.id)
        conn.close()
    # each cloud's objects live on its own shard only
    [c1] = admin(a, "GET", "/state?cloud=cloud-1&shard=a")["clouds"]
    [c2] = admin(b, "GET", "/state?cloud=cloud-2&shard=b")["clouds"]
    assert c1["objects"]["RegionOne"]["servers"] == 1 and c2["objects"]["RegionOne"]["servers"] == 1
    assert admin(a, "GET", "/state?cloud=cloud-2&shard=a", status=404) is not None
    assert [c["name"] for c in admin(b, "GET", "/clouds?shard=b")["clouds"]] == ["cloud-2"]
    # the lean-egress profile the cluster file names for cloud-2 is applied by its owner
    assert c2["profile"] == "lean-egress" and c1["profile"] == "openstack"


def test_a_token_taken_on_one_shard_works_on_the_other(shards):
    a, b = shards["a"].url, shards["b"].url
    r = login(b, "cloud-1")                     # taken on b, for a cloud of a
    token = r.headers["X-Subject-Token"]
    for via in (a, b):                          # used on both shards
        got = requests.get(f"{via}/cloud-1/RegionOne/network/v2.0/networks", headers={"X-Auth-Token": token},
                           timeout=30)
        assert got.status_code == 200, got.text
        assert "net-cloud-1" in [n["name"] for n in got.json()["networks"]]
        assert got.headers["X-Twin-Shard"] == "a"
        ok = requests.get(f"{via}/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token},
                          timeout=30)
        assert ok.status_code == 200 and ok.json()["token"]["project"]["name"] == "p1", ok.text
        projects = requests.get(f"{via}/v3/auth/projects", headers={"X-Auth-Token": token}, timeout=30)
        assert projects.status_code == 200 and "p1" in [p["name"] for p in projects.json()["projects"]]
    # renewed (token method) on b, whose keys read a's token; the new token works on a
    renewed = requests.post(f"{b}/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}, "scope": {"project": {"name": "p1",
                                                                           "domain": {"name": "cloud-1"}}}}})
    assert renewed.status_code == 201, renewed.text
    again = requests.get(f"{a}/cloud-1/RegionOne/network/v2.0/networks",
                         headers={"X-Auth-Token": renewed.headers["X-Subject-Token"]}, timeout=30)
    assert again.status_code == 200
    # a cloud-1 token is not a cloud-2 token, whichever shard is asked
    wrong = requests.get(f"{a}/cloud-2/RegionOne/network/v2.0/networks", headers={"X-Auth-Token": token},
                         timeout=30)
    assert wrong.status_code == 401 and wrong.headers["X-Twin-Shard"] == "b"


def test_logins_by_id_alone_find_their_shard(shards):
    """An application credential or a user given by id (no domain) is placed by the shards themselves."""
    a, b = shards["a"].url, shards["b"].url
    r = login(b, "cloud-2")
    token, user_id = r.headers["X-Subject-Token"], r.json()["token"]["user"]["id"]
    made = requests.post(f"{b}/v3/users/{user_id}/application_credentials", headers={"X-Auth-Token": token},
                         json={"application_credential": {"name": "ci", "secret": "s3cret-s3cret"}}, timeout=30)
    assert made.status_code == 201, made.text
    cred = made.json()["application_credential"]
    for via in (a, b):
        got = requests.post(via + "/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
            "methods": ["application_credential"], "application_credential": {"id": cred["id"],
                                                                             "secret": "s3cret-s3cret"}}}})
        assert got.status_code == 201 and got.headers["X-Twin-Shard"] == "b", got.text
        by_id = requests.post(via + "/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
            "methods": ["password"], "password": {"user": {"id": user_id, "password": "admin"}}}}})
        assert by_id.status_code == 201 and by_id.json()["token"]["user"]["domain"]["name"] == "cloud-2", by_id.text
    wrong = requests.post(a + "/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["application_credential"], "application_credential": {"id": cred["id"], "secret": "nope"}}}})
    assert wrong.status_code == 401
    domain_id = r.json()["token"]["user"]["domain"]["id"]      # a domain by id: the shards say whose it is
    by_domain_id = requests.post(a + "/v3/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "admin", "password": "admin",
                                                       "domain": {"id": domain_id}}}}}})
    assert by_domain_id.status_code == 201 and by_domain_id.headers["X-Twin-Shard"] == "b", by_domain_id.text


def test_image_data_streams_through_a_shard_that_does_not_hold_the_cloud(shards):
    """Glance's upload and download of cloud-2 (on b) sent to a: 3 MiB each way, bytes unchanged."""
    a = shards["a"].url
    r = login(a, "cloud-2")
    token = r.headers["X-Subject-Token"]
    glance = endpoint(r.json()["token"], "image").replace(shards["b"].url, a)   # the catalog says b; ask a
    h = {"X-Auth-Token": token}
    made = requests.post(glance + "/v2/images", json={"name": "big", "disk_format": "raw",
                                                      "container_format": "bare"}, headers=h, timeout=30)
    assert made.status_code == 201, made.text
    data = bytes(range(256)) * (3 * 4096)
    put = requests.put(f"{glance}/v2/images/{made.json()['id']}/file", data=data, timeout=60,
                       headers={**h, "Content-Type": "application/octet-stream"})
    assert put.status_code == 204 and put.headers["X-Twin-Shard"] == "b", put.text
    got = requests.get(f"{glance}/v2/images/{made.json()['id']}/file", headers=h, timeout=60)
    assert got.status_code == 200 and got.content == data and got.headers["X-Twin-Shard"] == "b"


def test_admin_calls_reach_the_right_shard_or_all(shards, tmp_path):
    a, b = shards["a"].url, shards["b"].url
    info = admin(b, "GET", "/cluster")
    assert info["me"] == "b" and all(s["health"]["status"] == "ok" for s in info["shards"].values())
    names = sorted(c["name"] for c in admin(b, "GET", "/clouds")["clouds"])
    assert {"cloud-1", "cloud-2"} <= set(names)
    # a cloud created through a lands on its owner b
    admin(a, "POST", "/clouds", {"name": "b-extra"}, status=201)
    assert "b-extra" in [c["name"] for c in admin(b, "GET", "/clouds?shard=b")["clouds"]]
    # a fault on one named cloud goes to its owner; a glob goes everywhere, with one id
    one = admin(a, "POST", "/faults", {"kind": "error", "status": 500, "match": {"cloud": "cloud-2",
                                       "operation": "network:network:list"}}, status=201)["fault"]
    wide = admin(b, "POST", "/faults", {"kind": "latency", "fixed": 0.001,
                                        "match": {"cloud": "cloud-*"}}, status=201)["fault"]
    listed = {f["id"]: f for f in admin(a, "GET", "/faults")["faults"]}
    assert listed[one["id"]]["shards"] == ["b"] and sorted(listed[wide["id"]]["shards"]) == ["a", "b"]
    token = login(a, "cloud-2").headers["X-Subject-Token"]
    hit = requests.get(f"{a}/cloud-2/RegionOne/network/v2.0/networks", headers={"X-Auth-Token": token}, timeout=30)
    assert hit.status_code == 500 and hit.headers["X-Twin-Fault"] == f"{one['id']}:error"
    events = admin(a, "GET", "/events?kind=fault.error")
    assert [e["shard"] for e in events["events"]] == ["b"] and events["last_seq"].startswith("a:")
    later = admin(a, "GET", f"/events?kind=fault.error&since={events['last_seq']}")
    assert later["events"] == []
    assert admin(a, "GET", f"/faults/{wide['id']}")["fault"]["shards"] == ["a", "b"]
    requests.delete(f"{a}/_twin/faults/{one['id']}", timeout=30).raise_for_status()
    assert admin(b, "GET", f"/faults/{one['id']}", status=404)
    # a shipped scenario: each rule to the owner of its plain cloud name (region-outage: cloud-2 on b)
    run = admin(a, "POST", "/scenarios", {"name": "region-outage"}, status=201)
    assert run["scenario"] == "region-outage" and len(run["faults"]) == 1
    assert admin(b, "GET", "/faults?shard=b")["faults"][-1]["id"] == run["faults"][0]["id"]
    assert run["faults"][0]["id"] not in [f["id"] for f in admin(a, "GET", "/faults?shard=a")["faults"]]
    assert admin(a, "DELETE", "/faults")["removed"] == 2
    assert admin(a, "GET", "/faults")["faults"] == []
    state = admin(a, "GET", "/state")
    assert set(state["shards"]) == {"a", "b"} and state["faults"] == 0
    assert admin(a, "GET", "/state?cloud=cloud-2")["clouds"][0]["profile"] == "lean-egress"
    assert admin(a, "GET", "/cluster?shard=nope", status=404)["error"]["message"].startswith("shard 'nope'")
    # snapshots: every shard writes its own file next to the path asked for
    saved = admin(b, "POST", "/snapshot", {"path": str(tmp_path / "twin.json")}, status=201)
    assert sorted(saved["shards"]) == ["a", "b"]
    assert (tmp_path / "twin.a.json").exists() and (tmp_path / "twin.b.json").exists()
    assert "cloud-2" in (tmp_path / "twin.b.json").read_text() and "cloud-2" not in (tmp_path / "twin.a.json").read_text()


def test_spider_cloudtwin_flows_on_both_shards_then_a_shard_dies(shards, tmp_path):
    """Spider's CLOUDTWIN driver through shard a's Keystone for clouds of both shards; then SIGKILL of
    shard b: cloud-2 fails fast and clearly, cloud-1 (and the admin API over a) keeps working."""
    a = shards["a"].url
    limits = tmp_path / "limits.yaml"   # no retries: the error must come at once
    limits.write_text("connections:\n  cloudtwin-cloud-2-config: {retries: 0}\n")
    with SpiderProcess(tmp_path / "spider", env={"SPIDER_LIMITS_FILE": str(limits)}) as spider:
        register(spider.url, a, ["cloud-1", "cloud-2"])
        for cloud in ("cloud-1", "cloud-2"):
            body = {"ConnectionName": f"cloudtwin-{cloud}-config", "ReqInfo": {
                "Name": f"vpc-{cloud}", "IPv4_CIDR": "10.20.0.0/16",
                "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.20.1.0/24"}]}}
            r = requests.post(spider.url + "/vpc", json=body, timeout=60)
            assert r.status_code == 200, r.text
        proc = shards["b"].proc
        assert proc is not None
        proc.kill()
        proc.wait(10)
        # cloud-2's clouds: a clear error, fast (no hang) ...
        t0 = time.monotonic()
        r = login(a, "cloud-2")
        assert time.monotonic() - t0 < 3 and r.status_code == 503, r.text
        assert "shard 'b'" in r.json()["error"]["message"]
        t0 = time.monotonic()
        r = requests.get(spider.url + "/vpc", params={"ConnectionName": "cloudtwin-cloud-2-config"}, timeout=60)
        took = time.monotonic() - t0
        assert r.status_code == 500 and took < 10, (took, r.text)
        # ... and cloud-1 carries on, through the same shard and the same Spider
        r = requests.get(spider.url + "/vpc", params={"ConnectionName": "cloudtwin-cloud-1-config"}, timeout=60)
        assert r.status_code == 200 and [v["IId"]["NameId"] for v in r.json()["vpc"]] == ["vpc-cloud-1"], r.text
        conn = _sdk(a, "cloud-1")
        assert "net-cloud-1" in [n.name for n in conn.network.networks()]
        conn.close()
        clouds = admin(a, "GET", "/clouds")
        assert "b" in clouds["unreachable"] and "cloud-1" in [c["name"] for c in clouds["clouds"]]
        assert admin(a, "GET", "/cluster")["shards"]["b"]["health"] is None


def test_a_shard_needs_the_file_its_name_and_shared_keys(tmp_path):
    import argparse

    from cloudtwin import cli as twin_cli

    path = tmp_path / "c.yaml"
    path.write_text(cluster.dump({"a": "127.0.0.1:1"}, [{"match": "*", "shard": "a"}]))
    parser = argparse.ArgumentParser()
    twin_cli.add_arguments(parser)
    for argv, words in ((["--shard", "a"], "--shard needs --cluster"),
                        (["--cluster", str(path)], "--cluster needs --shard"),
                        (["--cluster", str(path), "--shard", "z"], "shard 'z' is not in"),
                        (["--cluster", str(path), "--shard", "a", "--port", "9"], "drop --address/--port"),
                        (["--cluster", str(path), "--shard", "a"], "share their Fernet keys")):
        with pytest.raises(SystemExit) as err:
            twin_cli.load_cluster(parser.parse_args(argv))
        assert words in str(err.value), argv
    args = parser.parse_args(["--cluster", str(path), "--shard", "a", "--keystone-key-repo", str(tmp_path / "k")])
    assert twin_cli.load_cluster(args).shards["a"].port == 1
