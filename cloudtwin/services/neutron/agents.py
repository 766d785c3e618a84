"""Neutron's virtual agents and what the admin API shows about the deployment: an Open vSwitch agent
per compute host, and an L3, a DHCP and a metadata agent on the network host (the region's first
compute host), each alive; the DHCP agent hosts every network with a DHCP-enabled subnet and the L3
agent every router. Admins may disable an agent or change its description (kept in the region's
Neutron state); availability zones and service providers are derived from the same deployment."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.ids import stable_id
from cloudtwin.policy import is_admin as _admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.neutron.handlers import render_network, render_router
from cloudtwin.services.neutron.models import NeutronState

SERVICE = "network"
AGENT_KINDS = (  # (agent_type, binary, topic, on every compute host?)
    ("Open vSwitch agent", "neutron-openvswitch-agent", "N/A", True),
    ("L3 agent", "neutron-l3-agent", "l3_agent", False),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", False),
    ("Metadata agent", "neutron-metadata-agent", "N/A", False),
)


def _state(call: Call) -> NeutronState:
    assert call.region is not None
    return call.region.neutron  # type: ignore[no-any-return]


def _hosts(call: Call) -> list[tuple[str, str]]:
    """``(host, zone)`` of the region's compute hosts: the host ports are bound to when Nova names none."""
    assert call.region is not None
    hosts = getattr(call.region, "compute_hosts", None)
    if callable(hosts):
        return [(h.name, h.zone) for h in hosts()]
    return [(f"cloudtwin-{call.region.name.lower()}", call.region.zones[0])]


def agents(call: Call) -> list[dict[str, Any]]:
    st = _state(call)
    assert call.cloud is not None and call.region is not None
    hosts = _hosts(call)
    out = []
    for agent_type, binary, topic, everywhere in AGENT_KINDS:
        for host, zone in (hosts if everywhere else hosts[:1]):
            aid = stable_id("agent", call.cloud.name, call.region.name, binary, host)
            extra = st.agent_state.get(aid, {})
            out.append({
                "id": aid, "agent_type": agent_type, "binary": binary, "topic": topic, "host": host,
                "availability_zone": zone if agent_type in ("L3 agent", "DHCP agent") else None,
                "admin_state_up": extra.get("admin_state_up", True), "alive": True,
                "description": extra.get("description"), "configurations": {}, "resources_synced": None,
                "created_at": wire.iso(call.twin.started_at), "started_at": wire.iso(call.twin.started_at),
                "heartbeat_timestamp": wire.iso(call.twin.started_at), "load": 0,
                "ha_state": None})
    return out


def _agent(call: Call, aid: str) -> dict[str, Any]:
    for a in agents(call):
        if a["id"] == aid:
            return a
    raise ApiError(404, f"Agent {aid} could not be found.", code="AgentNotFound")


async def list_agents(call: Call) -> web.Response:
    if not _admin(call):            # Neutron shows non-admins an empty list, not an error
        return wire.json_response(200, {"agents": []})
    items = agents(call)
    for key in ("agent_type", "host", "binary", "topic", "availability_zone", "id"):
        if key in call.query:
            items = [a for a in items if str(a[key]) in call.query.getall(key)]
    return wire.json_response(200, {"agents": items})


def _need_admin(call: Call) -> None:
    if not _admin(call):
        raise ApiError(404, "The resource could not be found.", code="HTTPNotFound")


async def show_agent(call: Call) -> web.Response:
    _need_admin(call)
    return wire.json_response(200, {"agent": _agent(call, call.params["id"])})


