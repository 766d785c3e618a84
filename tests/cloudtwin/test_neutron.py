"""Neutron v2.0 of Cloud-Twin: through unmodified openstacksdk and through raw HTTP (exact envelopes),
plus model-level checks (IP allocation at scale, the interface Nova and Octavia call)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
import pytest

from cloudtwin.clouds import TwinConfig
from cloudtwin.twin import Twin
from twin_helpers import keystone_user, sdk_connect

NET = "/cloud-1/RegionOne/network"


def auth_body(project: str = "p1", domain: str = "cloud-1") -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": "admin", "domain": {"name": domain}}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}}}


class Client:
    """Raw HTTP against the network endpoint of one project."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.s, self.url, self.token = session, url, token

    async def req(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token}
        kw: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kw["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kw["json"] = body
        async with self.s.request(method, self.url + NET + path, **kw) as r:
            text = await r.text()
            if r.status != 204 and text:
                assert r.headers["Content-Type"].startswith("application/json"), text
            return r.status, (await r.json() if text else None)


async def login(session: aiohttp.ClientSession, url: str, project: str = "p1") -> Client:
    async with session.post(url + "/v3/auth/tokens", json=auth_body(project)) as r:
        assert r.status == 201
        return Client(session, url, r.headers["X-Subject-Token"])


def err(body: Any) -> tuple[str, str]:
    e = body["NeutronError"]
    assert e["detail"] == ""
    return e["type"], e["message"]


@pytest.fixture
async def api(twin):
    async with aiohttp.ClientSession() as s:
        yield await login(s, twin.url)


# ------------------------------------------------------------------------------------------------
# openstacksdk
# ------------------------------------------------------------------------------------------------


def test_sdk_flow(threaded_twin):
    from openstack import exceptions as exc

    conn = sdk_connect(threaded_twin.url)
    net = conn.network.create_network(name="vpc-1")
    assert net.status == "ACTIVE" and net.mtu == 1500 and net.is_router_external is False
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.10.0.0/24", ip_version=4, name="sub-1")
    assert sub.gateway_ip == "10.10.0.1"
    assert sub.allocation_pools == [{"start": "10.10.0.2", "end": "10.10.0.254"}]
    assert conn.network.get_network(net.id).subnet_ids == [sub.id]
    assert conn.network.find_network("vpc-1").id == net.id

    with pytest.raises(exc.BadRequestException) as e:
        conn.network.create_subnet(network_id=net.id, cidr="10.10.0.128/25", ip_version=4)
    assert "overlaps with another subnet" in str(e.value)
    with pytest.raises(exc.BadRequestException) as e:
        conn.network.create_subnet(network_id=net.id, cidr="10.20.0.1/24", ip_version=4)
    assert "'10.20.0.0/24' is recommended" in str(e.value)

    sg = conn.network.create_security_group(name="sg-1", description="web")
    assert sorted((r["direction"], r["ethertype"]) for r in sg.security_group_rules) == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    rule = conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                   ethertype="IPv4", protocol="tcp", port_range_min=22,
                                                   port_range_max=22, remote_ip_prefix="0.0.0.0/0")
    assert rule.port_range_min == 22 and rule.remote_ip_prefix == "0.0.0.0/0"
    with pytest.raises(exc.ConflictException) as e:
        conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                                protocol="tcp", port_range_min=22, port_range_max=22,
                                                remote_ip_prefix="0.0.0.0/0")
    assert f"Rule id is {rule.id}" in str(e.value)
    assert len(conn.network.get_security_group(sg.id).security_group_rules) == 3
    names = {g.name for g in conn.network.security_groups()}
    assert names == {"default", "sg-1"}

    port = conn.network.create_port(network_id=net.id, name="p-1", security_group_ids=[sg.id])
    assert port.status == "DOWN" and port.mac_address.startswith("fa:16:3e:")
    assert port.fixed_ips[0]["subnet_id"] == sub.id
    with pytest.raises(exc.ConflictException) as e:
        conn.network.delete_security_group(sg.id)
    assert "in use" in str(e.value)
    with pytest.raises(exc.ConflictException):
        conn.network.delete_network(net.id)

    public = conn.network.find_network("public")
    assert public.is_router_external and public.is_shared
    fip = conn.network.create_ip(floating_network_id=public.id)
    assert fip.status == "DOWN" and ipaddress.ip_address(fip.floating_ip_address) in ipaddress.ip_network(
        "198.18.0.0/15"), "floating IPs come from RFC 2544's test range"
    fip = conn.network.update_ip(fip, port_id=port.id)
    assert fip.port_id == port.id and fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    assert fip.status == "ACTIVE"
    assert [f.id for f in conn.network.ips(port_id=port.id)] == [fip.id]
    fip = conn.network.update_ip(fip, port_id=None)
    assert fip.port_id is None and fip.status == "DOWN"
    conn.network.delete_ip(fip)

    conn.network.delete_port(port)
    conn.network.delete_security_group(sg)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)
    with pytest.raises(exc.NotFoundException):
        conn.network.get_network(net.id)
    assert conn.network.find_network("vpc-1") is None


