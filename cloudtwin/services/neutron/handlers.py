"""Neutron v2.0 wire format: body parsing (types, required and read-only attributes), rendering, lists
with filters / paging / ``fields``, and the routes. The rules live in ``models.NeutronState``.

Routes (under ``/{cloud}/{region}/network``): ``GET /`` (versions), ``GET /v2.0`` (resources),
``/v2.0/{networks,subnets,ports,security-groups,floatingips,routers}`` (list, create 201 incl. bulk,
get, PUT, DELETE 204), ``/v2.0/security-group-rules`` (no PUT), ``PUT /v2.0/routers/{id}/add_router_interface``
and ``remove_router_interface``, ``/v2.0/{resources}/{id}/tags[/{tag}]``, ``GET /v2.0/extensions[/{alias}]``,
``GET /v2.0/quotas``, ``GET /v2.0/quotas/{project_id}[/details]``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.neutron.ipam import invalid_attr
from cloudtwin.services.neutron.models import (QUOTA_NAMES, FloatingIP, Network, NeutronState, Port, Router as NRouter,
                                               SecurityGroup, SecurityGroupRule, Subnet, SubnetPool)

SERVICE = "network"
RESERVED_QUERY = {"limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse", "tags", "tags-any",
                  "not-tags", "not-tags-any", "fixed_ips"}
UPDATED = "2026-01-01T00:00:00Z"


def _state(call: Call) -> NeutronState:
    assert call.region is not None
    return call.region.neutron  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------
# body parsing
# ------------------------------------------------------------------------------------------------

Conv = Callable[[str, Any], Any]


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, code="BadRequest")


def c_str(attr: str, v: Any) -> str:
    if not isinstance(v, str):
        raise invalid_attr(attr, f"'{v}' is not a valid string")
    if len(v) > 255:
        raise invalid_attr(attr, f"'{v[:32]}...' exceeds maximum length of 255")
    return v


def c_opt_str(attr: str, v: Any) -> str | None:
    return None if v is None else c_str(attr, v)


def c_name_or_empty(attr: str, v: Any) -> str:
    return "" if v is None else c_str(attr, v)


def c_bool(attr: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
        return v.strip().lower() in ("true", "1")
    raise invalid_attr(attr, f"'{v}' cannot be converted to boolean")


def c_int(attr: str, v: Any) -> int:
    if isinstance(v, bool):
        raise invalid_attr(attr, f"'{v}' is not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    raise invalid_attr(attr, f"'{v}' is not an integer")


def c_ip_version(attr: str, v: Any) -> int:
    n = c_int(attr, v)
    if n not in (4, 6):
        raise invalid_attr(attr, f"{v} is not in [4, 6]")
    return n


def c_str_list(attr: str, v: Any) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise invalid_attr(attr, f"'{v}' is not a list of strings")
    return list(v)


def c_any(attr: str, v: Any) -> Any:
    return v


def c_raw(attr: str, v: Any) -> Any:   # validated by the model (cidr, protocol, ports, prefixes)
    return v


def c_gateway(attr: str, v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise invalid_attr(attr, f"'{v}' is not a valid IP address")
    return v


def c_dict_list(keys: tuple[str, ...], required: tuple[str, ...]) -> Conv:
    def conv(attr: str, v: Any) -> list[dict[str, Any]]:
        if v is None:
            return []
        if not isinstance(v, list):
            raise invalid_attr(attr, f"'{v}' is not a list")
        out = []
        for item in v:
            if not isinstance(item, dict):
                raise invalid_attr(attr, f"'{item}' is not a dictionary")
            extra = [k for k in item if k not in keys]
            if extra:
                raise invalid_attr(attr, f"Unrecognized attribute(s) '{', '.join(map(str, extra))}'")
            for k in required:
                if k not in item:
                    raise invalid_attr(attr, f"Validation of dictionary's keys failed. Expected keys: "
                                             f"{set(required)} Provided keys: {set(item)}")
            for k, x in item.items():
                if x is not None and not isinstance(x, str):
                    raise invalid_attr(attr, f"'{x}' is not a valid string")
            out.append({k: x for k, x in item.items() if x is not None})
        return out
    return conv


c_fixed_ips = c_dict_list(("subnet_id", "ip_address"), ())
c_pools = c_dict_list(("start", "end"), ("start", "end"))
c_routes = c_dict_list(("destination", "nexthop"), ("destination", "nexthop"))


def c_pairs(attr: str, v: Any) -> list[dict[str, Any]]:
    pairs = c_dict_list(("ip_address", "mac_address"), ("ip_address",))(attr, v)
    for p in pairs:
        try:
            ipaddress.ip_network(p["ip_address"], strict=False)
        except ValueError:
            raise invalid_attr(attr, f"'{p['ip_address']}' is not a valid IP address") from None
        if "mac_address" in p:
            p["mac_address"] = c_mac(attr, p["mac_address"])
    return pairs


def c_dhcp_opts(attr: str, v: Any) -> list[dict[str, Any]]:
    """``extra_dhcp_opts``: ``opt_name`` and ``opt_value`` (null removes the option on update), and an
    optional ``ip_version`` (4 or 6, 4 by default)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise invalid_attr(attr, f"'{v}' is not a list")
    out = []
    for item in v:
        if not isinstance(item, dict):
            raise invalid_attr(attr, f"'{item}' is not a dictionary")
        extra = [k for k in item if k not in ("opt_name", "opt_value", "ip_version")]
        if extra or "opt_name" not in item or "opt_value" not in item:
            raise invalid_attr(attr, f"Validation of dictionary's keys failed. Expected keys: "
                                     f"{{'opt_name', 'opt_value'}} Provided keys: {set(item)}")
        name, value = item["opt_name"], item["opt_value"]
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise invalid_attr(attr, f"'{name}' is not a valid DHCP option name")
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 255):
            raise invalid_attr(attr, f"'{value}' is not a valid DHCP option value")
        version = item.get("ip_version", 4)
        if str(version) not in ("4", "6"):
            raise invalid_attr(attr, f"'{version}' is not in [4, 6]")
        out.append({"opt_name": name, "opt_value": value, "ip_version": int(version)})
    return out


