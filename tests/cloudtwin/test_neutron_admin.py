"""Neutron's admin side on Cloud-Twin: an admin sees and acts on every project's objects and creates for
another project, a member may not; per-project quotas are set, shown and enforced; virtual agents,
availability zones and service providers."""

from __future__ import annotations

from typing import Any

import aiohttp

from twin_helpers import keystone_login, keystone_user

N = "/cloud-1/RegionOne/network/v2.0"


class Client:
    def __init__(self, s: aiohttp.ClientSession, url: str, token: str) -> None:
        self.s, self.url, self.token = s, url + N, token

    async def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.s.request(method, self.url + path, json=body, headers={"X-Auth-Token": self.token}) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else None)


async def test_admin_scope_quotas_and_agents(twin: Any) -> None:
    async with aiohttp.ClientSession() as s:
        admin_token, _ = await keystone_login(s, twin.url, project="admin")
        admin = Client(s, twin.url, admin_token)
        token, doc = await keystone_user(s, twin.url, project="tenant")
        member = Client(s, twin.url, token)
        pid = doc["project"]["id"]
        code, body = await admin("POST", "/networks", {"network": {"name": "for-tenant", "project_id": pid}})
        assert code == 201 and body["network"]["project_id"] == pid
        nid = body["network"]["id"]
        code, body = await member("GET", f"/networks/{nid}")
        assert code == 200 and body["network"]["name"] == "for-tenant"      # the tenant owns it
        code, body = await member("POST", "/networks", {"network": {"name": "x", "tenant_id": "someone-else"}})
        assert code == 403
        code, body = await member("POST", "/networks", {"network": {"name": "own"}})
        own = body["network"]["id"]
        names = {n["name"] for n in (await admin("GET", "/networks"))[1]["networks"]}
        assert {"for-tenant", "own", "public"} <= names                      # every project's
        filtered = (await admin("GET", f"/networks?project_id={pid}"))[1]["networks"]
        assert {n["name"] for n in filtered} == {"for-tenant", "own"}
        assert "for-tenant" in {n["name"] for n in (await member("GET", "/networks"))[1]["networks"]}
        code, _ = await admin("PUT", f"/networks/{own}", {"network": {"name": "renamed-by-admin"}})
        assert code == 200
        # quotas: set for the tenant, enforced, shown, reset
        assert (await member("PUT", f"/quotas/{pid}", {"quota": {"network": 5}}))[0] == 403
        code, body = await admin("PUT", f"/quotas/{pid}", {"quota": {"network": 2}})
        assert code == 200 and body["quota"]["network"] == 2
        assert (await admin("PUT", f"/quotas/{pid}", {"quota": {"network": -2}}))[0] == 400
        assert (await admin("PUT", f"/quotas/{pid}", {"quota": {"bogus": 1}}))[0] == 400
        code, body = await member("POST", "/networks", {"network": {"name": "third"}})
        assert code == 409 and body["NeutronError"]["type"] == "OverQuota"
        code, body = await member("GET", f"/quotas/{pid}/details")
        assert body["quota"]["network"] == {"limit": 2, "used": 2, "reserved": 0}
        assert [q["project_id"] for q in (await admin("GET", "/quotas"))[1]["quotas"]] == [pid]
        assert (await admin("DELETE", f"/quotas/{pid}"))[0] == 204
        assert (await member("POST", "/networks", {"network": {"name": "third"}}))[0] == 201
        # agents, zones, service providers
        assert (await member("GET", "/agents"))[1] == {"agents": []}
        _, agents = await admin("GET", "/agents")
        types = {a["agent_type"] for a in agents["agents"]}
        assert {"Open vSwitch agent", "L3 agent", "DHCP agent", "Metadata agent"} <= types
        dhcp = next(a for a in agents["agents"] if a["agent_type"] == "DHCP agent")
        code, body = await admin("PUT", f"/agents/{dhcp['id']}", {"agent": {"admin_state_up": False}})
        assert code == 200 and body["agent"]["admin_state_up"] is False
        assert (await admin("PUT", f"/agents/{dhcp['id']}", {"agent": {"host": "x"}}))[0] == 400
        _, zones = await member("GET", "/availability_zones")
        assert {(z["name"], z["resource"]) for z in zones["availability_zones"]} == {("nova", "network"),
                                                                                 ("nova", "router")}
        # a router gateway on a chosen address of an external network (admin); a used address is a 409
        code, ext = await admin("POST", "/networks", {"network": {"name": "ext", "router:external": True}})
        ext_id = ext["network"]["id"]
        _, sub = await admin("POST", "/subnets", {"subnet": {"network_id": ext_id, "cidr": "10.77.0.0/24",
                                                             "ip_version": 4}})
        fixed = [{"subnet_id": sub["subnet"]["id"], "ip_address": "10.77.0.50"}]
        code, body = await admin("POST", "/routers", {"router": {"external_gateway_info": {
            "network_id": ext_id, "external_fixed_ips": fixed}}})
        assert code == 201 and body["router"]["external_gateway_info"]["external_fixed_ips"] == fixed
        code, body = await admin("POST", "/routers", {"router": {"external_gateway_info": {
            "network_id": ext_id, "external_fixed_ips": fixed}}})
        assert code == 409 and body["NeutronError"]["type"] == "IpAddressInUse"
        _, sp = await member("GET", "/service-providers")
        assert sp["service_providers"][0]["service_type"] == "L3_ROUTER_NAT"