def test_sdk_ports_by_device_and_lists(threaded_twin):
    conn = sdk_connect(threaded_twin.url)
    net = conn.network.create_network(name="n")
    conn.network.create_subnet(network_id=net.id, cidr="192.168.0.0/24", ip_version=4)
    ports = [conn.network.create_port(network_id=net.id, name=f"p{i}", device_id=f"dev-{i % 2}") for i in range(4)]
    assert {p.id for p in conn.network.ports(device_id="dev-1")} == {ports[1].id, ports[3].id}
    assert len(list(conn.network.ports(network_id=net.id))) == 4
    # paging: the SDK follows ports_links
    assert len(list(conn.network.ports(limit=1))) == 4
    assert [n.name for n in conn.network.networks(is_router_external=True)] == ["public"]


# ------------------------------------------------------------------------------------------------
# raw HTTP: envelopes, codes, messages
# ------------------------------------------------------------------------------------------------


async def test_versions_and_extensions(twin, api):
    async with aiohttp.ClientSession() as s:
        async with s.get(twin.url + NET + "/") as r:   # no token needed
            assert r.status == 200
            doc = await r.json()
    assert doc["versions"][0]["id"] == "v2.0" and doc["versions"][0]["status"] == "CURRENT"
    status, body = await api.req("GET", "/v2.0/extensions")
    aliases = {e["alias"] for e in body["extensions"]}
    assert {"security-group", "router", "external-net", "quotas", "standard-attr-revisions"} <= aliases
    status, body = await api.req("GET", "/v2.0/quotas/anything")
    assert status == 200 and body["quota"]["network"] == 1000 and body["quota"]["security_group_rule"] == 20000


async def test_not_found_envelopes(api):
    cases = [("networks", "NetworkNotFound", "Network x could not be found."),
             ("subnets", "SubnetNotFound", "Subnet x could not be found."),
             ("ports", "PortNotFound", "Port x could not be found."),
             ("security-groups", "SecurityGroupNotFound", "Security group x does not exist"),
             ("security-group-rules", "SecurityGroupRuleNotFound", "Security group rule x does not exist"),
             ("floatingips", "FloatingIPNotFound", "Floating IP x could not be found"),
             ("routers", "RouterNotFound", "Router x could not be found")]
    for coll, typ, msg in cases:
        for method in ("GET", "DELETE"):
            status, body = await api.req(method, f"/v2.0/{coll}/x")
            assert status == 404 and err(body) == (typ, msg), (coll, method, body)
    status, body = await api.req("PUT", "/v2.0/security-group-rules/x", {"security_group_rule": {}})
    assert status == 405


async def test_bad_bodies_are_400_never_500(api):
    status, body = await api.req("POST", "/v2.0/networks", raw=b"{not json")
    assert status == 400 and "NeutronError" in body
    for bad in (None, [], {"network": "x"}, {"net": {}}):
        status, body = await api.req("POST", "/v2.0/networks", bad if bad is not None else None)
        assert status == 400, bad
    status, body = await api.req("POST", "/v2.0/networks", {"network": {"name": 5}})
    assert status == 400 and err(body)[0] == "InvalidInput"
    status, body = await api.req("POST", "/v2.0/networks", {"network": {"admin_state_up": "maybe"}})
    assert status == 400 and "cannot be converted to boolean" in err(body)[1]
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {"cidr": "10.0.0.0/24", "ip_version": 4}})
    assert status == 400 and err(body)[1] == "Failed to parse request. Required attribute 'network_id' not specified"
    _, net = await api.req("POST", "/v2.0/networks", {"network": {"name": "n"}})
    nid = net["network"]["id"]
    for sub in ({"network_id": nid, "cidr": 5, "ip_version": 4}, {"network_id": nid, "cidr": "x", "ip_version": 9},
                {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4, "allocation_pools": "x"},
                {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "zz"},
                {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4, "dns_nameservers": [1]}):
        status, body = await api.req("POST", "/v2.0/subnets", {"subnet": sub})
        assert status == 400, (sub, body)
    for port in ({"network_id": nid, "fixed_ips": "x"}, {"network_id": nid, "fixed_ips": [{"foo": 1}]},
                 {"network_id": nid, "security_groups": "x"}, {"network_id": nid, "mac_address": "zz"},
                 {"network_id": nid, "allowed_address_pairs": [{}]}, {"network_id": 7}):
        status, body = await api.req("POST", "/v2.0/ports", {"port": port})
        assert status == 400, (port, body)
    status, body = await api.req("PUT", f"/v2.0/networks/{nid}", {"network": {"subnets": []}})
    assert status == 400 and "read-only" in err(body)[1]