def c_mac(attr: str, v: Any) -> str:
    s = c_str(attr, v)
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in p) for p in parts):
        raise invalid_attr(attr, f"'{v}' is not a valid MAC address")
    return s.lower()


def c_gateway_info(attr: str, v: Any) -> dict[str, Any] | None:
    if v is None or v == {}:
        return None
    if not isinstance(v, dict):
        raise invalid_attr(attr, f"'{v}' is not a dictionary")
    if not isinstance(v.get("network_id"), str):
        raise invalid_attr(attr, "'network_id' is required")
    return v


def c_vnic(attr: str, v: Any) -> str:
    s = c_str(attr, v)
    allowed = ["normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
               "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed"]
    if s not in allowed:
        raise invalid_attr(attr, f"'{s}' is not in {allowed}")
    return s


Spec = dict[str, tuple[str, Conv]]


def parse(body: dict[str, Any], spec: Spec, *, required: Iterable[str] = (),
          readonly: Iterable[str] = ()) -> dict[str, Any]:
    """``body`` (one object) -> model kwargs. Unknown attributes are ignored, as for extensions this twin
    does not model; read-only ones are refused on update."""
    for r in required:
        if r not in body:
            raise bad_request(f"Failed to parse request. Required attribute '{r}' not specified")
    ro = set(readonly)
    out: dict[str, Any] = {}
    for k, v in body.items():
        if k in spec:
            name, conv = spec[k]
            out[name] = conv(k, v)
        elif k in ro:
            raise bad_request(f"Cannot update read-only attribute {k}")
    return out


def _one(call: Call, key: str) -> dict[str, Any]:
    body = call.body(None)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"Invalid request body: an object under '{key}' is required.")
    return body[key]  # type: ignore[no-any-return]


def _bulk(call: Call, key: str, plural: str) -> list[dict[str, Any]] | None:
    body = call.body(None)
    if isinstance(body, dict) and plural in body and key not in body:
        items = body[plural]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise bad_request(f"Invalid request body: '{plural}' must be a non-empty list of objects.")
        return items
    return None


# ------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------


def _base(o: Any) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "tenant_id": o.project_id, "project_id": o.project_id,
            "created_at": wire.iso(o.created_at), "updated_at": wire.iso(o.updated_at),
            "revision_number": o.revision_number}


def render_network(st: NeutronState, n: Network) -> dict[str, Any]:
    d = _base(n)
    d.update({"admin_state_up": n.admin_state_up, "status": "ACTIVE", "subnets": list(n.subnets),
              "shared": n.shared, "router:external": n.external, "mtu": n.mtu,
              "port_security_enabled": n.port_security_enabled,
              "availability_zone_hints": list(n.availability_zone_hints),
              "availability_zones": list(st.region.zones), "ipv4_address_scope": None, "ipv6_address_scope": None,
              "l2_adjacency": True, "is_default": n.builtin, "description": n.description, "tags": list(n.tags)})
    return d


def render_subnet(st: NeutronState, s: Subnet) -> dict[str, Any]:
    d = _base(s)
    d.update({"network_id": s.network_id, "ip_version": s.ip_version, "cidr": s.cidr, "gateway_ip": s.gateway_ip,
              "allocation_pools": [dict(p) for p in s.allocation_pools], "enable_dhcp": s.enable_dhcp,
              "dns_nameservers": list(s.dns_nameservers), "host_routes": [dict(r) for r in s.host_routes],
              "ipv6_ra_mode": s.ipv6_ra_mode, "ipv6_address_mode": s.ipv6_address_mode, "subnetpool_id": s.subnetpool_id,
              "service_types": [], "segment_id": None, "dns_publish_fixed_ip": False,
              "description": s.description, "tags": list(s.tags)})
    return d


def render_subnetpool(st: NeutronState, p: SubnetPool) -> dict[str, Any]:
    d = _base(p)
    d.update({"ip_version": p.ip_version, "prefixes": list(p.prefixes), "default_prefixlen": p.default_prefixlen,
              "min_prefixlen": p.min_prefixlen, "max_prefixlen": p.max_prefixlen, "shared": p.shared,
              "is_default": p.is_default, "default_quota": p.default_quota, "address_scope_id": p.address_scope_id,
              "description": p.description, "tags": list(p.tags)})
    return d


def render_port(st: NeutronState, p: Port) -> dict[str, Any]:
    d = _base(p)
    d.update({"network_id": p.network_id, "mac_address": p.mac_address,
              "fixed_ips": [dict(f) for f in p.fixed_ips], "device_id": p.device_id,
              "device_owner": p.device_owner, "status": p.status, "admin_state_up": p.admin_state_up,
              "security_groups": list(p.security_groups), "port_security_enabled": p.port_security_enabled,
              "allowed_address_pairs": [dict(a) for a in p.allowed_address_pairs],
              "binding:vnic_type": p.vnic_type, "binding:host_id": p.host_id, "binding:profile": {},
              "binding:vif_type": "ovs" if p.host_id else "unbound",
              "binding:vif_details": {"port_filter": True} if p.host_id else {},
              "extra_dhcp_opts": [dict(o) for o in p.extra_dhcp_opts], "dns_name": "", "ip_allocation": "immediate", "qos_policy_id": None,
              "propagate_uplink_status": False, "description": p.description, "tags": list(p.tags)})
    return d


def render_rule(r: SecurityGroupRule) -> dict[str, Any]:
    return {"id": r.id, "security_group_id": r.security_group_id, "direction": r.direction,
            "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
            "normalized_cidr": r.normalized_cidr, "remote_group_id": r.remote_group_id,
            "remote_address_group_id": r.remote_address_group_id, "description": r.description,
            "tenant_id": r.project_id, "project_id": r.project_id, "created_at": wire.iso(r.created_at),
            "updated_at": wire.iso(r.updated_at), "revision_number": r.revision_number,
            "belongs_to_default_sg": r.belongs_to_default_sg}