async def update_agent(call: Call) -> web.Response:
    _need_admin(call)
    agent = _agent(call, call.params["id"])
    body = call.body("agent")
    state = _state(call).agent_state.setdefault(agent["id"], {})
    for key in body:
        if key not in ("admin_state_up", "description"):
            raise ApiError(400, f"Cannot update read-only attribute {key}", code="HTTPBadRequest")
    if "admin_state_up" in body:
        if not isinstance(body["admin_state_up"], bool):
            raise ApiError(400, f"Invalid input for admin_state_up: '{body['admin_state_up']}' is not a boolean",
                           code="HTTPBadRequest")
        state["admin_state_up"] = body["admin_state_up"]
    if "description" in body:
        if body["description"] is not None and not isinstance(body["description"], str):
            raise ApiError(400, "Invalid input for description", code="HTTPBadRequest")
        state["description"] = body["description"]
    return wire.json_response(200, {"agent": _agent(call, agent["id"])})


def _dhcp_networks(call: Call) -> list[Any]:
    st = _state(call)
    return [n for n in st.networks.values()
            if any(st.subnets[s].enable_dhcp for s in n.subnets if s in st.subnets)]


async def dhcp_agents_of_network(call: Call) -> web.Response:
    _need_admin(call)
    st = _state(call)
    net = st.networks.get(call.params["id"])
    if net is None:
        raise ApiError(404, f"Network {call.params['id']} could not be found.", code="NetworkNotFound")
    hosting = [a for a in agents(call) if a["agent_type"] == "DHCP agent"] if net in _dhcp_networks(call) else []
    return wire.json_response(200, {"agents": hosting})


async def networks_of_dhcp_agent(call: Call) -> web.Response:
    _need_admin(call)
    agent = _agent(call, call.params["id"])
    nets = _dhcp_networks(call) if agent["agent_type"] == "DHCP agent" else []
    return wire.json_response(200, {"networks": [render_network(_state(call), n) for n in nets]})


async def routers_of_l3_agent(call: Call) -> web.Response:
    _need_admin(call)
    agent = _agent(call, call.params["id"])
    routers = list(_state(call).routers.values()) if agent["agent_type"] == "L3 agent" else []
    return wire.json_response(200, {"routers": [render_router(_state(call), r) for r in routers]})


async def l3_agents_of_router(call: Call) -> web.Response:
    _need_admin(call)
    if call.params["id"] not in _state(call).routers:
        raise ApiError(404, f"Router {call.params['id']} could not be found.", code="RouterNotFound")
    return wire.json_response(200, {"agents": [a for a in agents(call) if a["agent_type"] == "L3 agent"]})


async def availability_zones(call: Call) -> web.Response:
    assert call.region is not None
    out = [{"name": z, "resource": res, "state": "available"}
           for z in call.region.zones for res in ("network", "router")]
    for key in ("name", "resource", "state"):
        if key in call.query:
            out = [z for z in out if z[key] == call.query[key]]
    return wire.json_response(200, {"availability_zones": out})


async def service_providers(call: Call) -> web.Response:
    return wire.json_response(200, {"service_providers": [
        {"service_type": "L3_ROUTER_NAT", "name": "default", "default": True}]})


def add_routes(router: Router) -> None:
    r = router.add
    r(SERVICE, "GET", "/v2.0/agents", list_agents, "network:agent:list")
    r(SERVICE, "GET", "/v2.0/agents/{id}", show_agent, "network:agent:get")
    r(SERVICE, "PUT", "/v2.0/agents/{id}", update_agent, "network:agent:update")
    r(SERVICE, "GET", "/v2.0/agents/{id}/dhcp-networks", networks_of_dhcp_agent, "network:agent:get")
    r(SERVICE, "GET", "/v2.0/agents/{id}/l3-routers", routers_of_l3_agent, "network:agent:get")
    r(SERVICE, "GET", "/v2.0/networks/{id}/dhcp-agents", dhcp_agents_of_network, "network:network:get")
    r(SERVICE, "GET", "/v2.0/routers/{id}/l3-agents", l3_agents_of_router, "network:router:get")
    r(SERVICE, "GET", "/v2.0/availability_zones", availability_zones, "network:availability_zone:list")
    r(SERVICE, "GET", "/v2.0/service-providers", service_providers, "network:service_provider:list")