async def test_subnet_rules(api):
    _, net = await api.req("POST", "/v2.0/networks", {"network": {"name": "n"}})
    nid = net["network"]["id"]
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.1/24",
                                                                        "ip_version": 4}})
    assert status == 400 and err(body) == ("InvalidInput", "Invalid input for cidr. Reason: '10.0.0.1/24' isn't a "
                                           "recognized IP subnet cidr, '10.0.0.0/24' is recommended.")
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/24",
                                                                        "ip_version": 6}})
    assert status == 400 and err(body)[0] == "InvalidInput"
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/24",
                                                                        "ip_version": 4, "gateway_ip": None,
                                                                        "enable_dhcp": False}})
    assert status == 201
    sub = body["subnet"]
    assert sub["gateway_ip"] is None and sub["allocation_pools"] == [{"start": "10.0.0.1", "end": "10.0.0.254"}]
    assert sub["enable_dhcp"] is False
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/16",
                                                                        "ip_version": 4}})
    assert status == 400 and err(body) == ("InvalidInput", "Invalid input for operation: Requested subnet with "
                                           f"cidr: 10.0.0.0/16 for network: {nid} overlaps with another subnet.")
    # a second, IPv6 subnet on the same network and an explicit gateway + pools
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {
        "network_id": nid, "cidr": "fd00::/64", "ip_version": 6}})
    assert status == 201 and body["subnet"]["gateway_ip"] == "fd00::1"
    _, net2 = await api.req("POST", "/v2.0/networks", {"network": {"name": "n2"}})
    status, body = await api.req("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net2["network"]["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.254",
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.12"}]}})
    assert status == 201, body  # same CIDR on another network is fine
    small = body["subnet"]
    # pool exhaustion, in-use fixed IPs, SubnetInUse, NetworkInUse
    n2 = net2["network"]["id"]
    ips = []
    for _ in range(3):
        status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": n2}})
        assert status == 201
        ips.append(body["port"]["fixed_ips"][0]["ip_address"])
    assert ips == ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
    status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": n2}})
    assert status == 409 and err(body) == ("IpAddressGenerationFailure",
                                           f"No more IP addresses available on network {n2}.")
    status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": n2, "fixed_ips": [
        {"ip_address": "10.0.0.11"}]}})
    assert status == 409 and err(body)[0] == "IpAddressInUse"
    status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": n2, "fixed_ips": [
        {"subnet_id": small["id"], "ip_address": "10.0.0.100"}]}})
    assert status == 201 and body["port"]["fixed_ips"] == [{"subnet_id": small["id"], "ip_address": "10.0.0.100"}]
    status, body = await api.req("DELETE", f"/v2.0/subnets/{small['id']}")
    assert status == 409 and err(body)[0] == "SubnetInUse"
    status, body = await api.req("DELETE", f"/v2.0/networks/{n2}")
    assert status == 409 and err(body) == ("NetworkInUse", f"Unable to complete operation on network {n2}. There "
                                           "are one or more ports still in use on the network.")
    # a freed address is reused
    _, ports = await api.req("GET", f"/v2.0/ports?network_id={n2}&fixed_ips=ip_address%3D10.0.0.11")
    assert len(ports["ports"]) == 1
    assert (await api.req("DELETE", f"/v2.0/ports/{ports['ports'][0]['id']}"))[0] == 204
    status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": n2}})
    assert status == 201 and body["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.11"
    _, ports = await api.req("GET", f"/v2.0/ports?network_id={n2}")
    for p in ports["ports"]:
        assert (await api.req("DELETE", f"/v2.0/ports/{p['id']}"))[0] == 204
    assert (await api.req("DELETE", f"/v2.0/networks/{n2}"))[0] == 204
    assert (await api.req("GET", f"/v2.0/subnets/{small['id']}"))[0] == 404


async def test_security_group_rules_validation(api):
    status, body = await api.req("POST", "/v2.0/security-groups", {"security_group": {"name": "web"}})
    assert status == 201
    sg = body["security_group"]
    assert sg["stateful"] is True and sg["revision_number"] == 0
    sid = sg["id"]

    async def rule(**kw: Any) -> tuple[int, Any]:
        return await api.req("POST", "/v2.0/security-group-rules",
                             {"security_group_rule": {"security_group_id": sid, "direction": "ingress", **kw}})

    status, body = await rule(protocol="tcp", port_range_min=100, port_range_max=99)
    assert status == 400 and err(body)[0] == "InvalidInput"
    status, body = await rule(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")
    assert status == 400 and err(body)[0] == "SecurityGroupRuleParameterConflict"
    status, body = await rule(direction="sideways")
    assert status == 400 and err(body)[0] == "InvalidInput"
    status, body = await rule(protocol="bogus")
    assert status == 400 and err(body)[0] == "SecurityGroupRuleInvalidProtocol"
    status, body = await rule(port_range_min=22, port_range_max=22)
    assert status == 400 and "protocol" in err(body)[1]
    status, body = await rule(protocol="icmp", port_range_min=300)
    assert status == 400 and err(body)[0] == "SecurityGroupInvalidIcmpValue"
    status, body = await rule(ethertype="IPv5")
    assert status == 400
    status, body = await rule(protocol="tcp", port_range_min="x", port_range_max=3)
    assert status == 400

    status, body = await rule(protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="10.1.2.3/16")
    assert status == 201
    first = body["security_group_rule"]
    assert first["remote_ip_prefix"] == "10.1.2.3/16" and first["normalized_cidr"] == "10.1.0.0/16"
    # duplicate after normalisation (prefix, protocol number vs name)
    status, body = await rule(protocol="6", port_range_min=80, port_range_max=80, remote_ip_prefix="10.1.0.0/16")
    assert status == 409 and err(body) == ("SecurityGroupRuleExists",
                                           f"Security group rule already exists. Rule id is {first['id']}.")
    status, body = await rule(protocol="icmp", port_range_min=8, port_range_max=0)
    assert status == 201 and body["security_group_rule"]["port_range_min"] == 8
    status, body = await rule(protocol="any")
    assert status == 201 and body["security_group_rule"]["protocol"] is None
    status, body = await rule(protocol=132, ethertype="IPv6", remote_group_id=sid)
    assert status == 201 and body["security_group_rule"]["protocol"] == "132"
    _, body = await api.req("GET", f"/v2.0/security-groups/{sid}")
    assert body["security_group"]["revision_number"] == 4
    assert len(body["security_group"]["security_group_rules"]) == 6
    _, body = await api.req("GET", f"/v2.0/security-group-rules?security_group_id={sid}&direction=ingress")
    assert len(body["security_group_rules"]) == 4
    assert (await api.req("DELETE", f"/v2.0/security-group-rules/{first['id']}"))[0] == 204
    status, body = await rule(protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="10.1.0.0/16")
    assert status == 201

    # the project's default group: ingress from itself + default egress
    _, body = await api.req("GET", "/v2.0/security-groups?name=default")
    (default,) = body["security_groups"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in default["security_group_rules"]}
    assert rules == {("ingress", "IPv4", default["id"]), ("ingress", "IPv6", default["id"]),
                     ("egress", "IPv4", None), ("egress", "IPv6", None)}
    assert all(r["belongs_to_default_sg"] for r in default["security_group_rules"])
    # SG in use
    _, net = await api.req("POST", "/v2.0/networks", {"network": {}})
    _, port = await api.req("POST", "/v2.0/ports", {"port": {"network_id": net["network"]["id"],
                                                             "security_groups": [sid]}})
    assert port["port"]["security_groups"] == [sid]
    status, body = await api.req("DELETE", f"/v2.0/security-groups/{sid}")
    assert status == 409 and err(body) == ("SecurityGroupInUse", f"Security Group {sid} in use.")
    _, port2 = await api.req("POST", "/v2.0/ports", {"port": {"network_id": net["network"]["id"]}})
    assert port2["port"]["security_groups"] == [default["id"]], "default SG applied by default"
    status, body = await api.req("PUT", f"/v2.0/ports/{port['port']['id']}", {"port": {"security_groups": []}})
    assert status == 200 and body["port"]["security_groups"] == []
    assert (await api.req("DELETE", f"/v2.0/security-groups/{sid}"))[0] == 204


async def test_only_an_admin_deletes_a_default_group_and_the_project_gets_a_new_one(twin, api):
    async with aiohttp.ClientSession() as s:
        token, doc = await keystone_user(s, twin.url, project="p3")
        member = Client(s, twin.url, token)
        _, body = await member.req("GET", "/v2.0/security-groups?name=default")
        (default,) = body["security_groups"]
        status, body = await member.req("DELETE", f"/v2.0/security-groups/{default['id']}")
        assert status == 409 and err(body) == ("SecurityGroupCannotRemoveDefault",
                                               "Insufficient rights for removing default security group.")
        # an admin may (Tempest's credential cleanup deletes each project's default group)
        pid = doc["project"]["id"]
        _, body = await api.req("GET", f"/v2.0/security-groups?tenant_id={pid}&name=default")
        assert [g["id"] for g in body["security_groups"]] == [default["id"]]
        assert (await api.req("DELETE", f"/v2.0/security-groups/{default['id']}"))[0] == 204
        _, body = await member.req("GET", "/v2.0/security-groups?name=default")
        (again,) = body["security_groups"]
        assert again["id"] != default["id"] and len(again["security_group_rules"]) == 4


async def test_projects_are_isolated(twin, api):
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_user(s, twin.url, project="p2")     # a member of p2: no admin anywhere
        other = Client(s, twin.url, token)
        _, net = await api.req("POST", "/v2.0/networks", {"network": {"name": "mine"}})
        nid = net["network"]["id"]
        status, body = await other.req("GET", f"/v2.0/networks/{nid}")
        assert status == 404 and err(body)[0] == "NetworkNotFound"
        _, body = await other.req("GET", "/v2.0/networks")
        assert [n["name"] for n in body["networks"]] == ["public"]
        _, body = await api.req("GET", "/v2.0/networks")
        assert sorted(n["name"] for n in body["networks"]) == ["mine", "public"]
        public = next(n for n in body["networks"] if n["name"] == "public")
        assert public["router:external"] is True and public["shared"] is True
        _, subs = await other.req("GET", "/v2.0/subnets")
        [public_subnet] = subs["subnets"]
        assert ipaddress.ip_network(public_subnet["cidr"]).subnet_of(ipaddress.ip_network("198.18.0.0/15"))
        assert ipaddress.ip_network(public_subnet["cidr"]).prefixlen == 24
        status, body = await other.req("DELETE", f"/v2.0/networks/{public['id']}")
        assert status == 403


async def test_paging_filters_and_fields(api):
    ids = []
    for i in range(5):
        _, body = await api.req("POST", "/v2.0/networks", {"network": {"name": f"n{i}", "shared": i == 4}})
        ids.append(body["network"]["id"])
    _, body = await api.req("GET", "/v2.0/networks?limit=2")
    assert len(body["networks"]) == 2 and body["networks_links"][0]["rel"] == "next"
    seen, url = [], "/v2.0/networks?limit=2"
    while url:
        _, body = await api.req("GET", url)
        seen += [n["id"] for n in body["networks"]]
        links = body.get("networks_links")
        url = links[0]["href"].split("/network", 1)[1] if links else None
    assert len(seen) == 6 and len(set(seen)) == 6
    _, body = await api.req("GET", "/v2.0/networks?name=n1&name=n3")
    assert sorted(n["name"] for n in body["networks"]) == ["n1", "n3"]
    _, body = await api.req("GET", "/v2.0/networks?shared=true&router:external=false")
    assert [n["name"] for n in body["networks"]] == ["n4"]
    _, body = await api.req("GET", "/v2.0/networks?name=n0&fields=id&fields=name")
    assert body["networks"] == [{"id": ids[0], "name": "n0"}]
    _, body = await api.req("GET", "/v2.0/networks?no_such_field=1&name=nobody")
    assert body["networks"] == []
    # tags
    assert (await api.req("PUT", f"/v2.0/networks/{ids[0]}/tags", {"tags": ["a", "b"]}))[0] == 200
    assert (await api.req("PUT", f"/v2.0/networks/{ids[1]}/tags/a"))[0] == 201
    _, body = await api.req("GET", "/v2.0/networks?tags=a,b")
    assert [n["id"] for n in body["networks"]] == [ids[0]]
    _, body = await api.req("GET", "/v2.0/networks?tags-any=a")
    assert [n["id"] for n in body["networks"]] == ids[:2]
    # bulk create
    status, body = await api.req("POST", "/v2.0/networks", {"networks": [{"name": "b1"}, {"name": "b2"}]})
    assert status == 201 and [n["name"] for n in body["networks"]] == ["b1", "b2"]


async def test_floating_ips_and_routers(api):
    _, pub = await api.req("GET", "/v2.0/networks?router:external=true")
    public = pub["networks"][0]["id"]
    _, net = await api.req("POST", "/v2.0/networks", {"network": {"name": "n"}})
    nid = net["network"]["id"]
    _, sub = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.9.0.0/24",
                                                                "ip_version": 4}})
    _, port = await api.req("POST", "/v2.0/ports", {"port": {"network_id": nid}})
    pid = port["port"]["id"]
    status, body = await api.req("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": nid}})
    assert status == 400 and "not a valid external network" in err(body)[1]
    status, body = await api.req("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": "nope"}})
    assert status == 404 and err(body)[0] == "NetworkNotFound"
    status, body = await api.req("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": public,
                                                                              "port_id": pid}})
    assert status == 201
    fip = body["floatingip"]
    assert fip["status"] == "ACTIVE" and fip["fixed_ip_address"] == port["port"]["fixed_ips"][0]["ip_address"]
    host = ipaddress.ip_address(fip["floating_ip_address"]).packed[3]
    assert host not in (0, 1, 254, 255), "not the network, the client's gateway, the host's link, broadcast"
    status, body = await api.req("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    assert status == 200 and body["floatingip"]["status"] == "DOWN" and body["floatingip"]["port_id"] is None
    status, body = await api.req("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": pid}})
    assert status == 200 and body["floatingip"]["port_id"] == pid
    # deleting the port leaves the floating IP unassociated
    assert (await api.req("DELETE", f"/v2.0/ports/{pid}"))[0] == 204
    _, body = await api.req("GET", f"/v2.0/floatingips/{fip['id']}")
    assert body["floatingip"]["port_id"] is None and body["floatingip"]["status"] == "DOWN"
    assert (await api.req("DELETE", f"/v2.0/floatingips/{fip['id']}"))[0] == 204
    assert (await api.req("DELETE", f"/v2.0/floatingips/{fip['id']}"))[0] == 404
    # router with a gateway and an interface
    status, body = await api.req("POST", "/v2.0/routers", {"router": {
        "name": "r", "external_gateway_info": {"network_id": public}}})
    assert status == 201
    router = body["router"]
    assert router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"].startswith("198.18.")
    status, body = await api.req("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                                 {"subnet_id": sub["subnet"]["id"]})
    assert status == 200 and body["subnet_id"] == sub["subnet"]["id"]
    _, ports = await api.req("GET", f"/v2.0/ports?device_id={router['id']}&device_owner=network:router_interface")
    assert ports["ports"][0]["fixed_ips"][0]["ip_address"] == "10.9.0.1"
    assert (await api.req("DELETE", f"/v2.0/routers/{router['id']}"))[0] == 409
    assert (await api.req("DELETE", f"/v2.0/networks/{nid}"))[0] == 409
    status, _ = await api.req("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                              {"subnet_id": sub["subnet"]["id"]})
    assert status == 200
    assert (await api.req("DELETE", f"/v2.0/routers/{router['id']}"))[0] == 204
    assert (await api.req("DELETE", f"/v2.0/networks/{nid}"))[0] == 204


async def test_port_binding_lifecycle(twin, api):
    _, net = await api.req("POST", "/v2.0/networks", {"network": {}})
    nid = net["network"]["id"]
    await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": 4}})
    _, port = await api.req("POST", "/v2.0/ports", {"port": {"network_id": nid}})
    assert port["port"]["status"] == "DOWN" and port["port"]["binding:vnic_type"] == "normal"
    st = twin.twin.clouds["cloud-1"].regions["RegionOne"].neutron
    p = st.ports[port["port"]["id"]]
    st.bind_port(p, "server-1")
    for _ in range(100):
        _, body = await api.req("GET", f"/v2.0/ports/{p.id}")
        if body["port"]["status"] == "ACTIVE":
            break
        await asyncio.sleep(0.01)
    assert body["port"]["status"] == "ACTIVE" and body["port"]["device_id"] == "server-1"
    assert body["port"]["device_owner"] == "compute:nova" and body["port"]["binding:host_id"]


async def test_quotas(twin):
    twin.twin.profiles.add("tight", {"extends": "openstack", "network": {"default_egress": ["IPv4"]},
                                     "quotas": {"networks": 10, "security_groups": 10}})
    cloud = twin.twin.add_cloud("tight", "tight")
    async with aiohttp.ClientSession() as s:
        async with s.post(twin.url + "/v3/auth/tokens", json=auth_body("p1", "tight")) as r:
            token = r.headers["X-Subject-Token"]
        api = Client(s, twin.url, token)
        global NET
        old, NET = NET, "/tight/RegionOne/network"
        try:
            for i in range(10):
                assert (await api.req("POST", "/v2.0/networks", {"network": {"name": f"n{i}"}}))[0] == 201
            status, body = await api.req("POST", "/v2.0/networks", {"network": {}})
            assert status == 409 and err(body) == ("OverQuota", "Quota exceeded for resources: ['network'].")
            # a new SG gets one IPv4 egress rule only; the default SG counts towards the quota
            _, body = await api.req("POST", "/v2.0/security-groups", {"security_group": {"name": "x"}})
            assert [r["ethertype"] for r in body["security_group"]["security_group_rules"]] == ["IPv4"]
            for i in range(8):
                assert (await api.req("POST", "/v2.0/security-groups", {"security_group": {}}))[0] == 201
            status, body = await api.req("POST", "/v2.0/security-groups", {"security_group": {}})
            assert status == 409 and err(body)[1] == "Quota exceeded for resources: ['security_group']."
            _, body = await api.req("GET", f"/v2.0/quotas/{cloud.project('p1').id}/details")
            assert body["quota"]["network"] == {"limit": 10, "used": 10, "reserved": 0}
        finally:
            NET = old


# ------------------------------------------------------------------------------------------------
# model level: the interface other services call, and allocation at scale
# ------------------------------------------------------------------------------------------------


def _state(profile: str = "openstack") -> tuple[Any, str]:
    twin = Twin(TwinConfig())
    cloud = twin.add_cloud("m", profile)
    return cloud.regions[cloud.profile.default_region].neutron, cloud.project("p1", create=True).id


def test_5000_ports_in_a_slash_16():
    st, p = _state()
    net = st.add_network(p, name="big")
    sub = st.add_subnet(p, net.id, cidr="10.0.0.0/16", ip_version=4)
    ports = [st.create_port(p, net.id, device_id=f"vm-{i}", device_owner="compute:nova") for i in range(5000)]
    ips = [ipaddress.ip_address(pt.fixed_ips[0]["ip_address"]) for pt in ports]
    assert len(set(ips)) == 5000
    pool = ipaddress.ip_network("10.0.0.0/16")
    assert all(ip in pool and ip not in (pool.network_address, pool.network_address + 1, pool.broadcast_address)
               for ip in ips)
    assert len({pt.mac_address for pt in ports}) == 5000
    # free half, allocate again: no duplicates (the cursor hands out fresh addresses first)
    for pt in ports[::2]:
        st.release_device(pt.device_id)
    again = [st.create_port(p, net.id) for _ in range(2500)]
    live = [pt.fixed_ips[0]["ip_address"] for pt in st.ports.values()]
    assert len(live) == 5000 and len(set(live)) == 5000
    assert all(ipaddress.ip_address(pt.fixed_ips[0]["ip_address"]) in pool for pt in again)
    assert st.port_by_ip(net.id, again[0].fixed_ips[0]["ip_address"]) is again[0]
    # a rebuild (snapshot restore) recomputes the pools from the ports
    st.rebuild()
    extra = st.create_port(p, net.id, subnet_id=sub.id)
    assert extra.fixed_ips[0]["ip_address"] not in set(live)


def test_model_interface_for_nova():
    st, p = _state()
    net = st.add_network(p, name="n")
    st.add_subnet(p, net.id, cidr="10.0.0.0/24", ip_version=4)
    sg = st.add_security_group(p, name="web")
    assert st.resolve_security_groups(p, ["web", "default"]) == [sg.id, st.default_security_group(p).id]
    with pytest.raises(Exception) as e:
        st.resolve_security_groups(p, ["nope"])
    assert e.value.status == 400 and str(e.value) == f"Security group nope not found for project {p}."
    st.add_security_group(p, name="web")
    with pytest.raises(Exception) as e:
        st.resolve_security_groups(p, ["web"])
    assert e.value.status == 409

    events: list[tuple[str, str]] = []
    st.sg_listeners.append(lambda ev, obj: events.append((ev, obj.id)))
    made = st.create_port(p, net.id, security_group_ids=[sg.id], device_id="vm-1", device_owner="compute:nova",
                          ip_address="10.0.0.50")
    assert made.fixed_ips[0]["ip_address"] == "10.0.0.50" and made.status == "DOWN"
    given = st.add_port(p, net.id)
    st.bind_port(given, "vm-1")
    assert {x.id for x in st.ports_of_device("vm-1")} == {made.id, given.id}
    fip = st.allocate_floatingip(p, made.id)
    assert st.floatingips_of_port(made.id) == [fip] and fip.status == "ACTIVE"
    assert st.port_by_ip(net.id, "10.0.0.50") is made
    st.release_device("vm-1")
    assert made.id not in st.ports and given.id in st.ports
    assert given.device_id == "" and given.status == "DOWN"
    assert fip.port_id is None and fip.status == "DOWN" and fip.fixed_ip_address is None
    assert st.ports_of_device("vm-1") == []
    assert ("port.create", made.id) in events and ("port.delete", made.id) in events
    st.delete_floatingip(p, fip.id)
    assert fip.id not in st.floatingips
    with pytest.raises(Exception) as e:
        st.get_network("someone-else", net.id)
    assert e.value.status == 404 and e.value.code == "NetworkNotFound"
    assert st.get_network("someone-else", st.public_network_id).name == "public"


def test_lean_egress_profile_has_no_default_rules_and_no_default_sg():
    st, p = _state("lean-egress")
    sg = st.add_security_group(p, name="x")
    assert st.rules_of(sg) == []
    assert st.default_security_group(p) is None
    net = st.add_network(p)
    assert st.add_port(p, net.id).security_groups == []


def test_floating_ip_pool_exhaustion_and_quota():
    st, p = _state()
    got = {st.allocate_floatingip(p).floating_ip_address for _ in range(252)}
    net = ipaddress.ip_network(st.subnets[st.public_subnet_id].cidr)
    assert len(got) == 252 and str(net[1]) not in got and str(net[254]) not in got, \
        "the gateway (test client) and the last host (the host's link) are never floating IPs"
    with pytest.raises(Exception) as e:
        st.allocate_floatingip(p)
    assert e.value.status == 409 and e.value.code == "IpAddressGenerationFailure"


async def test_hostile_bodies_never_500(twin, api):
    """Every POST/PUT route fed wrong types for every attribute: 4xx in the Neutron envelope, never 500."""
    _, net = await api.req("POST", "/v2.0/networks", {"network": {"name": "n"}})
    nid = net["network"]["id"]
    _, sub = await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.0.0.0/24",
                                                                "ip_version": 4}})
    _, port = await api.req("POST", "/v2.0/ports", {"port": {"network_id": nid}})
    _, sg = await api.req("POST", "/v2.0/security-groups", {"security_group": {"name": "s"}})
    _, fip = await api.req("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": (await api.req("GET", "/v2.0/networks?name=public"))[1]["networks"][0]["id"]}})
    _, router = await api.req("POST", "/v2.0/routers", {"router": {"name": "r"}})
    attrs = {
        "network": ["name", "description", "admin_state_up", "shared", "router:external", "mtu",
                    "port_security_enabled", "tags", "availability_zone_hints"],
        "subnet": ["network_id", "cidr", "ip_version", "gateway_ip", "allocation_pools", "enable_dhcp",
                   "dns_nameservers", "host_routes", "name"],
        "port": ["network_id", "fixed_ips", "security_groups", "mac_address", "allowed_address_pairs",
                 "binding:host_id", "binding:vnic_type", "device_id", "port_security_enabled", "name"],
        "security_group": ["name", "description", "stateful"],
        "security_group_rule": ["security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                                "port_range_max", "remote_ip_prefix", "remote_group_id", "description"],
        "floatingip": ["floating_network_id", "port_id", "fixed_ip_address", "floating_ip_address"],
        "router": ["name", "external_gateway_info", "admin_state_up", "routes"],
    }
    valid = {"network": {}, "subnet": {"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4},
             "port": {"network_id": nid}, "security_group": {},
             "security_group_rule": {"security_group_id": sg["security_group"]["id"], "direction": "ingress"},
             "floatingip": {"floating_network_id": fip["floatingip"]["floating_network_id"]}, "router": {}}
    colls = {"network": ("networks", nid), "subnet": ("subnets", sub["subnet"]["id"]),
             "port": ("ports", port["port"]["id"]), "security_group": ("security-groups", sg["security_group"]["id"]),
             "security_group_rule": ("security-group-rules", None),
             "floatingip": ("floatingips", fip["floatingip"]["id"]), "router": ("routers", router["router"]["id"])}
    weird = [None, 1, -1, 1.5, True, "", "x" * 300, "zz", [], [1], [{}], [{"a": 1}], {}, {"a": [1]},
             [{"start": "10.0.0.9", "end": "10.0.0.2"}], [{"ip_address": "x"}], [{"subnet_id": 1}],
             [{"destination": "x", "nexthop": 3}], {"network_id": 5}, "10.0.0.1/33", "::/0", "0.0.0.0/0"]
    for key, names in attrs.items():
        coll, oid = colls[key]
        for name in names:
            for value in weird:
                body = {key: {**valid[key], name: value}}
                status, reply = await api.req("POST", f"/v2.0/{coll}", body)
                assert status < 500, (key, name, value, reply)
                if status >= 400:
                    assert "NeutronError" in reply
                if oid is not None:
                    status, reply = await api.req("PUT", f"/v2.0/{coll}/{oid}", {key: {name: value}})
                    assert status < 500, ("PUT", key, name, value, reply)
    for raw in (b"[]", b"1", b'"x"', b"null", b'{"network": null}', b"\xff\xfe"):
        status, reply = await api.req("POST", "/v2.0/networks", raw=raw)
        assert status == 400, raw
    assert twin._runner.app["dispatcher"].server_errors == 0


async def test_ipv6_subnet_modes_follow_neutrons_rules(api):
    _, net = await api.req("POST", "/v2.0/networks", {"network": {}})
    nid = net["network"]["id"]

    async def subnet(cidr: str = "2001:db8::/64", version: int = 6, **kw: Any) -> tuple[int, Any]:
        return await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": cidr,
                                                                  "ip_version": version, **kw}})

    status, body = await subnet(ipv6_ra_mode="dhcpv6-stateless", ipv6_address_mode="dhcpv6-stateful")
    assert status == 400 and err(body)[0] == "InvalidInput" and "must be the same value" in err(body)[1]
    status, body = await subnet(ipv6_address_mode="bogus")
    assert status == 400 and "'bogus' is not in" in err(body)[1]
    status, body = await subnet("10.0.0.0/24", 4, ipv6_address_mode="slaac")
    assert status == 400 and "not valid when ip_version is 4" in err(body)[1]
    status, body = await subnet(ipv6_address_mode="slaac", enable_dhcp=False)
    assert status == 400 and "enable_dhcp is set to False" in err(body)[1]
    status, body = await subnet("2001:db8::/80", ipv6_address_mode="slaac")
    assert status == 400 and "requires the prefix to be /64" in err(body)[1]
    _, body = await api.req("GET", f"/v2.0/subnets?network_id={nid}")
    assert body["subnets"] == [], "no refused subnet was made"
    status, body = await subnet(ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert status == 201


async def test_port_extra_dhcp_options_and_ip_substring_filter(api):
    _, net = await api.req("POST", "/v2.0/networks", {"network": {}})
    nid = net["network"]["id"]
    await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "cidr": "10.7.0.0/24", "ip_version": 4}})
    opts = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
            {"opt_name": "tftp-server", "opt_value": "2015::dead", "ip_version": 6}]
    status, body = await api.req("POST", "/v2.0/ports", {"port": {"network_id": nid, "extra_dhcp_opts": opts,
                                                                  "fixed_ips": [{"ip_address": "10.7.0.15"}]}})
    assert status == 201
    pid = body["port"]["id"]
    assert body["port"]["extra_dhcp_opts"] == [{**opts[0], "ip_version": 4}, opts[1]]
    # an update sets the options it names and removes those given a null value
    status, body = await api.req("PUT", f"/v2.0/ports/{pid}", {"port": {"extra_dhcp_opts": [
        {"opt_name": "bootfile-name", "opt_value": None}, {"opt_name": "server-ip-address", "opt_value": "10.7.0.1"}]}})
    assert status == 200
    assert sorted(o["opt_name"] for o in body["port"]["extra_dhcp_opts"]) == ["server-ip-address", "tftp-server"]
    status, body = await api.req("PUT", f"/v2.0/ports/{pid}", {"port": {"extra_dhcp_opts": [{"opt_name": "x"}]}})
    assert status == 400 and err(body)[0] == "InvalidInput"
    _, body = await api.req("GET", "/v2.0/extensions")
    assert {"extra_dhcp_opt", "ip-substring-filtering"} <= {e["alias"] for e in body["extensions"]}
    await api.req("POST", "/v2.0/ports", {"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.7.0.25"}]}})
    _, body = await api.req("GET", "/v2.0/ports?fixed_ips=ip_address_substr=10.7.0.1")
    assert [p["id"] for p in body["ports"]] == [pid]