def render_sg(st: NeutronState, g: SecurityGroup) -> dict[str, Any]:
    d = _base(g)
    d.update({"description": g.description, "stateful": g.stateful, "shared": g.shared,
              "security_group_rules": [render_rule(r) for r in st.rules_of(g)], "tags": list(g.tags)})
    return d


def render_fip(st: NeutronState, f: FloatingIP) -> dict[str, Any]:
    d = _base(f)
    del d["name"]
    port = st.ports.get(f.port_id) if f.port_id else None
    details = None
    if port is not None:
        details = {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
                   "admin_state_up": port.admin_state_up, "status": port.status, "device_id": port.device_id,
                   "device_owner": port.device_owner}
    d.update({"floating_ip_address": f.floating_ip_address, "floating_network_id": f.floating_network_id,
              "router_id": f.router_id, "port_id": f.port_id, "fixed_ip_address": f.fixed_ip_address,
              "status": f.status, "port_details": details, "port_forwardings": [], "qos_policy_id": None,
              "dns_domain": "", "dns_name": "", "description": f.description, "tags": list(f.tags)})
    return d


def render_router(st: NeutronState, r: NRouter) -> dict[str, Any]:
    d = _base(r)
    gw = None
    if r.external_gateway_info:
        gw = {"network_id": r.external_gateway_info["network_id"],
              "enable_snat": r.external_gateway_info.get("enable_snat", True),
              "external_fixed_ips": [dict(x) for x in r.external_gateway_info.get("external_fixed_ips", [])]}
    d.update({"admin_state_up": r.admin_state_up, "status": r.status, "external_gateway_info": gw,
              "routes": [dict(x) for x in r.routes], "distributed": False, "ha": False, "flavor_id": None,
              "availability_zone_hints": list(r.availability_zone_hints),
              "availability_zones": list(st.region.zones), "description": r.description, "tags": list(r.tags)})
    return d


# ------------------------------------------------------------------------------------------------
# lists: filters, tags, fixed_ips, paging, fields
# ------------------------------------------------------------------------------------------------


def _value_matches(v: Any, wanted: list[str]) -> bool:
    if isinstance(v, bool):
        return any(w.strip().lower() in (("true", "1") if v else ("false", "0")) for w in wanted)
    if v is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(v, list):
        return any(str(x) in wanted for x in v) if v else False
    if isinstance(v, dict):
        return False
    return str(v) in wanted


def _filter(items: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    keys = [k for k in query.keys() if k not in RESERVED_QUERY]
    tag_all = [t for v in query.getall("tags", []) for t in v.split(",") if t]
    tag_any = [t for v in query.getall("tags-any", []) for t in v.split(",") if t]
    not_all = [t for v in query.getall("not-tags", []) for t in v.split(",") if t]
    not_any = [t for v in query.getall("not-tags-any", []) for t in v.split(",") if t]
    fixed: list[tuple[str, str]] = []
    for v in query.getall("fixed_ips", []):
        if "=" in v:
            k, _, x = v.partition("=")
            fixed.append((k.strip(), x.strip()))
    if not (keys or tag_all or tag_any or not_all or not_any or fixed):
        return items
    wanted = {}
    for k in dict.fromkeys(keys):
        wanted[k] = query.getall(k)
    out = []
    for item in items:
        ok = True
        for k, values in wanted.items():
            if k not in item:
                continue  # an attribute this twin does not model: ignored, never a 400
            if not _value_matches(item[k], values):
                ok = False
                break
        if ok and (tag_all or tag_any or not_all or not_any):
            tags = set(item.get("tags") or ())
            if tag_all and not all(t in tags for t in tag_all):
                ok = False
            elif tag_any and not any(t in tags for t in tag_any):
                ok = False
            elif not_all and all(t in tags for t in not_all):
                ok = False
            elif not_any and any(t in tags for t in not_any):
                ok = False
        if ok and fixed:
            for k, x in fixed:
                if not any(f.get(k) == x or (k == "ip_address_substr" and x in f.get("ip_address", ""))
                           for f in item.get("fixed_ips", ())):
                    ok = False
                    break
        if ok:
            out.append(item)
    return out


def _creating_project(call: Call, body: dict[str, Any]) -> str:
    """The project a create is for: the caller's, or the ``project_id``/``tenant_id`` an admin names.
    A non-admin naming another project is refused, as Neutron refuses it."""
    named = {body.pop(k) for k in ("project_id", "tenant_id") if k in body}
    if len(named) > 1:
        raise bad_request("'project_id' and 'tenant_id' do not match")
    if not named:
        return call.project_id
    target = named.pop()
    if not isinstance(target, str) or not target:
        raise invalid_attr("project_id", f"'{target}' is not a valid project id")
    if target != call.project_id and not is_admin(call):
        raise ApiError(403, "Specifying 'project_id' or 'tenant_id' other than the authenticated project in "
                            "request requires admin privileges", code="HTTPForbidden")
    _state(call).ensure_project(target)
    return target


def _acting_project(call: Call, table: str, oid: str) -> str:
    """The project to act as on object ``oid``: its owner's for an admin (who may act on any)."""
    if is_admin(call):
        obj = getattr(_state(call), table).get(oid)
        if obj is not None:
            return str(obj.project_id)
    return call.project_id


def _network_project(call: Call, pid: str, network_id: str) -> str:
    """An admin creating on another project's network (without naming a project) acts in that project:
    the network is visible there, as it is to the admin in Neutron."""
    if pid == call.project_id and is_admin(call):
        net = _state(call).networks.get(network_id)
        if net is not None and net.project_id != pid and not (net.shared or net.external):
            return str(net.project_id)
    return pid


def _every(call: Call, table: str, own: Callable[[], list[Any]]) -> list[Any]:
    """What a list shows: every project's objects for an admin (Neutron's default), else ``own()``."""
    if is_admin(call):
        _state(call).ensure_project(call.project_id)
        return list(getattr(_state(call), table).values())
    return own()


def _list_response(call: Call, plural: str, items: list[dict[str, Any]]) -> web.Response:
    items = _filter(items, call.query)
    if call.query.get("sort_key"):
        key = call.query.get("sort_key")
        reverse = call.query.get("sort_dir", "asc").lower() == "desc"
        items.sort(key=lambda i: (i.get(key) is None, str(i.get(key))), reverse=reverse)
    chunk, marker = wire.page(items, call.query)
    fields = [f for v in call.query.getall("fields", []) for f in v.split(",") if f]
    if fields:
        chunk = [{k: i[k] for k in fields if k in i} for i in chunk]
    body: dict[str, Any] = {plural: chunk}
    if marker is not None:
        body[f"{plural}_links"] = [{"rel": "next",
                                    "href": wire.next_link(call.request, marker, call.query.get("limit"))}]
    return wire.json_response(200, body)


def _one_response(call: Call, status: int, key: str, obj: dict[str, Any]) -> web.Response:
    fields = [f for v in call.query.getall("fields", []) for f in v.split(",") if f]
    if fields:
        obj = {k: obj[k] for k in fields if k in obj}
    return wire.json_response(status, {key: obj})


def _create(call: Call, key: str, plural: str, make: Callable[[dict[str, Any]], Any],
            render: Callable[[Any], dict[str, Any]], undo: Callable[[Any], None]) -> web.Response:
    """Single or bulk create (bulk is all-or-nothing, as Neutron's native bulk)."""
    items = _bulk(call, key, plural)
    if items is None:
        return wire.json_response(201, {key: render(make(_one(call, key)))})
    made: list[Any] = []
    try:
        for item in items:
            made.append(make(item))
    except ApiError:
        for obj in reversed(made):
            try:
                undo(obj)
            except ApiError:
                pass
        raise
    return wire.json_response(201, {plural: [render(o) for o in made]})


# ------------------------------------------------------------------------------------------------
# versions, extensions, quotas
# ------------------------------------------------------------------------------------------------

EXTENSIONS = [
    ("security-group", "security-group", "The security groups extension."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks "
                                    "and access to external networks via a NAT gateway."),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("quotas", "Quota management support", "Expose functions for quotas management per tenant"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per "
                                                           "project"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number "
                                                            "of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                      "resources that have Neutron standard attributes."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_"
                          "range, router, network, policy, subnetpool, port, security_group, floatingip",
     "Enables to set tag on resources with standard attribute."),
    ("port-security", "Port Security", "Provides port security"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering "
                                                                 "when listing ports"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE "
                                                     "boot options to DHCP clients can be specified (e.g. "
                                                     "tftp-server, server-ip-address, bootfile-name)"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
                                                                     "specifying whether SNAT should occur on "
                                                                     "the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or "
                                                           "not"),
    ("security-groups-normalized-cidr", "Normalized CIDR field for security group rules",
     "Add new field with normalized remote_ip_prefix cidr in SG rule"),
    ("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP "
                                                               "resource"),
    ("agent", "agent", "The agent management extension."),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("router_availability_zone", "Router Availability Zone", "Availability zone support for router."),
    ("service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron "
                                                        "advanced services"),
    ("quota-check-limit", "Quota engine limit check", "Support for checking the resource usage before "
                                                      "applying a new quota limit"),
    ("sorting", "Sorting support", "Enables sorting support"),
    ("pagination", "Pagination support", "Enables pagination support"),
]


async def versions(call: Call) -> web.Response:
    base = call.base_url()
    return wire.json_response(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                  "links": [{"rel": "self", "href": f"{base}/v2.0/"}]}]})


