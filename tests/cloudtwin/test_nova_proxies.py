"""Nova's proxy APIs on Cloud-Twin (below microversion 2.36): security groups and rules, floating IPs,
images and networks served over the region's own Neutron and Glance objects, Nova's validation and
messages, the 404 from 2.36, and unmodified openstacksdk over the images proxy."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from twin_helpers import keystone_login

C = "/cloud-1/RegionOne/compute/v2.1"
N = "/cloud-1/RegionOne/network/v2.0"
G = "/cloud-1/RegionOne/image/v2"
NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}


# ---- helpers ---------------------------------------------------------------------------------------

async def login(s: aiohttp.ClientSession, url: str, project: str, cloud: str = "cloud-1") -> tuple[str, str]:
    token, doc = await keystone_login(s, url, project=project, cloud=cloud)
    return token, doc["project"]["id"]


class Api:
    """Raw HTTP against one project: Nova (no microversion header unless given, as gophercloud sends
    none), Neutron and Glance."""

    def __init__(self, s: aiohttp.ClientSession, srv: Any, token: str, project_id: str,
                 cloud: str = "cloud-1") -> None:
        self.s, self.srv, self.token, self.project_id = s, srv, token, project_id
        self.compute, self.network_root, self.image_root = (C.replace("cloud-1", cloud), N.replace("cloud-1", cloud),
                                                            G.replace("cloud-1", cloud))

    async def request(self, method: str, url: str, body: Any = None, *, mv: str | None = None,
                      raw: bytes | None = None) -> tuple[int, Any]:
        h = {"X-Auth-Token": self.token}
        if mv is not None:
            h["OpenStack-API-Version"] = f"compute {mv}"
        kw: dict[str, Any] = {"json": body}
        if raw is not None:
            kw = {"data": raw}
            h["Content-Type"] = "application/json"
        async with self.s.request(method, self.srv.url + url, headers=h, **kw) as r:
            text = await r.text()
            return r.status, (await r.json() if text and r.content_type == "application/json" else text)

    async def nova(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request(method, self.compute + path, body, **kw)

    async def neutron(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.request(method, self.network_root + path, body)

    async def glance(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.request(method, self.image_root + path, body)

    async def nova_group(self, name: str = "web", description: str = "web servers") -> dict[str, Any]:
        status, doc = await self.nova("POST", "/os-security-groups",
                                      {"security_group": {"name": name, "description": description}})
        assert status == 200, doc
        return doc["security_group"]

    async def nova_rule(self, **rule: Any) -> tuple[int, Any]:
        return await self.nova("POST", "/os-security-group-rules", {"security_group_rule": rule})

    async def network(self, name: str, cidr: str) -> str:
        status, doc = await self.neutron("POST", "/networks", {"network": {"name": name}})
        assert status == 201, doc
        net = doc["network"]["id"]
        status, doc = await self.neutron("POST", "/subnets", {"subnet": {"network_id": net, "cidr": cidr,
                                                                        "ip_version": 4}})
        assert status == 201, doc
        return net


@pytest.fixture
async def api(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, pid = await login(s, twin.url, "p1")
        yield Api(s, twin, token, pid)
    assert twin._runner.app["dispatcher"].server_errors == 0


def message(doc: Any) -> str:
    (fault,) = doc.values()
    return fault["message"]  # type: ignore[no-any-return]


# ---- security groups ---------------------------------------------------------------------------------

async def test_a_nova_group_is_the_neutron_group(api):
    sg = await api.nova_group()
    assert sg["rules"] == [] and sg["tenant_id"] == api.project_id, "Neutron's egress defaults are not shown"
    status, doc = await api.neutron("GET", f"/security-groups/{sg['id']}")
    assert status == 200 and doc["security_group"]["name"] == "web"
    assert doc["security_group"]["description"] == "web servers"
    assert {r["direction"] for r in doc["security_group"]["security_group_rules"]} == {"egress"}
    # Nova's list holds Neutron's default group and the new one, sorted by tenant and name
    status, doc = await api.nova("GET", "/os-security-groups")
    assert status == 200 and [g["name"] for g in doc["security_groups"]] == ["default", "web"]
    default = doc["security_groups"][0]
    assert {(r["group"]["name"], r["ip_range"] == {}, r["from_port"]) for r in default["rules"]} == {
        ("default", True, None)}, "the default group's ingress rules name the group itself"
    # an update and a delete through Nova are Neutron's
    status, doc = await api.nova("PUT", f"/os-security-groups/{sg['id']}",
                                 {"security_group": {"name": "www", "description": ""}})
    assert status == 200 and doc["security_group"]["name"] == "www"
    status, doc = await api.neutron("GET", f"/security-groups/{sg['id']}")
    assert doc["security_group"]["name"] == "www" and doc["security_group"]["description"] == ""
    status, doc = await api.nova("DELETE", f"/os-security-groups/{sg['id']}")
    assert (status, doc) == (202, "")
    status, _ = await api.neutron("GET", f"/security-groups/{sg['id']}")
    assert status == 404


async def test_rules_are_shared_both_ways(api):
    sg = await api.nova_group()
    status, doc = await api.nova_rule(parent_group_id=sg["id"], ip_protocol="tcp", from_port=22, to_port=22,
                                      cidr="10.0.0.0/24")
    assert status == 200, doc
    ssh = doc["security_group_rule"]
    assert ssh == {"id": ssh["id"], "parent_group_id": sg["id"], "ip_protocol": "tcp", "from_port": 22,
                   "to_port": 22, "group": {}, "ip_range": {"cidr": "10.0.0.0/24"}}
    status, doc = await api.neutron("GET", f"/security-group-rules/{ssh['id']}")
    assert status == 200
    n = doc["security_group_rule"]
    assert (n["direction"], n["ethertype"], n["protocol"], n["port_range_min"], n["port_range_max"],
            n["remote_ip_prefix"]) == ("ingress", "IPv4", "tcp", 22, 22, "10.0.0.0/24")
    # rules made in Neutron, as Nova shows them
    made = {}
    for key, rule in {"udp-any": {"protocol": "udp", "ethertype": "IPv6"},
                      "icmp-any": {"protocol": "icmp", "remote_ip_prefix": "192.168.0.0/16"},
                      "all": {},
                      "egress": {"direction": "egress", "protocol": "tcp", "port_range_min": 80,
                                 "port_range_max": 80}}.items():
        body = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", **rule}}
        status, doc = await api.neutron("POST", "/security-group-rules", body)
        assert status == 201, doc
        made[key] = doc["security_group_rule"]["id"]
    status, doc = await api.nova("GET", f"/os-security-groups/{sg['id']}")
    rules = {r["id"]: r for r in doc["security_group"]["rules"]}
    assert made["egress"] not in rules, "Nova shows ingress rules only"
    assert (rules[made["udp-any"]]["from_port"], rules[made["udp-any"]]["to_port"]) == (1, 65535)
    assert rules[made["udp-any"]]["ip_range"] == {"cidr": "0.0.0.0/0"}, "no prefix is 0.0.0.0/0, even for IPv6"
    assert (rules[made["icmp-any"]]["from_port"], rules[made["icmp-any"]]["to_port"]) == (-1, -1)
    assert rules[made["icmp-any"]]["ip_range"] == {"cidr": "192.168.0.0/16"}
    assert rules[made["all"]]["ip_protocol"] is None and rules[made["all"]]["from_port"] is None
    # a group rule through Nova opens the whole range and names the source group's tenant
    default_id = next(g["id"] for g in (await api.nova("GET", "/os-security-groups"))[1]["security_groups"]
                      if g["name"] == "default")
    status, doc = await api.nova_rule(parent_group_id=sg["id"], group_id=default_id, ip_protocol="tcp")
    assert status == 200, doc
    grp = doc["security_group_rule"]
    assert grp["group"] == {"name": "default", "tenant_id": api.project_id} and grp["ip_range"] == {}
    assert (grp["from_port"], grp["to_port"]) == (1, 65535)
    status, doc = await api.neutron("GET", f"/security-group-rules/{grp['id']}")
    assert (doc["security_group_rule"]["remote_group_id"], doc["security_group_rule"]["port_range_min"],
            doc["security_group_rule"]["port_range_max"]) == (default_id, 1, 65535)
    # deletes cross over too: Nova removes a Neutron rule, Neutron a Nova one
    status, doc = await api.nova("DELETE", f"/os-security-group-rules/{made['udp-any']}")
    assert (status, doc) == (202, "")
    assert (await api.neutron("GET", f"/security-group-rules/{made['udp-any']}"))[0] == 404
    assert (await api.neutron("DELETE", f"/security-group-rules/{ssh['id']}"))[0] == 204
    status, doc = await api.nova("GET", f"/os-security-groups/{sg['id']}")
    assert {r["id"] for r in doc["security_group"]["rules"]} == {made["icmp-any"], made["all"], grp["id"]}


async def test_icmp_any_and_ipv6_rules_reach_neutron_as_nova_sends_them(api):
    sg = await api.nova_group()
    status, doc = await api.nova_rule(parent_group_id=sg["id"], ip_protocol="icmp", from_port=-1, to_port=-1)
    assert status == 200, doc
    assert doc["security_group_rule"]["ip_range"] == {"cidr": "0.0.0.0/0"}
    status, n = await api.neutron("GET", f"/security-group-rules/{doc['security_group_rule']['id']}")
    n = n["security_group_rule"]
    assert (n["protocol"], n["port_range_min"], n["port_range_max"], n["remote_ip_prefix"]) == (
        "icmp", None, None, "0.0.0.0/0"), "-1 leaves Neutron's range open"
    status, doc = await api.nova_rule(parent_group_id=sg["id"], ip_protocol="TCP", from_port="80", to_port="80",
                                      cidr="2001:db8::/64")
    assert status == 200, doc
    status, n = await api.neutron("GET", f"/security-group-rules/{doc['security_group_rule']['id']}")
    assert (n["security_group_rule"]["ethertype"], n["security_group_rule"]["protocol"],
            n["security_group_rule"]["port_range_min"]) == ("IPv6", "tcp", 80)


MISSING = object()   # a key the request leaves out
RULE_ERRORS: list[tuple[dict[str, Any], int, str]] = [
    ({"parent_group_id": MISSING}, 400, "'parent_group_id' is a required property"),
    ({"parent_group_id": 5}, 400, "5 is not of type 'string'"),
    ({"parent_group_id": "nope"}, 400, "'nope' is not a 'uuid'"),
    ({"parent_group_id": None}, 400, "None is not of type 'string'"),
    ({"group_id": "x" * 300}, 400, "is not a 'uuid'"),
    ({"group_id": str(uuid.UUID(int=7))}, 404, f"Security group {uuid.UUID(int=7)} does not exist"),
    ({"ip_protocol": "tcp"}, 400, "Not enough parameters to build a valid rule."),
    ({"ip_protocol": "tcp", "from_port": 100, "to_port": 22}, 400,
     "Invalid port range 100:22. Former value cannot be greater than the later"),
    ({"ip_protocol": "tcp", "from_port": 0, "to_port": 22}, 400,
     "Invalid port range 0:22. Valid TCP ports should be between 1-65535"),
    ({"ip_protocol": "udp", "from_port": 1, "to_port": 70000}, 400,
     "Invalid port range 1:70000. Valid UDP ports should be between 1-65535"),
    ({"ip_protocol": "icmp", "from_port": 8, "to_port": 256}, 400,
     "Invalid port range 8:256. For ICMP, the type:code must be valid"),
    ({"ip_protocol": "gre", "from_port": 1, "to_port": 2}, 400, "Invalid IP protocol gre."),
    ({"ip_protocol": 6, "from_port": 1, "to_port": 2}, 400, "Invalid IP protocol 6."),
    ({"ip_protocol": "tcp", "from_port": "a", "to_port": 2}, 400,
     "Invalid input received: To and From ports must be integers"),
    ({"ip_protocol": "icmp", "from_port": "x", "to_port": 0}, 400,
     "Invalid input received: Type and Code must be integers for ICMP protocol type"),
    ({"ip_protocol": "tcp", "from_port": [1], "to_port": {"a": 1}}, 400, "must be integers"),
    ({"ip_protocol": "tcp", "from_port": 1e400, "to_port": 2}, 400, "must be integers"),
    ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0"}, 400,
     "10.0.0.0 is not a valid IP network."),
    ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "300.1.1.1/8"}, 400,
     "300.1.1.1/8 is not a valid IP network."),
    ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": ["10.0.0.0/8"]}, 400, "is not a valid IP network."),
    ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/0"}, 400,
     "Bad prefix for network in cidr 10.0.0.0/0"),
    ({"ip_protocol": "icmp", "from_port": -1, "to_port": 5}, 400,
     "ICMP code (port-range-max) 5 is provided but ICMP type (port-range-min) is missing."),
]


@pytest.mark.parametrize("extra,status,text", RULE_ERRORS)
async def test_rule_create_validates_like_nova(api, extra, status, text):
    sg = await api.nova_group()
    rule = {k: v for k, v in {"parent_group_id": sg["id"], **extra}.items() if v is not MISSING}
    got, doc = await api.nova_rule(**rule)
    assert got == status, doc
    assert text in message(doc), doc
    status, doc = await api.neutron("GET", f"/security-groups/{sg['id']}")
    assert {r["direction"] for r in doc["security_group"]["security_group_rules"]} == {"egress"}, "nothing made"


async def test_duplicates_and_bad_bodies(api):
    sg = await api.nova_group()
    rule = {"parent_group_id": sg["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
            "cidr": "10.0.0.0/24"}
    assert (await api.nova_rule(**rule))[0] == 200
    status, doc = await api.nova_rule(**rule)
    assert (status, message(doc)) == (400, f"This rule already exists in group {sg['id']}")
    # Nova compares the protocol as typed; Neutron's own duplicate check then answers, as Nova's 403
    status, doc = await api.nova_rule(**{**rule, "ip_protocol": "TCP"})
    assert status == 403 and message(doc).startswith("Security group rule already exists."), doc
    for raw, text in ((b"[]", "[] is not of type 'object'"), (b"{}", "'security_group_rule' is a required property"),
                      (b'{"security_group_rule": "x"}', "Invalid input for field/attribute security_group_rule"),
                      (b"{not json", "Malformed request body")):
        status, doc = await api.request("POST", api.compute + "/os-security-group-rules", raw=raw)
        assert status == 400 and text in message(doc), (raw, doc)
    status, doc = await api.nova("DELETE", "/os-security-group-rules/nope")
    assert (status, message(doc)) == (400, "Security group id should be uuid")
    missing = str(uuid.UUID(int=9))
    status, doc = await api.nova("DELETE", f"/os-security-group-rules/{missing}")
    assert (status, message(doc)) == (404, f"Security group rule {missing} does not exist")


async def test_group_validation_and_conflicts(api):
    for body, text in (({"security_group": {"name": "x"}}, "'description' is a required property"),
                       ({"security_group": {"name": 5, "description": ""}}, "5 is not of type 'string'"),
                       ({"security_group": {"name": "n" * 256, "description": ""}}, "is too long"),
                       ({"security_group": {"name": None, "description": ""}}, "None is not of type 'string'"),
                       ({"security_group": []}, "[] is not of type 'object'"),
                       ({"group": {}}, "'security_group' is a required property")):
        status, doc = await api.nova("POST", "/os-security-groups", body)
        assert status == 400 and text in message(doc), (body, doc)
    status, doc = await api.nova("POST", "/os-security-groups",
                                 {"security_group": {"name": "default", "description": ""}})
    assert (status, message(doc)) == (403, "Default security group already exists.")
    status, doc = await api.nova("GET", "/os-security-groups/default")
    assert (status, message(doc)) == (400, "Security group id should be uuid")
    missing = str(uuid.UUID(int=3))
    for method in ("GET", "DELETE"):
        status, doc = await api.nova(method, f"/os-security-groups/{missing}")
        assert (status, message(doc)) == (404, f"Security group {missing} does not exist")
    status, doc = await api.nova("PUT", f"/os-security-groups/{missing}", {"security_group": {"name": "a"}})
    assert status == 400 and "'description' is a required property" in message(doc), "the body is checked first"
    groups = (await api.nova("GET", "/os-security-groups"))[1]["security_groups"]
    default_id = next(g["id"] for g in groups if g["name"] == "default")
    status, doc = await api.nova("DELETE", f"/os-security-groups/{default_id}")
    assert status == 400 and "default security group" in message(doc)
    status, doc = await api.nova("PUT", f"/os-security-groups/{default_id}",
                                 {"security_group": {"name": "other", "description": ""}})
    assert status == 400 and "default security group" in message(doc)
    # a group a port uses is Neutron's conflict, Nova's 400
    sg = await api.nova_group()
    net = await api.network("n1", "10.9.0.0/24")
    status, doc = await api.neutron("POST", "/ports", {"port": {"network_id": net, "security_groups": [sg["id"]]}})
    assert status == 201, doc
    status, doc = await api.nova("DELETE", f"/os-security-groups/{sg['id']}")
    assert status == 400 and message(doc) == f"Security Group {sg['id']} in use."


async def test_list_paging_and_project_isolation(api, twin):
    for name in ("b", "a", "c"):
        await api.nova_group(name)
    status, doc = await api.nova("GET", "/os-security-groups?limit=2&offset=1")
    assert status == 200 and [g["name"] for g in doc["security_groups"]] == ["a", "b"], \
        "Nova slices Neutron's order (default, b, a, c), then sorts the page"
    status, doc = await api.nova("GET", "/os-security-groups?offset=" + "9" * 5000)
    assert (status, doc) == (200, {"security_groups": []})
    for query, text in (("limit=abc", "'abc' does not match '^[0-9]*$'"), ("offset=-1", "does not match"),
                        ("limit=", "'' is too short")):
        status, doc = await api.nova("GET", f"/os-security-groups?{query}")
        assert status == 400 and text in message(doc), (query, doc)
    mine = next(g["id"] for g in (await api.nova("GET", "/os-security-groups"))[1]["security_groups"]
                if g["name"] == "a")
    token, _ = await login(api.s, twin.url, "p2")
    other = Api(api.s, twin, token, "")
    assert [g["name"] for g in (await other.nova("GET", "/os-security-groups"))[1]["security_groups"]] == ["default"]
    status, doc = await other.nova("GET", f"/os-security-groups/{mine}")
    assert (status, message(doc)) == (404, f"Security group {mine} does not exist")


async def test_server_security_groups_share_the_renderer(api):
    sg = await api.nova_group()
    body = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp"}}
    assert (await api.neutron("POST", "/security-group-rules", body))[0] == 201
    net = await api.network("n1", "10.8.0.0/24")
    image = next(i["id"] for i in (await api.nova("GET", "/images"))[1]["images"] if i["name"] == "cirros-0.6.2")
    status, doc = await api.nova("POST", "/servers", {"server": {
        "name": "vm", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}],
        "security_groups": [{"name": "web"}]}})
    assert status == 202, doc
    sid = doc["server"]["id"]
    status, doc = await api.nova("GET", f"/servers/{sid}/os-security-groups")
    assert status == 200
    (listed,) = doc["security_groups"]
    assert listed["rules"] == (await api.nova("GET", f"/os-security-groups/{sg['id']}"))[1]["security_group"]["rules"]
    assert (listed["rules"][0]["from_port"], listed["rules"][0]["to_port"]) == (1, 65535)


# ---- microversion 2.36 -------------------------------------------------------------------------------

PROXY_ROUTES = [("GET", "/os-security-groups"), ("POST", "/os-security-groups"),
                ("GET", "/os-security-groups/{sg}"), ("PUT", "/os-security-groups/{sg}"),
                ("DELETE", "/os-security-groups/{sg}"), ("POST", "/os-security-group-rules"),
                ("DELETE", "/os-security-group-rules/{rule}"), ("GET", "/os-floating-ips"),
                ("POST", "/os-floating-ips"), ("GET", "/os-floating-ips/{fip}"), ("DELETE", "/os-floating-ips/{fip}"),
                ("GET", "/images"), ("GET", "/images/detail"), ("GET", "/images/{image}"),
                ("DELETE", "/images/{image}"), ("GET", "/os-networks"), ("GET", "/os-networks/{net}")]


async def test_every_proxy_is_gone_from_2_36(api):
    sg = await api.nova_group()
    rule = (await api.nova_rule(parent_group_id=sg["id"], ip_protocol="icmp", from_port=-1, to_port=-1))[1]
    fip = (await api.nova("POST", "/os-floating-ips"))[1]["floating_ip"]
    image = (await api.nova("GET", "/images"))[1]["images"][0]["id"]
    net = (await api.nova("GET", "/os-networks"))[1]["networks"][0]["id"]
    ids = {"sg": sg["id"], "rule": rule["security_group_rule"]["id"], "fip": fip["id"], "image": image, "net": net}
    bodies = {"/os-security-groups": {"security_group": {"name": "late", "description": ""}},
              "/os-security-group-rules": {"security_group_rule": {"parent_group_id": sg["id"],
                                                                   "ip_protocol": "tcp", "from_port": 1,
                                                                   "to_port": 2}}}
    for mv in ("2.36", "2.95", "latest"):
        for method, pattern in PROXY_ROUTES:
            path = pattern.format(**ids)
            status, doc = await api.nova(method, path, bodies.get(pattern, {"security_group": {
                "name": "x", "description": ""}} if method == "PUT" else None), mv=mv)
            assert (status, doc) == (404, NOT_FOUND), (mv, method, path)
    # nothing changed: every object is still there at 2.35
    for method, pattern in PROXY_ROUTES:
        if method == "GET":
            status, doc = await api.nova(method, pattern.format(**ids), mv="2.35")
            assert status == 200, (pattern, doc)
    groups = (await api.nova("GET", "/os-security-groups"))[1]["security_groups"]
    assert [g["name"] for g in groups] == ["default", "web"]
    assert len(next(g for g in groups if g["name"] == "web")["rules"]) == 1


# ---- floating IPs ------------------------------------------------------------------------------------

async def _active_server(api: Api, net: str) -> str:
    image = (await api.nova("GET", "/images?name=cirros-0.6.2"))[1]["images"][0]["id"]
    status, doc = await api.nova("POST", "/servers", {"server": {"name": "vm", "imageRef": image, "flavorRef": "1",
                                                                 "networks": [{"uuid": net}]}})
    assert status == 202, doc
    sid = doc["server"]["id"]
    end = time.monotonic() + 5
    while (await api.nova("GET", f"/servers/{sid}"))[1]["server"]["status"] != "ACTIVE":
        assert time.monotonic() < end
        await asyncio.sleep(0.02)
    return sid


async def test_floating_ip_round_trip(api):
    status, doc = await api.nova("POST", "/os-floating-ips")
    assert status == 200, doc
    fip = doc["floating_ip"]
    assert fip["pool"] == "public" and fip["fixed_ip"] is None and fip["instance_id"] is None
    status, doc = await api.neutron("GET", f"/floatingips/{fip['id']}")
    assert status == 200 and doc["floatingip"]["floating_ip_address"] == fip["ip"]
    status, doc = await api.nova("POST", "/os-floating-ips", {"pool": "public"})
    assert status == 200 and doc["floating_ip"]["ip"] != fip["ip"]
    second = doc["floating_ip"]
    # Neutron associates it with a server's port: Nova shows the server and the fixed address
    net = await api.network("n1", "10.7.0.0/24")
    sid = await _active_server(api, net)
    port = (await api.neutron("GET", f"/ports?device_id={sid}"))[1]["ports"][0]
    assert (await api.neutron("PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}}))[0] == 200
    status, doc = await api.nova("GET", f"/os-floating-ips/{fip['id']}")
    assert status == 200
    assert doc["floating_ip"] == {**fip, "fixed_ip": port["fixed_ips"][0]["ip_address"], "instance_id": sid}
    status, doc = await api.nova("GET", "/os-floating-ips")
    assert {f["id"] for f in doc["floating_ips"]} == {fip["id"], second["id"]}
    # a release through Nova is Neutron's
    status, doc = await api.nova("DELETE", f"/os-floating-ips/{fip['id']}")
    assert (status, doc) == (202, "")
    assert (await api.neutron("GET", f"/floatingips/{fip['id']}"))[0] == 404
    status, doc = await api.nova("DELETE", f"/os-floating-ips/{fip['id']}")
    assert (status, message(doc)) == (404, f"Floating IP not found for ID {fip['id']}")


async def test_floating_ip_bad_input(api, twin):
    net = await api.network("private", "10.6.0.0/24")
    for body, status, text in (({"pool": "nope"}, 404, "Floating IP pool not found."),
                               ({"pool": "private"}, 404, "Floating IP pool not found."),
                               ({"pool": net}, 404, "Floating IP pool not found."),
                               ({"pool": 5}, 400, "5 is not of type 'string', 'null'"),
                               ([], 400, "[] is not of type 'object', 'null'")):
        got, doc = await api.nova("POST", "/os-floating-ips", body)
        assert got == status and text in message(doc), (body, doc)
    status, doc = await api.nova("GET", "/os-floating-ips/x")
    assert (status, message(doc)) == (404, "Floating IP not found for ID x")
    # the quota is Neutron's, the answer Nova's
    twin.twin.profiles.add("tight", {"extends": "openstack", "quotas": {"floatingips": 1}})
    twin.twin.add_cloud("tight-1", "tight")
    token, pid = await login(api.s, twin.url, "p1", cloud="tight-1")
    tight = Api(api.s, twin, token, pid, cloud="tight-1")
    assert (await tight.nova("POST", "/os-floating-ips", {"pool": None}))[0] == 200
    status, doc = await tight.nova("POST", "/os-floating-ips", {"pool": "public"})
    assert (status, message(doc)) == (403, "IP allocation over quota in pool public.")
    status, doc = await tight.nova("POST", "/os-floating-ips")
    assert (status, message(doc)) == (403, "IP allocation over quota.")
    assert [f["pool"] for f in (await tight.nova("GET", "/os-floating-ips"))[1]["floating_ips"]] == ["public"]


# ---- images ------------------------------------------------------------------------------------------

def names(doc: dict[str, Any]) -> list[str]:
    return [i["name"] for i in doc["images"]]


async def test_images_proxy_lists_glance_images(api):
    status, glance = await api.glance("GET", "/images")
    assert status == 200
    by_id = {i["id"]: i for i in glance["images"]}
    status, doc = await api.nova("GET", "/images")
    assert status == 200 and [i["id"] for i in doc["images"]] == [i["id"] for i in glance["images"]]
    assert {i["name"] for i in doc["images"]} >= {"cirros-0.6.2", "ubuntu-22.04"}
    assert set(doc["images"][0]) == {"id", "name", "links"} and "images_links" not in doc
    status, doc = await api.nova("GET", "/images/detail")
    for img in doc["images"]:
        g = by_id[img["id"]]
        assert (img["status"], img["progress"], img["minDisk"], img["minRam"], img["OS-EXT-IMG-SIZE:size"]) == (
            "ACTIVE", 100, g["min_disk"], g["min_ram"], g["size"])
        assert img["metadata"]["os_distro"] == g["os_distro"]
        rels = [link["rel"] for link in img["links"]]
        assert rels == ["self", "bookmark", "alternate"]
        assert img["links"][0]["href"].endswith(f"{C}/images/{img['id']}")
        assert img["links"][2]["href"] == f"{api.srv.url}/cloud-1/RegionOne/image/images/{img['id']}"
    # a server's image link leads to the proxy
    cirros = next(i for i in doc["images"] if i["name"] == "cirros-0.6.2")
    status, one = await api.nova("GET", f"/images/{cirros['id']}")
    assert status == 200 and one["image"] == cirros


async def test_images_filters_paging_and_delete(api):
    status, doc = await api.glance("POST", "/images", {"name": "mine", "disk_format": "qcow2",
                                                      "container_format": "bare", "auto_disk_config": "True"})
    assert status == 201, doc
    mine = doc["id"]
    status, doc = await api.glance("POST", "/images", {"name": "hidden", "os_hidden": True})
    assert status == 201, doc
    hidden = doc["id"]
    assert "hidden" not in names((await api.nova("GET", "/images/detail"))[1]), "Glance's default list hides it"
    assert (await api.nova("GET", f"/images/{hidden}"))[0] == 200
    status, doc = await api.nova("GET", f"/images/{mine}")
    assert status == 200
    img = doc["image"]
    assert (img["status"], img["progress"], img["OS-EXT-IMG-SIZE:size"], img["OS-DCF:diskConfig"]) == (
        "SAVING", 25, 0, "AUTO"), "a queued Glance image"
    assert names((await api.nova("GET", "/images?name=cirros-0.6.2"))[1]) == ["cirros-0.6.2"]
    assert "mine" not in names((await api.nova("GET", "/images?status=ACTIVE"))[1])
    assert names((await api.nova("GET", "/images?status=queued"))[1]) == ["mine"]
    assert names((await api.nova("GET", "/images/detail?minDisk=40"))[1]) == ["windows-2022"]
    assert names((await api.nova("GET", "/images?property-os_distro=cirros"))[1]) == ["cirros-0.6.2"]
    assert names((await api.nova("GET", "/images?changes-since=2999-01-01T00:00:00Z"))[1]) == []
    # paging: a full page carries the next link, which walks the whole list
    everything = names((await api.nova("GET", "/images"))[1])
    seen: list[str] = []
    path = "/images?limit=2"
    while True:
        status, doc = await api.nova("GET", path)
        assert status == 200 and len(doc["images"]) <= 2
        seen += names(doc)
        if "images_links" not in doc:
            break
        href = doc["images_links"][0]["href"]
        path = href[href.index("/images"):]
    assert seen == everything and len(everything) == 5
    assert names((await api.nova("GET", "/images?limit=" + "9" * 5000))[1]) == everything
    for query, text in (("limit=x", "'x' does not match '^[0-9]*$'"), ("marker=nope", "Invalid marker"),
                        ("changes-since=yesterday", "Invalid changes-since value")):
        status, doc = await api.nova("GET", f"/images?{query}")
        assert status == 400 and text in message(doc), (query, doc)
    # delete: the user's image goes from Glance, a profile image is refused
    cirros = next(i["id"] for i in (await api.nova("GET", "/images"))[1]["images"] if i["name"] == "cirros-0.6.2")
    status, doc = await api.nova("DELETE", f"/images/{cirros}")
    assert (status, message(doc)) == (403, "You are not allowed to delete the image.")
    assert (await api.nova("DELETE", f"/images/{mine}")) == (204, "")
    assert (await api.glance("GET", f"/images/{mine}"))[0] == 404
    for method in ("GET", "DELETE"):
        status, doc = await api.nova(method, f"/images/{mine}")
        assert (status, message(doc)) == (404, "Image not found.")


def test_openstacksdk_reads_the_images_proxy(threaded_twin):
    from twin_helpers import sdk_connect

    conn = sdk_connect(threaded_twin.url)
    glance = {i.id: i for i in conn.image.images()}
    nova = list(conn.compute.images())
    assert {i.id for i in nova} == set(glance) and len(nova) == 4
    cirros = next(i for i in nova if i.name == "cirros-0.6.2")
    got = conn.compute.get_image(cirros.id)
    assert (got.status, got.min_disk, got.size) == ("ACTIVE", glance[cirros.id].min_disk, glance[cirros.id].size)
    assert got.metadata["os_distro"] == "cirros"


# ---- networks ----------------------------------------------------------------------------------------

async def test_networks_proxy(api, twin):
    net = await api.network("app", "10.5.0.0/24")
    status, doc = await api.nova("GET", "/os-networks")
    assert status == 200
    labels = {n["id"]: n["label"] for n in doc["networks"]}
    assert labels[net] == "app" and "public" in labels.values()
    status, doc = await api.nova("GET", f"/os-networks/{net}")
    assert status == 200 and doc["network"]["label"] == "app" and doc["network"]["cidr"] is None
    assert len(doc["network"]) == 32, "every nova-network field, null over Neutron"
    status, doc = await api.nova("GET", "/os-networks/nope")
    assert (status, message(doc)) == (404, "Network not found")
    token, _ = await login(api.s, twin.url, "p2")
    other = Api(api.s, twin, token, "")
    assert (await other.nova("GET", f"/os-networks/{net}"))[0] == 404
    assert net not in {n["id"] for n in (await other.nova("GET", "/os-networks"))[1]["networks"]}