async def test_subnet_pools_allocate_subnets_and_keep_their_prefixes(api):
    status, body = await api.req("POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": "pool", "prefixes": ["10.50.0.0/24", "10.50.1.0/24"], "default_prefixlen": 26, "tags": ["t"]}})
    assert status == 201
    pool = body["subnetpool"]
    assert pool["prefixes"] == ["10.50.0.0/23"] and pool["ip_version"] == 4 and pool["min_prefixlen"] == 8
    assert pool["max_prefixlen"] == 32 and pool["tags"] == ["t"]
    _, net = await api.req("POST", "/v2.0/networks", {"network": {}})
    nid = net["network"]["id"]

    async def subnet(**kw: Any) -> tuple[int, Any]:
        return await api.req("POST", "/v2.0/subnets", {"subnet": {"network_id": nid, "ip_version": 4, **kw}})

    status, body = await subnet(subnetpool_id=pool["id"])
    assert status == 201 and body["subnet"]["cidr"] == "10.50.0.0/26"
    assert body["subnet"]["subnetpool_id"] == pool["id"]
    status, body = await subnet(subnetpool_id=pool["id"], prefixlen=25)
    assert status == 201 and body["subnet"]["cidr"] == "10.50.0.128/25"
    status, body = await subnet(subnetpool_id=pool["id"], cidr="10.60.0.0/24")
    assert status == 400 and "not within the prefixes" in err(body)[1]
    status, body = await subnet()
    assert status == 400 and err(body)[0] == "BadRequest"
    # prefixes only grow; a pool with subnets stays
    status, body = await api.req("PUT", f"/v2.0/subnetpools/{pool['id']}", {"subnetpool": {"prefixes": ["10.50.0.0/24"]}})
    assert status == 400
    status, body = await api.req("PUT", f"/v2.0/subnetpools/{pool['id']}", {"subnetpool": {
        "prefixes": ["10.50.0.0/22"], "name": "bigger"}})
    assert status == 200 and body["subnetpool"]["prefixes"] == ["10.50.0.0/22"]
    assert (await api.req("DELETE", f"/v2.0/subnetpools/{pool['id']}"))[0] == 409
    _, body = await api.req("GET", "/v2.0/subnetpools?name=bigger")
    assert [p["id"] for p in body["subnetpools"]] == [pool["id"]]
    assert (await api.req("PUT", f"/v2.0/subnetpools/{pool['id']}/tags/u"))[0] == 201
    _, body = await api.req("GET", "/v2.0/subnetpools?tags=t,u")
    assert [p["id"] for p in body["subnetpools"]] == [pool["id"]]
    for sid in [s["id"] for s in (await api.req("GET", f"/v2.0/subnets?network_id={nid}"))[1]["subnets"]]:
        assert (await api.req("DELETE", f"/v2.0/subnets/{sid}"))[0] == 204
    assert (await api.req("DELETE", f"/v2.0/subnetpools/{pool['id']}"))[0] == 204
    assert (await api.req("GET", f"/v2.0/subnetpools/{pool['id']}"))[0] == 404