async def resources(call: Call) -> web.Response:
    base = call.base_url()
    out = []
    for name, coll in (("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
                       ("security_group", "security-groups"), ("security_group_rule", "security-group-rules"),
                       ("floatingip", "floatingips"), ("router", "routers")):
        out.append({"name": name, "collection": coll,
                    "links": [{"rel": "self", "href": f"{base}/v2.0/{coll}"}]})
    return wire.json_response(200, {"resources": out})


def _ext(alias: str, name: str, desc: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": desc, "updated": UPDATED, "links": []}


async def list_extensions(call: Call) -> web.Response:
    return wire.json_response(200, {"extensions": [_ext(*e) for e in EXTENSIONS]})


async def get_extension(call: Call) -> web.Response:
    alias = call.params["alias"]
    for e in EXTENSIONS:
        if e[0] == alias:
            return wire.json_response(200, {"extension": _ext(*e)})
    raise ApiError(404, f"Extension with alias {alias} does not exist", code="ExtensionNotFound")


async def list_quotas(call: Call) -> web.Response:
    """The projects whose quotas differ from the defaults (admin), as Neutron lists them."""
    st = _state(call)
    if not is_admin(call):
        return wire.json_response(200, {"quotas": []})
    return wire.json_response(200, {"quotas": [{**st.quotas(pid), "project_id": pid, "tenant_id": pid}
                                               for pid in st.quota_overrides]})


def _quota_target(call: Call) -> str:
    target = call.params["project_id"]
    if target != call.project_id and not is_admin(call):
        raise ApiError(403, "You are not authorized to see quotas of another project.", code="HTTPForbidden")
    return target


async def get_quota(call: Call) -> web.Response:
    return wire.json_response(200, {"quota": _state(call).quotas(_quota_target(call))})


async def get_default_quota(call: Call) -> web.Response:
    return wire.json_response(200, {"quota": _state(call).quotas()})


async def update_quota(call: Call) -> web.Response:
    if not is_admin(call):
        raise ApiError(403, "rule:update_quota is disallowed by policy", code="PolicyNotAuthorized")
    st = _state(call)
    target = call.params["project_id"]
    body = _one(call, "quota")
    tables = {name: table for table, name in QUOTA_NAMES.items()}
    changes: dict[str, int] = {}
    for key, value in body.items():
        if key in ("force", "check_limit"):
            continue
        if key not in tables:
            raise bad_request(f"Unrecognized attribute(s) '{key}'")
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit() \
                or int(value) < -1:
            raise invalid_attr(key, f"'{value}' is not an integer greater than or equal to -1")
        changes[tables[key]] = int(value)
    if wire.truthy(str(body.get("check_limit", ""))):
        for table, limit in changes.items():
            if limit != -1 and limit < st.used(table, target):
                raise bad_request(f"Quota limit {limit} for {QUOTA_NAMES[table]} is less than the usage.")
    st.quota_overrides.setdefault(target, {}).update(changes)
    return wire.json_response(200, {"quota": st.quotas(target)})


async def delete_quota(call: Call) -> web.Response:
    if not is_admin(call):
        raise ApiError(403, "rule:delete_quota is disallowed by policy", code="PolicyNotAuthorized")
    _state(call).quota_overrides.pop(call.params["project_id"], None)
    return wire.json_response(204)


async def get_quota_details(call: Call) -> web.Response:
    st = _state(call)
    project = call.params["project_id"]
    st.ensure_project(project)
    out = {}
    for table, name in (("networks", "network"), ("subnets", "subnet"), ("ports", "port"),
                        ("security_groups", "security_group"), ("security_group_rules", "security_group_rule"),
                        ("floatingips", "floatingip"), ("routers", "router")):
        out[name] = {"limit": st.quota_limit(table, project), "used": st.used(table, project), "reserved": 0}
    return wire.json_response(200, {"quota": out})


@dataclass(frozen=True)
class ItemApi:
    """GET / PUT / DELETE ``/<plural>/{id}`` of one Neutron resource: the same three handlers for
    every kind, told apart by the state methods, the renderer and the update spec."""

    key: str                                                  # "network", "security_group", ...
    fetch: Callable[[NeutronState, str, str], Any]            # (state, project, id) -> object or 404
    remove: Callable[[NeutronState, str, str], None]
    render: Callable[[NeutronState, Any], dict[str, Any]]
    change: Callable[[NeutronState, str, str, dict[str, Any]], Any] | None = None
    spec: Spec | None = None
    readonly: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], None] | None = None    # extra validation of the changes
    admin_remove: bool = False                                # remove() takes admin= (what only an admin may delete)

    async def get(self, call: Call) -> web.Response:
        st = _state(call)
        pid = _acting_project(call, self.key + "s", call.params["id"])
        return _one_response(call, 200, self.key, self.render(st, self.fetch(st, pid, call.params["id"])))

    async def update(self, call: Call) -> web.Response:
        assert self.change is not None and self.spec is not None
        st = _state(call)
        changes = parse(_one(call, self.key), self.spec, readonly=self.readonly)
        if self.check is not None:
            self.check(changes)
        obj = self.change(st, _acting_project(call, self.key + "s", call.params["id"]), call.params["id"], changes)
        return wire.json_response(200, {self.key: self.render(st, obj)})

    async def delete(self, call: Call) -> web.Response:
        pid = _acting_project(call, self.key + "s", call.params["id"])
        if self.admin_remove:
            self.remove(_state(call), pid, call.params["id"], admin=is_admin(call))  # type: ignore[call-arg]
        else:
            self.remove(_state(call), pid, call.params["id"])
        return wire.json_response(204)


# ------------------------------------------------------------------------------------------------
# networks
# ------------------------------------------------------------------------------------------------

NETWORK_SPEC: Spec = {
    "name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
    "admin_state_up": ("admin_state_up", c_bool), "shared": ("shared", c_bool),
    "router:external": ("external", c_bool), "mtu": ("mtu", c_int),
    "port_security_enabled": ("port_security_enabled", c_bool),
}
NETWORK_RO = ("id", "tenant_id", "project_id", "status", "subnets", "created_at", "updated_at",
              "revision_number", "availability_zones")


def _check_mtu(kw: dict[str, Any]) -> None:
    if "mtu" in kw and not 68 <= kw["mtu"] <= 9000:
        raise invalid_attr("mtu", f"'{kw['mtu']}' is not in range 68 through 9000")


async def list_networks(call: Call) -> web.Response:
    st = _state(call)
    nets = _every(call, "networks", lambda: st.visible_networks(call.project_id))
    return _list_response(call, "networks", [render_network(st, n) for n in nets])


async def create_network(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> Network:
        kw = parse(body, {**NETWORK_SPEC, "tags": ("tags", c_str_list),
                          "availability_zone_hints": ("availability_zone_hints", c_str_list)})
        _check_mtu(kw)
        return st.add_network(pid, **kw)

    def make_for(body: dict[str, Any]) -> Network:
        nonlocal pid
        pid = _creating_project(call, body)
        return make(body)

    pid = call.project_id
    return _create(call, "network", "networks", make_for, lambda n: render_network(st, n),
                   lambda n: st.delete_network(n.project_id, n.id))


# ------------------------------------------------------------------------------------------------
# subnets
# ------------------------------------------------------------------------------------------------

SUBNET_UPDATE: Spec = {
    "name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
    "gateway_ip": ("gateway_ip", c_gateway), "enable_dhcp": ("enable_dhcp", c_bool),
    "dns_nameservers": ("dns_nameservers", c_str_list), "host_routes": ("host_routes", c_routes),
    "allocation_pools": ("allocation_pools", c_pools),
}
SUBNET_CREATE: Spec = {
    **SUBNET_UPDATE, "network_id": ("network_id", c_str), "cidr": ("cidr", c_raw),
    "ip_version": ("ip_version", c_ip_version), "ipv6_ra_mode": ("ipv6_ra_mode", c_opt_str),
    "ipv6_address_mode": ("ipv6_address_mode", c_opt_str), "tags": ("tags", c_str_list),
}
SUBNET_RO = ("id", "tenant_id", "project_id", "network_id", "cidr", "ip_version", "created_at", "updated_at",
             "revision_number", "subnetpool_id")


async def list_subnets(call: Call) -> web.Response:
    st = _state(call)
    subnets = _every(call, "subnets", lambda: st.visible_subnets(call.project_id))
    return _list_response(call, "subnets", [render_subnet(st, s) for s in subnets])


async def create_subnet(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> Subnet:
        pid = _creating_project(call, body)
        kw = parse(body, {**SUBNET_CREATE, "subnetpool_id": ("subnetpool_id", c_opt_str),
                          "prefixlen": ("prefixlen", c_int)}, required=("network_id", "ip_version"))
        if "gateway_ip" not in body:
            kw["gateway_ip"] = ""
        net_id = kw.pop("network_id")
        return st.add_subnet(_network_project(call, pid, net_id), net_id, **kw)

    return _create(call, "subnet", "subnets", make, lambda s: render_subnet(st, s),
                   lambda s: st.delete_subnet(s.project_id, s.id))


# ------------------------------------------------------------------------------------------------
# subnet pools
# ------------------------------------------------------------------------------------------------

SUBNETPOOL_UPDATE: Spec = {
    "name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
    "prefixes": ("prefixes", c_str_list), "default_prefixlen": ("default_prefixlen", c_int),
    "min_prefixlen": ("min_prefixlen", c_int), "max_prefixlen": ("max_prefixlen", c_int),
    "is_default": ("is_default", c_bool), "default_quota": ("default_quota", c_int),
}
SUBNETPOOL_RO = ("id", "tenant_id", "project_id", "ip_version", "created_at", "updated_at", "revision_number",
                 "shared", "address_scope_id")


async def list_subnetpools(call: Call) -> web.Response:
    st = _state(call)
    pools = _every(call, "subnetpools", lambda: st.visible_subnetpools(call.project_id))
    return _list_response(call, "subnetpools", [render_subnetpool(st, p) for p in pools])


async def create_subnetpool(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> SubnetPool:
        pid = _creating_project(call, body)
        kw = parse(body, {**SUBNETPOOL_UPDATE, "shared": ("shared", c_bool), "tags": ("tags", c_str_list)},
                   required=("prefixes",))
        if kw.get("shared") and not is_admin(call):
            raise ApiError(403, "(rule:create_subnetpool and rule:create_subnetpool:shared) is disallowed by policy",
                           code="PolicyNotAuthorized")
        return st.add_subnetpool(pid, **kw)

    return _create(call, "subnetpool", "subnetpools", make, lambda p: render_subnetpool(st, p),
                   lambda p: st.delete_subnetpool(p.project_id, p.id))


# ------------------------------------------------------------------------------------------------
# ports
# ------------------------------------------------------------------------------------------------

PORT_UPDATE: Spec = {
    "name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
    "admin_state_up": ("admin_state_up", c_bool), "fixed_ips": ("fixed_ips", c_fixed_ips),
    "device_id": ("device_id", c_name_or_empty), "device_owner": ("device_owner", c_name_or_empty),
    "security_groups": ("security_groups", c_str_list),
    "port_security_enabled": ("port_security_enabled", c_bool),
    "allowed_address_pairs": ("allowed_address_pairs", c_pairs), "binding:host_id": ("host_id", c_name_or_empty),
    "binding:vnic_type": ("vnic_type", c_vnic), "mac_address": ("mac_address", c_mac),
    "extra_dhcp_opts": ("extra_dhcp_opts", c_dhcp_opts),
}
PORT_CREATE: Spec = {**PORT_UPDATE, "network_id": ("network_id", c_str), "tags": ("tags", c_str_list)}
PORT_RO = ("id", "tenant_id", "project_id", "network_id", "status", "created_at", "updated_at", "revision_number")


def _port_candidates(call: Call, st: NeutronState) -> list[Port]:
    """The caller's ports, narrowed through an index when the query names a device or a network."""
    q = call.query
    project = call.project_id
    st.ensure_project(project)
    admin = is_admin(call)
    if "device_id" in q:
        found: dict[str, Port] = {}
        for dev in q.getall("device_id"):
            for p in st.ports_of_device(dev):
                found[p.id] = p
        return [p for p in found.values() if admin or p.project_id == project]
    if "network_id" in q:
        found = {}
        for nid in q.getall("network_id"):
            for p in st.ports_of_network(nid):
                found[p.id] = p
        return [p for p in found.values() if admin or p.project_id == project]
    return _every(call, "ports", lambda: st.owned("ports", project))


async def list_ports(call: Call) -> web.Response:
    st = _state(call)
    return _list_response(call, "ports", [render_port(st, p) for p in _port_candidates(call, st)])


async def create_port(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> Port:
        kw = parse(body, PORT_CREATE, required=("network_id",))
        net_id = kw.pop("network_id")
        return st.add_port(_network_project(call, pid, net_id), net_id, **kw)

    def make_for(body: dict[str, Any]) -> Port:
        nonlocal pid
        pid = _creating_project(call, body)
        return make(body)

    pid = call.project_id
    return _create(call, "port", "ports", make_for, lambda p: render_port(st, p),
                   lambda p: st.delete_port(p.project_id, p.id))


# ------------------------------------------------------------------------------------------------
# security groups and rules
# ------------------------------------------------------------------------------------------------

SG_SPEC: Spec = {"name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
                 "stateful": ("stateful", c_bool)}
SG_RO = ("id", "tenant_id", "project_id", "security_group_rules", "created_at", "updated_at", "revision_number")
RULE_SPEC: Spec = {
    "security_group_id": ("security_group_id", c_str), "direction": ("direction", c_raw),
    "ethertype": ("ethertype", c_raw), "protocol": ("protocol", c_raw),
    "port_range_min": ("port_range_min", c_raw), "port_range_max": ("port_range_max", c_raw),
    "remote_ip_prefix": ("remote_ip_prefix", c_raw), "remote_group_id": ("remote_group_id", c_raw),
    "remote_address_group_id": ("remote_address_group_id", c_raw),
    "description": ("description", c_name_or_empty),
}


async def list_sgs(call: Call) -> web.Response:
    st = _state(call)
    return _list_response(call, "security_groups",
                          [render_sg(st, g) for g in _every(call, "security_groups",
                                                            lambda: list(st.iter_owned("security_groups",
                                                                                       call.project_id)))])


async def create_sg(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> SecurityGroup:
        pid = _creating_project(call, body)
        kw = parse(body, {**SG_SPEC, "tags": ("tags", c_str_list)})
        return st.add_security_group(pid, **kw)

    return _create(call, "security_group", "security_groups", make, lambda g: render_sg(st, g),
                   lambda g: st.delete_security_group(g.project_id, g.id))


async def list_rules(call: Call) -> web.Response:
    st = _state(call)
    q = call.query
    if "security_group_id" in q:
        rules: list[SecurityGroupRule] = []
        for sid in dict.fromkeys(q.getall("security_group_id")):
            sg = st.security_groups.get(sid)
            if sg is not None and (sg.project_id == call.project_id or is_admin(call)):
                rules.extend(st.rules_of(sg))
    else:
        rules = _every(call, "security_group_rules",
                       lambda: list(st.iter_owned("security_group_rules", call.project_id)))
    return _list_response(call, "security_group_rules", [render_rule(r) for r in rules])


async def create_rule(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> SecurityGroupRule:
        pid = _creating_project(call, body)
        kw = parse(body, RULE_SPEC, required=("security_group_id", "direction"))
        sg_id = kw.pop("security_group_id")
        if pid == call.project_id and is_admin(call):
            pid = _acting_project(call, "security_groups", sg_id)
        return st.add_security_group_rule(pid, sg_id, **kw)

    return _create(call, "security_group_rule", "security_group_rules", make, render_rule,
                   lambda r: st.delete_security_group_rule(r.project_id, r.id))


# ------------------------------------------------------------------------------------------------
# floating IPs
# ------------------------------------------------------------------------------------------------

FIP_CREATE: Spec = {
    "floating_network_id": ("network_id", c_str), "port_id": ("port_id", c_opt_str),
    "fixed_ip_address": ("fixed_ip_address", c_opt_str), "floating_ip_address": ("floating_ip_address", c_opt_str),
    "description": ("description", c_name_or_empty),
}
FIP_UPDATE: Spec = {"port_id": ("port_id", c_opt_str), "fixed_ip_address": ("fixed_ip_address", c_opt_str),
                    "description": ("description", c_name_or_empty)}
FIP_RO = ("id", "tenant_id", "project_id", "floating_network_id", "floating_ip_address", "status", "router_id",
          "created_at", "updated_at", "revision_number")


async def list_fips(call: Call) -> web.Response:
    st = _state(call)
    q = call.query
    if "port_id" in q and all(q.getall("port_id")):
        fips = [f for pid in dict.fromkeys(q.getall("port_id")) for f in st.floatingips_of_port(pid)
                if f.project_id == call.project_id or is_admin(call)]
    else:
        fips = _every(call, "floatingips", lambda: list(st.iter_owned("floatingips", call.project_id)))
    return _list_response(call, "floatingips", [render_fip(st, f) for f in fips])


async def create_fip(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> FloatingIP:
        pid = _creating_project(call, body)
        kw = parse(body, FIP_CREATE, required=("floating_network_id",))
        port_id = kw.pop("port_id", None)
        return st.allocate_floatingip(pid, port_id, **kw)

    return _create(call, "floatingip", "floatingips", make, lambda f: render_fip(st, f),
                   lambda f: st.delete_floatingip(f.project_id, f.id))


# ------------------------------------------------------------------------------------------------
# routers
# ------------------------------------------------------------------------------------------------

ROUTER_SPEC: Spec = {
    "name": ("name", c_name_or_empty), "description": ("description", c_name_or_empty),
    "admin_state_up": ("admin_state_up", c_bool), "external_gateway_info": ("external_gateway_info", c_gateway_info),
}
ROUTER_RO = ("id", "tenant_id", "project_id", "status", "created_at", "updated_at", "revision_number")


async def list_routers(call: Call) -> web.Response:
    st = _state(call)
    routers = _every(call, "routers", lambda: list(st.iter_owned("routers", call.project_id)))
    return _list_response(call, "routers", [render_router(st, r) for r in routers])


async def create_router(call: Call) -> web.Response:
    st = _state(call)

    def make(body: dict[str, Any]) -> NRouter:
        pid = _creating_project(call, body)
        kw = parse(body, {**ROUTER_SPEC, "tags": ("tags", c_str_list),
                          "availability_zone_hints": ("availability_zone_hints", c_str_list)})
        return st.add_router(pid, **kw)

    return _create(call, "router", "routers", make, lambda r: render_router(st, r),
                   lambda r: st.delete_router(r.project_id, r.id))


def _interface_body(call: Call) -> dict[str, Any]:
    body = call.body(None)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: an object with 'subnet_id' or 'port_id' is required.")
    return parse(body, {"subnet_id": ("subnet_id", c_str), "port_id": ("port_id", c_str)})


async def add_interface(call: Call) -> web.Response:
    info = _state(call).add_router_interface(_acting_project(call, "routers", call.params["id"]), call.params["id"],
                                             **_interface_body(call))
    return wire.json_response(200, info)


async def remove_interface(call: Call) -> web.Response:
    info = _state(call).remove_router_interface(_acting_project(call, "routers", call.params["id"]),
                                                call.params["id"], **_interface_body(call))
    return wire.json_response(200, info)


# ------------------------------------------------------------------------------------------------
# tags (/v2.0/{collection}/{id}/tags)
# ------------------------------------------------------------------------------------------------

TAGGABLE = {"networks": "get_network", "subnets": "get_subnet", "ports": "get_port",
            "security-groups": "get_security_group", "floatingips": "get_floatingip", "routers": "get_router",
            "subnetpools": "get_subnetpool"}


def _tagged(call: Call, collection: str) -> Any:
    st = _state(call)
    obj = getattr(st, TAGGABLE[collection])(call.project_id, call.params["id"])
    if obj.project_id != call.project_id:
        raise ApiError(403, "The request you have made requires authorization.", code="PolicyNotAuthorized")
    return obj


def _check_tag(tag: str) -> str:
    if not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise invalid_attr("tags", f"'{tag}' is not a valid tag")
    return tag


def tag_routes(router: Router, collection: str, resource: str) -> None:
    base = f"/v2.0/{collection}/{{id}}/tags"

    async def get_tags(call: Call) -> web.Response:
        return wire.json_response(200, {"tags": list(_tagged(call, collection).tags)})

    async def set_tags(call: Call) -> web.Response:
        obj = _tagged(call, collection)
        body = call.body(None)
        if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
            raise bad_request("Invalid request body: a list under 'tags' is required.")
        tags = [_check_tag(t) if isinstance(t, str) else _check_tag("") for t in body["tags"]]
        obj.tags = list(dict.fromkeys(tags))
        obj.touch()
        return wire.json_response(200, {"tags": list(obj.tags)})

    async def clear_tags(call: Call) -> web.Response:
        obj = _tagged(call, collection)
        obj.tags = []
        obj.touch()
        return wire.json_response(204)

    async def check_tag(call: Call) -> web.Response:
        obj = _tagged(call, collection)
        if call.params["tag"] not in obj.tags:
            raise ApiError(404, f"Tag {call.params['tag']} could not be found for {resource} {obj.id}.",
                           code="TagNotFound")
        return wire.json_response(204)

    async def add_tag(call: Call) -> web.Response:
        obj = _tagged(call, collection)
        tag = _check_tag(call.params["tag"])
        if tag not in obj.tags:
            obj.tags.append(tag)
            obj.touch()
        return wire.json_response(201)

    async def remove_tag(call: Call) -> web.Response:
        obj = _tagged(call, collection)
        tag = call.params["tag"]
        if tag not in obj.tags:
            raise ApiError(404, f"Tag {tag} could not be found for {resource} {obj.id}.", code="TagNotFound")
        obj.tags.remove(tag)
        obj.touch()
        return wire.json_response(204)

    op = f"network:{resource}_tag"
    router.add(SERVICE, "GET", base, get_tags, f"{op}:list")
    router.add(SERVICE, "PUT", base, set_tags, f"{op}:update")
    router.add(SERVICE, "DELETE", base, clear_tags, f"{op}:delete")
    router.add(SERVICE, "GET", base + "/{tag}", check_tag, f"{op}:get")
    router.add(SERVICE, "PUT", base + "/{tag}", add_tag, f"{op}:create")
    router.add(SERVICE, "DELETE", base + "/{tag}", remove_tag, f"{op}:delete")


# ------------------------------------------------------------------------------------------------
# routes
# ------------------------------------------------------------------------------------------------


N = NeutronState
ITEMS: dict[str, ItemApi] = {api.key: api for api in (
    ItemApi("network", N.get_network, N.delete_network, render_network, N.update_network, NETWORK_SPEC, NETWORK_RO,
            check=_check_mtu),
    ItemApi("subnet", N.get_subnet, N.delete_subnet, render_subnet, N.update_subnet, SUBNET_UPDATE, SUBNET_RO),
    ItemApi("port", N.get_port, N.delete_port, render_port, N.update_port, PORT_UPDATE, PORT_RO),
    ItemApi("security_group", N.get_security_group, N.delete_security_group, render_sg, N.update_security_group,
            SG_SPEC, SG_RO, admin_remove=True),
    ItemApi("security_group_rule", N.get_security_group_rule, N.delete_security_group_rule,
            lambda st, rule: render_rule(rule)),
    ItemApi("floatingip", N.get_floatingip, N.delete_floatingip, render_fip, N.update_floatingip, FIP_UPDATE, FIP_RO),
    ItemApi("subnetpool", N.get_subnetpool, N.delete_subnetpool, render_subnetpool, N.update_subnetpool,
            SUBNETPOOL_UPDATE, SUBNETPOOL_RO),
    ItemApi("router", N.get_router, N.delete_router, render_router, N.update_router,
            {**ROUTER_SPEC, "routes": ("routes", c_routes)}, ROUTER_RO),
)}


def add_routes(router: Router) -> None:
    r = router.add
    r(SERVICE, "GET", "/", versions, "network:version:get", auth=False)
    r(SERVICE, "GET", "/v2.0", resources, "network:resource:list")
    r(SERVICE, "GET", "/v2.0/extensions", list_extensions, "network:extension:list")
    r(SERVICE, "GET", "/v2.0/extensions/{alias}", get_extension, "network:extension:get")
    r(SERVICE, "GET", "/v2.0/quotas", list_quotas, "network:quota:list")
    r(SERVICE, "GET", "/v2.0/quotas/{project_id}", get_quota, "network:quota:get")
    r(SERVICE, "PUT", "/v2.0/quotas/{project_id}", update_quota, "network:quota:update")
    r(SERVICE, "DELETE", "/v2.0/quotas/{project_id}", delete_quota, "network:quota:delete")
    r(SERVICE, "GET", "/v2.0/quotas/{project_id}/default", get_default_quota, "network:quota:get")
    r(SERVICE, "GET", "/v2.0/quotas/{project_id}/details", get_quota_details, "network:quota:get")
    collections = [("networks", "network", list_networks, create_network),
                   ("subnets", "subnet", list_subnets, create_subnet),
                   ("ports", "port", list_ports, create_port),
                   ("security-groups", "security_group", list_sgs, create_sg),
                   ("security-group-rules", "security_group_rule", list_rules, create_rule),
                   ("floatingips", "floatingip", list_fips, create_fip),
                   ("routers", "router", list_routers, create_router),
                   ("subnetpools", "subnetpool", list_subnetpools, create_subnetpool)]
    for coll, res, lst, create in collections:
        base, item = f"/v2.0/{coll}", ITEMS[res]
        r(SERVICE, "GET", base, lst, f"network:{res}:list")
        r(SERVICE, "POST", base, create, f"network:{res}:create")
        r(SERVICE, "GET", base + "/{id}", item.get, f"network:{res}:get")
        if item.change is not None:
            r(SERVICE, "PUT", base + "/{id}", item.update, f"network:{res}:update")
        r(SERVICE, "DELETE", base + "/{id}", item.delete, f"network:{res}:delete")
    r(SERVICE, "PUT", "/v2.0/routers/{id}/add_router_interface", add_interface, "network:router:action")
    r(SERVICE, "PUT", "/v2.0/routers/{id}/remove_router_interface", remove_interface, "network:router:action")
    for coll, res in (("networks", "network"), ("subnets", "subnet"), ("ports", "port"),
                      ("security-groups", "security_group"), ("floatingips", "floatingip"), ("routers", "router"),
                      ("subnetpools", "subnetpool")):
        tag_routes(router, coll, res)
