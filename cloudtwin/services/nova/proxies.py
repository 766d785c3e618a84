"""Nova's proxy APIs (removed at microversion 2.36): security groups, floating IPs, images and
networks, served over the region's Neutron and Glance objects in Nova's own format.

A stock Nova answers these by calling Neutron or Glance and translating the result, so the objects
made here are the Neutron and Glance objects themselves (same ids, visible through both APIs), and
the errors are the ones Nova produces from that round trip: its own schema and range checks first,
then Neutron's or Glance's message under Nova's envelope. From 2.36 on every route is a plain 404.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlencode

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin, project_scope
from cloudtwin.routing import Call, Handler, Router

if TYPE_CHECKING:
    from cloudtwin.services.glance.models import GlanceState, Image
    from cloudtwin.services.neutron.models import (FloatingIP, Network, NeutronState, SecurityGroup,
                                                   SecurityGroupRule)

MAX_PROXY_VERSION = (2, 35)      # nova's MAX_PROXY_API_SUPPORT_VERSION
MAX_LIMIT = 1000                 # nova's osapi_max_limit
NOT_FOUND = "The resource could not be found."
_DIGITS = re.compile(r"^[0-9]*$")
_PORT_PROTOCOLS = ("TCP", "UDP")
_IMAGE_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "deleted": "DELETED",
                 "pending_delete": "DELETED", "killed": "ERROR"}
_IMAGE_PROGRESS = {"queued": 25, "saving": 50, "active": 100}
_NETWORK_FIELDS = ("id", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6",
                   "label", "netmask_v6", "created_at", "updated_at", "deleted_at", "deleted", "injected",
                   "bridge", "vlan", "vpn_public_address", "vpn_public_port", "vpn_private_address",
                   "dhcp_start", "project_id", "host", "bridge_interface", "multi_host", "priority",
                   "rxtx_base", "mtu", "dhcp_server", "enable_dhcp", "share_address")


class HasNeutron(Protocol):
    """Anything carrying the region's Neutron state (the Nova handlers' ``View`` does)."""

    neutron: Any


# ---- shared helpers ---------------------------------------------------------------------------------

def _proxy(handler: Handler) -> Handler:
    """Serve ``handler`` up to microversion 2.35; from 2.36 Nova routes these APIs nowhere (404)."""

    @functools.wraps(handler)
    async def below_236(call: Call) -> web.Response:
        if call.microversion > MAX_PROXY_VERSION:
            raise ApiError(404, NOT_FOUND)
        return await handler(call)

    return below_236


def _neutron(call: Call) -> "NeutronState":
    assert call.region is not None
    return call.region.neutron  # type: ignore[no-any-return]


def _glance(call: Call) -> "GlanceState":
    assert call.region is not None
    return call.region.glance  # type: ignore[no-any-return]


def _invalid(field: str, value: Any, why: str) -> ApiError:
    """Nova's JSON-schema failure text for a body field."""
    return ApiError(400, f"Invalid input for field/attribute {field}. Value: {value}. {why}")


def _relayed(err: ApiError, status: int | None = None) -> ApiError:
    """A Neutron or Glance error as Nova relays it: the other service's message in Nova's envelope."""
    return ApiError(status or err.status, err.message)


def _is_uuid(value: Any) -> bool:
    """oslo's ``is_uuid_like`` (Nova's uuid check): any spelling that reads back as the same 32 hex
    digits, with or without dashes, braces or a ``urn:uuid:`` prefix."""
    if not isinstance(value, str):
        return False
    digits = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    try:
        return uuid.UUID(value).hex == digits
    except ValueError:
        return False


def _body_object(call: Call, key: str) -> dict[str, Any]:
    """The object under ``key`` of the request body, with Nova's schema messages when it is not one."""
    body = call.body(required=False)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, f"{body!r} is not of type 'object'")
    if key not in body:
        raise ApiError(400, f"'{key}' is a required property")
    inner = body[key]
    if not isinstance(inner, dict):
        raise _invalid(key, inner, f"{inner!r} is not of type 'object'")
    return inner


def _name_field(obj: dict[str, Any], parent: str, key: str) -> str:
    """A required string of at most 255 characters (security group name and description)."""
    if key not in obj:
        raise _invalid(parent, obj, f"'{key}' is a required property")
    value = obj[key]
    if not isinstance(value, str):
        raise _invalid(key, value, f"{value!r} is not of type 'string'")
    if len(value) > 255:
        raise _invalid(key, value, f"{value!r} is too long")
    return value


def _query_count(call: Call, name: str) -> int | None:
    """A paging parameter (limit, offset, page_size): digits only, as Nova's query schema demands."""
    values = call.query.getall(name, [])
    for value in values:
        if value == "":
            raise ApiError(400, f"Invalid input for query parameters {name}. Value: . '' is too short")
        if not _DIGITS.match(value):
            raise ApiError(400, f"Invalid input for query parameters {name}. Value: {value}. "
                                f"{value!r} does not match '^[0-9]*$'")
    if not values:
        return None
    text = values[-1]
    return wire.count(text)


def _links(call: Call, kind: str, oid: str) -> list[dict[str, str]]:
    base = call.base_url()
    root = base[: -len("/v2.1")] if base.endswith("/v2.1") else base
    return [{"rel": "self", "href": f"{base}/{kind}/{oid}"}, {"rel": "bookmark", "href": f"{root}/{kind}/{oid}"}]


# ---- security groups: rendering ---------------------------------------------------------------------

def _nova_fields(rule: "SecurityGroupRule") -> dict[str, Any]:
    """A Neutron rule in Nova's internal form: a protocol without ports is the whole range (1-65535
    for TCP and UDP, -1 for anything else) and a rule with no remote prefix is 0.0.0.0/0."""
    proto = rule.protocol
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto and lo is None and hi is None:
        lo, hi = (1, 65535) if proto.upper() in _PORT_PROTOCOLS else (-1, -1)
    return {"protocol": proto, "from_port": lo, "to_port": hi, "group_id": rule.remote_group_id,
            "cidr": rule.remote_ip_prefix or "0.0.0.0/0"}


def nova_rule(neutron: "NeutronState", rule: "SecurityGroupRule") -> dict[str, Any] | None:
    """One rule as Nova shows it, or None when its remote group is gone (Nova leaves such rules out)."""
    fields = _nova_fields(rule)
    out: dict[str, Any] = {"id": rule.id, "parent_group_id": rule.security_group_id,
                           "ip_protocol": fields["protocol"], "from_port": fields["from_port"],
                           "to_port": fields["to_port"], "group": {}, "ip_range": {}}
    if rule.remote_group_id:
        remote = neutron.security_groups.get(rule.remote_group_id)
        if remote is None:
            return None
        out["group"] = {"name": remote.name, "tenant_id": remote.project_id}
    else:
        out["ip_range"] = {"cidr": fields["cidr"]}
    return out


def ingress_rules(neutron: "NeutronState", sg: "SecurityGroup") -> list[dict[str, Any]]:
    """The rules of ``sg`` in Nova's format; Nova has no egress rules, so it shows ingress ones only."""
    out = []
    for rule in neutron.rules_of(sg):
        if rule.direction != "ingress":
            continue
        rendered = nova_rule(neutron, rule)
        if rendered is not None:
            out.append(rendered)
    return out


def nova_rules(view: HasNeutron, sg: "SecurityGroup") -> list[dict[str, Any]]:
    """``ingress_rules`` for the servers' view (``GET /servers/{id}/os-security-groups``)."""
    return ingress_rules(view.neutron, sg)


def _nova_group(neutron: "NeutronState", sg: "SecurityGroup") -> dict[str, Any]:
    return {"id": sg.id, "name": sg.name, "description": sg.description, "tenant_id": sg.project_id,
            "rules": ingress_rules(neutron, sg)}


# ---- security groups: handlers ----------------------------------------------------------------------

def _group_id(value: str) -> str:
    if not _is_uuid(value):
        raise ApiError(400, "Security group id should be uuid")
    return value


def _get_group(call: Call, sg_id: str) -> "SecurityGroup":
    """The project's group; Nova passes Neutron's not-found text through."""
    try:
        return _neutron(call).get_security_group(call.project_id, sg_id)
    except ApiError as err:
        raise _relayed(err) from None


async def list_groups(call: Call) -> web.Response:
    """Nova slices Neutron's list (offset, limit) first and sorts the page by tenant and name after."""
    limit = _query_count(call, "limit") or MAX_LIMIT
    offset = _query_count(call, "offset") or 0
    neutron = _neutron(call)
    projects = project_scope(call)     # an admin's all_tenants lists every project's groups
    if projects is None:
        pool = list(neutron.security_groups.values())
    else:
        pool = [g for p in sorted(projects) for g in neutron.iter_owned("security_groups", p)]
    groups = pool[offset:offset + min(limit, MAX_LIMIT)]
    out = sorted((_nova_group(neutron, g) for g in groups), key=lambda g: (g["tenant_id"], g["name"]))
    return wire.json_response(200, {"security_groups": out})


async def get_group(call: Call) -> web.Response:
    sg = _get_group(call, _group_id(call.params["id"]))
    return wire.json_response(200, {"security_group": _nova_group(_neutron(call), sg)})


async def create_group(call: Call) -> web.Response:
    """Neutron's conflicts (quota, a second ``default``) reach the client as Nova's 403."""
    body = _body_object(call, "security_group")
    name = _name_field(body, "security_group", "name")
    description = _name_field(body, "security_group", "description")
    neutron = _neutron(call)
    try:
        sg = neutron.add_security_group(call.project_id, name=name, description=description)
    except ApiError as err:
        raise _relayed(err, 403 if err.status == 409 else None) from None
    return wire.json_response(200, {"security_group": _nova_group(neutron, sg)})


async def update_group(call: Call) -> web.Response:
    """Nova validates the body before the id; a refused Neutron update is a 400 (never Nova's 500)."""
    body = _body_object(call, "security_group")
    name = _name_field(body, "security_group", "name")
    description = _name_field(body, "security_group", "description")
    sg = _get_group(call, _group_id(call.params["id"]))
    neutron = _neutron(call)
    try:
        neutron.update_security_group(call.project_id, sg.id, {"name": name, "description": description})
    except ApiError as err:
        raise _relayed(err, 400 if err.status == 409 else None) from None
    return wire.json_response(200, {"security_group": _nova_group(neutron, sg)})


async def delete_group(call: Call) -> web.Response:
    """A group in use (or the default group) is Nova's 400 with Neutron's reason."""
    sg = _get_group(call, _group_id(call.params["id"]))
    try:
        _neutron(call).delete_security_group(call.project_id, sg.id)
    except ApiError as err:
        raise _relayed(err, 400 if err.status == 409 else None) from None
    return wire.json_response(202)


# ---- security group rules ---------------------------------------------------------------------------

def _rule_uuid(rule: dict[str, Any], key: str, *, required: bool) -> str | None:
    """``parent_group_id`` (required string) and ``group_id`` (string or null), both uuid formatted."""
    if key not in rule:
        if required:
            raise _invalid("security_group_rule", rule, f"'{key}' is a required property")
        return None
    value = rule[key]
    if value is None and not required:
        return None
    if not isinstance(value, str):
        kinds = "'string'" if required else "'string', 'null'"
        raise _invalid(key, value, f"{value!r} is not of type {kinds}")
    if not _is_uuid(value):
        raise _invalid(key, value, f"{value!r} is not a 'uuid'")
    return value


def _parse_cidr(cidr: Any) -> str:
    """Nova's ``parse_cidr``: empty means 0.0.0.0/0, otherwise a URL-unquoted network with a prefix."""
    if not cidr:
        return "0.0.0.0/0"
    if not isinstance(cidr, str):
        raise ApiError(400, f"{cidr} is not a valid IP network.")
    text = unquote(cidr)
    _, slash, prefix = text.partition("/")
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ApiError(400, f"{cidr} is not a valid IP network.") from None
    if not slash or not prefix:
        raise ApiError(400, f"{cidr} is not a valid IP network.")
    return text


def _port_pair(protocol: str, from_port: Any, to_port: Any) -> tuple[int, int]:
    """Both ports as integers (Python's ``int``, as Nova converts them) or Nova's 400."""
    try:
        return int(from_port), int(to_port)
    except (ValueError, TypeError, OverflowError):
        if protocol.upper() == "ICMP":
            reason = "Type and Code must be integers for ICMP protocol type"
        else:
            reason = "To and From ports must be integers"
        raise ApiError(400, f"Invalid input received: {reason}") from None


def _check_ports(protocol: str, lo: int, hi: int) -> None:
    """Nova's own checks: TCP, UDP and ICMP only; ordered 1-65535 ports; ICMP type and code -1-255."""
    upper = protocol.upper()
    if upper not in ("TCP", "UDP", "ICMP"):
        raise ApiError(400, f"Invalid IP protocol {protocol}.")
    if upper in _PORT_PROTOCOLS and lo > hi:
        raise ApiError(400, f"Invalid port range {lo}:{hi}. Former value cannot be greater than the later")
    if upper in _PORT_PROTOCOLS and (lo < 1 or hi > 65535):
        raise ApiError(400, f"Invalid port range {lo}:{hi}. Valid {upper} ports should be between 1-65535")
    if upper == "ICMP" and not (-1 <= lo <= 255 and -1 <= hi <= 255):
        raise ApiError(400, f"Invalid port range {lo}:{hi}. For ICMP, the type:code must be valid")


def _new_ingress_rule(protocol: Any, from_port: Any, to_port: Any, *, group_id: str | None,
                      cidr: str | None) -> dict[str, Any] | None:
    """Nova's ``_new_ingress_rule``: a group rule opens the whole range when no ports are given; a CIDR
    rule needs a protocol and both ports (None: "not enough parameters")."""
    values: dict[str, Any] = {}
    if group_id:
        values["group_id"] = group_id
        upper = str(protocol).upper() if protocol else ""
        if upper == "ICMP" and from_port is None and to_port is None:
            from_port = to_port = -1
        elif upper in _PORT_PROTOCOLS and from_port is None and to_port is None:
            from_port, to_port = 1, 65535
    elif cidr:
        values["cidr"] = cidr
    if protocol and from_port is not None and to_port is not None:
        proto = str(protocol)
        lo, hi = _port_pair(proto, from_port, to_port)
        _check_ports(proto, lo, hi)
        values.update(protocol=proto, from_port=lo, to_port=hi)
    elif cidr:
        return None
    return values


def _check_prefix(cidr: str) -> None:
    """A /0 is only allowed for 0.0.0.0 and ::, as Nova refuses e.g. ``10.0.0.0/0``."""
    iface = ipaddress.ip_interface(cidr)
    if iface.network.prefixlen == 0 and str(iface.ip) not in ("0.0.0.0", "::"):
        raise ApiError(400, f"Bad prefix for network in cidr {cidr}")


def _rule_exists(neutron: "NeutronState", sg: "SecurityGroup", new: dict[str, Any]) -> bool:
    """Nova's own duplicate check (over its view of the ingress rules; Neutron catches the rest)."""
    keys = ("group_id", "cidr", "from_port", "to_port", "protocol")
    for rule in neutron.rules_of(sg):
        if rule.direction == "ingress":
            fields = _nova_fields(rule)
            if all(fields.get(k) == new.get(k) for k in keys):
                return True
    return False


def _neutron_rule_args(new: dict[str, Any]) -> dict[str, Any]:
    """What Nova sends Neutron: an ingress rule, IPv4 unless the CIDR is IPv6, -1 ports left open."""
    cidr = new.get("cidr")
    ethertype = "IPv6" if cidr and ipaddress.ip_network(cidr, strict=False).version == 6 else "IPv4"
    lo, hi = new.get("from_port"), new.get("to_port")
    return {"direction": "ingress", "ethertype": ethertype, "protocol": new.get("protocol"),
            "port_range_min": None if lo in (None, -1) else lo, "port_range_max": None if hi in (None, -1) else hi,
            "remote_ip_prefix": cidr, "remote_group_id": new.get("group_id")}


async def create_rule(call: Call) -> web.Response:
    """Nova's order: schema, parent and source group (404), rule arguments (400), Nova's duplicate
    check (400), then Neutron (a Neutron conflict, e.g. its own duplicate check, is Nova's 403)."""
    body = _body_object(call, "security_group_rule")
    parent_id = _rule_uuid(body, "parent_group_id", required=True)
    group_id = _rule_uuid(body, "group_id", required=False)
    assert parent_id is not None
    neutron = _neutron(call)
    sg = _get_group(call, parent_id)
    if group_id is not None:
        _get_group(call, group_id)
    cidr = None if group_id is not None else _parse_cidr(body.get("cidr"))
    new = _new_ingress_rule(body.get("ip_protocol"), body.get("from_port"), body.get("to_port"),
                            group_id=group_id, cidr=cidr)
    if new is None:
        raise ApiError(400, "Not enough parameters to build a valid rule.")
    if "cidr" in new:
        _check_prefix(new["cidr"])
    if _rule_exists(neutron, sg, new):
        raise ApiError(400, f"This rule already exists in group {sg.id}")
    try:
        rule = neutron.add_security_group_rule(call.project_id, sg.id, **_neutron_rule_args(new))
    except ApiError as err:
        raise _relayed(err, 403 if err.status == 409 else None) from None
    return wire.json_response(200, {"security_group_rule": nova_rule(neutron, rule)})


async def delete_rule(call: Call) -> web.Response:
    """Any rule of the project's groups (egress ones too: Nova does not look at the direction)."""
    rule_id = _group_id(call.params["id"])
    neutron = _neutron(call)
    try:
        rule = neutron.get_security_group_rule(call.project_id, rule_id)
    except ApiError as err:
        raise _relayed(err) from None
    _get_group(call, rule.security_group_id)
    neutron.delete_security_group_rule(call.project_id, rule.id)
    return wire.json_response(202)


# ---- floating IPs -----------------------------------------------------------------------------------

def _nova_fip(neutron: "NeutronState", fip: "FloatingIP") -> dict[str, Any]:
    """Nova's view: the pool is the external network's name (its id when unnamed) and the instance is
    the device of the associated port."""
    net = neutron.networks.get(fip.floating_network_id)
    port = neutron.ports.get(fip.port_id) if fip.port_id else None
    return {"id": fip.id, "ip": fip.floating_ip_address, "fixed_ip": fip.fixed_ip_address,
            "instance_id": (port.device_id or None) if port is not None else None,
            "pool": (net.name or net.id) if net is not None else fip.floating_network_id}


def _get_fip(call: Call) -> "FloatingIP":
    fip_id = call.params["id"]
    try:
        return _neutron(call).get_floatingip(call.project_id, fip_id)
    except ApiError:
        raise ApiError(404, f"Floating IP not found for ID {fip_id}") from None


def _pool_network(call: Call, pool: str | None) -> "Network":
    """The external network named (or, for a uuid, identified by) ``pool``; no pool is the region's
    public network, Nova's configured default pool."""
    neutron = _neutron(call)
    if not pool:
        return neutron.get_network(call.project_id, neutron.ensure_public_network())
    by_id = _is_uuid(pool)
    nets = [n for n in neutron.visible_networks(call.project_id)
            if n.external and (n.id == pool if by_id else n.name == pool)]
    if not nets:
        raise ApiError(404, "Floating IP pool not found.")
    if len(nets) > 1:
        raise ApiError(409, f"Multiple floating IP pools matches found for name '{pool}'")
    return nets[0]


async def list_fips(call: Call) -> web.Response:
    neutron = _neutron(call)
    return wire.json_response(200, {"floating_ips": [_nova_fip(neutron, f)
                                                     for f in neutron.iter_owned("floatingips", call.project_id)]})


async def get_fip(call: Call) -> web.Response:
    return wire.json_response(200, {"floating_ip": _nova_fip(_neutron(call), _get_fip(call))})


async def create_fip(call: Call) -> web.Response:
    """The body is optional (``{"pool": name}``); an exhausted pool is 404 and a full quota 403, as in Nova."""
    body = call.body(required=False)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, f"{body!r} is not of type 'object', 'null'")
    pool = (body or {}).get("pool")
    if pool is not None and not isinstance(pool, str):
        raise _invalid("pool", pool, f"{pool!r} is not of type 'string', 'null'")
    net = _pool_network(call, pool)
    neutron = _neutron(call)
    try:
        fip = neutron.allocate_floatingip(call.project_id, network_id=net.id)
    except ApiError as err:
        if err.code == "IpAddressGenerationFailure":
            raise ApiError(404, f"No more floating IPs in pool {pool}." if pool
                           else "No more floating IPs available.") from None
        if err.code == "OverQuota":
            raise ApiError(403, f"IP allocation over quota in pool {pool}." if pool
                           else "IP allocation over quota.") from None
        raise _relayed(err) from None
    return wire.json_response(200, {"floating_ip": _nova_fip(neutron, fip)})


async def delete_fip(call: Call) -> web.Response:
    fip = _get_fip(call)
    _neutron(call).delete_floatingip(call.project_id, fip.id)
    return wire.json_response(202)


# ---- images -----------------------------------------------------------------------------------------

def _image_links(call: Call, img: "Image") -> list[dict[str, str]]:
    """Self and bookmark on Nova, plus the ``alternate`` link to the image on Glance."""
    assert call.cloud is not None and call.region is not None
    glance = call.request.app["service_url"](call.request, call.cloud.name, call.region.name, "image")
    return [*_links(call, "images", img.id),
            {"rel": "alternate", "type": "application/vnd.openstack.image", "href": f"{glance}/images/{img.id}"}]


def _nova_image(call: Call, img: "Image", *, detail: bool) -> dict[str, Any]:
    """Nova's image view: Glance's status in capitals (queued shows as SAVING), its extra properties as
    ``metadata``, a size of 0 before data is uploaded."""
    out: dict[str, Any] = {"id": img.id, "name": img.name or None, "links": _image_links(call, img)}
    if not detail:
        return out
    metadata = dict(img.properties)
    out.update({"minRam": img.min_ram, "minDisk": img.min_disk, "metadata": metadata,
                "created": wire.iso(img.created_at), "updated": wire.iso(img.updated_at),
                "status": _IMAGE_STATUS.get(img.status, "UNKNOWN"), "progress": _IMAGE_PROGRESS.get(img.status, 0),
                "OS-EXT-IMG-SIZE:size": img.size or 0})
    server = metadata.get("instance_uuid")
    if isinstance(server, str):
        out["server"] = {"id": server, "links": _links(call, "servers", server)}
    disk_config = metadata.get("auto_disk_config")
    if disk_config is not None:
        out["OS-DCF:diskConfig"] = "AUTO" if wire.truthy(str(disk_config)) else "MANUAL"
    return out


def _image_filters(call: Call) -> dict[str, str]:
    """Nova's filters mapped to Glance's: name, status, changes-since, server, type, minRam, minDisk and
    any ``property-<key>``."""
    q = call.query
    mapped = {"name": "name", "status": "status", "changes-since": "changes-since",
              "server": "instance_uuid", "type": "image_type", "minRam": "min_ram", "minDisk": "min_disk"}
    out: dict[str, str] = {}
    for key in q:
        if key in mapped:
            out[mapped[key]] = q.getall(key)[-1]
        elif key.startswith("property-"):
            out[key[len("property-"):]] = q.getall(key)[-1]
    if "instance_uuid" in out:
        out["instance_uuid"] = out["instance_uuid"].rsplit("/", 1)[-1]
    if "status" in out:
        out["status"] = out["status"].lower()
    return out


def _since(text: str) -> float:
    """``changes-since`` as a timestamp (Nova hands Glance ``updated_at=gte:<it>``); naive means UTC."""
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        return ts.timestamp()
    except ValueError:
        raise ApiError(400, f"Invalid changes-since value: {text}") from None


def _image_matches(img: "Image", filters: dict[str, str], since: float | None) -> bool:
    for key, want in filters.items():
        if key == "changes-since":
            if since is not None and img.updated_at < since:
                return False
        elif key == "name":
            if img.name != want:
                return False
        elif key == "status":
            if img.status != want:
                return False
        elif key in ("min_ram", "min_disk"):
            if str(getattr(img, key)) != want:
                return False
        elif str(img.properties.get(key)) != want:
            return False
    return True


def _list_images(call: Call, *, detail: bool) -> web.Response:
    """Glance's default listing (newest first, community and hidden images left out) filtered and
    paged as Nova does; like Nova, a full page always carries a ``next`` link."""
    limit = _query_count(call, "limit")
    for name in ("page_size", "offset"):
        _query_count(call, name)
    filters = _image_filters(call)
    since = _since(filters["changes-since"]) if "changes-since" in filters else None
    pid = call.project_id
    items = [i for i in _glance(call).visible(pid)
             if (i.visibility != "community" or i.owner == pid) and not i.os_hidden
             and _image_matches(i, filters, since)]
    page_query = {"marker": call.query.get("marker")}
    if limit:
        page_query["limit"] = str(limit)
    chunk, _ = wire.page(items, page_query, max_limit=MAX_LIMIT,
                         marker_error="Invalid marker. Image {marker} could not be found.")
    body: dict[str, Any] = {"images": [_nova_image(call, i, detail=detail) for i in chunk]}
    page_size = min(limit or MAX_LIMIT, MAX_LIMIT)
    if chunk and len(chunk) == page_size:
        params = sorted((k, v) for k, v in call.query.items() if k != "marker")
        params.append(("marker", chunk[-1].id))
        path = "images/detail" if detail else "images"
        body["images_links"] = [{"rel": "next", "href": f"{call.base_url()}/{path}?{urlencode(params)}"}]
    return wire.json_response(200, body)


async def list_images(call: Call) -> web.Response:
    return _list_images(call, detail=False)


async def list_images_detail(call: Call) -> web.Response:
    return _list_images(call, detail=True)


async def get_image(call: Call) -> web.Response:
    img = _glance(call).find(call.project_id, call.params["id"])
    if img is None:
        raise ApiError(404, "Image not found.")
    return wire.json_response(200, {"image": _nova_image(call, img, detail=True)})


async def delete_image(call: Call) -> web.Response:
    """Glance decides; its 403 (a public or protected image) becomes Nova's own 403 text."""
    try:
        _glance(call).delete(call.project_id, call.params["id"])
    except ApiError as err:
        if err.status == 403:
            raise ApiError(403, "You are not allowed to delete the image.") from None
        raise ApiError(404, "Image not found.") from None
    return wire.json_response(204)


# ---- image metadata -----------------------------------------------------------------------------------

def _image_for_metadata(call: Call, *, write: bool = False) -> Any:
    glance = _glance(call)
    img = glance.find(call.project_id, call.params["id"], admin=is_admin(call))
    if img is None:
        raise ApiError(404, "Image not found.")
    if write:
        try:
            glance.owned(call.project_id, img.id, admin=is_admin(call))
        except ApiError:
            raise ApiError(403, "You are not allowed to modify the image.") from None
    return img


def _metadata_body(call: Call, key: str) -> dict[str, str]:
    md = call.body(key)
    if not all(isinstance(k, str) and 1 <= len(k) <= 255 and isinstance(v, str) and len(v) <= 255
               for k, v in md.items()):
        raise ApiError(400, f"Invalid input for field/attribute {key}. Value: {md}. a map of strings")
    limit = 128
    if len(md) > limit:
        raise ApiError(403, "Quota exceeded for metadata_items")
    return md


def _image_metadata(img: Any) -> dict[str, Any]:
    return {k: v for k, v in img.properties.items() if k != "login_user"}


async def get_image_metadata(call: Call) -> web.Response:
    return wire.json_response(200, {"metadata": _image_metadata(_image_for_metadata(call))})


async def set_image_metadata(call: Call) -> web.Response:
    """PUT replaces every property, POST merges into them."""
    img = _image_for_metadata(call, write=True)
    md = _metadata_body(call, "metadata")
    if call.request.method == "PUT":
        img.properties = dict(md)
    else:
        img.properties.update(md)
    img.touch()
    return wire.json_response(200, {"metadata": _image_metadata(img)})


async def get_image_metadata_item(call: Call) -> web.Response:
    img = _image_for_metadata(call)
    key = call.params["key"]
    if key not in img.properties:
        raise ApiError(404, "Metadata item was not found")
    return wire.json_response(200, {"meta": {key: img.properties[key]}})


async def set_image_metadata_item(call: Call) -> web.Response:
    img = _image_for_metadata(call, write=True)
    key = call.params["key"]
    md = _metadata_body(call, "meta")
    if len(md) > 1:
        raise ApiError(400, "Request body contains too many items")
    if key not in md:
        raise ApiError(400, "Request body and URI mismatch")
    img.properties[key] = md[key]
    img.touch()
    return wire.json_response(200, {"meta": {key: md[key]}})


async def delete_image_metadata_item(call: Call) -> web.Response:
    img = _image_for_metadata(call, write=True)
    key = call.params["key"]
    if key not in img.properties:
        raise ApiError(404, "Metadata item was not found")
    del img.properties[key]
    img.touch()
    return wire.json_response(204)


# ---- networks ---------------------------------------------------------------------------------------

def _nova_network(net: "Network") -> dict[str, Any]:
    """Nova's network view over Neutron: only the id and the label (the name) are known; every
    nova-network field is null."""
    out: dict[str, Any] = dict.fromkeys(_NETWORK_FIELDS)
    out.update({"id": net.id, "label": net.name})
    return out


async def list_networks(call: Call) -> web.Response:
    nets = _neutron(call).visible_networks(call.project_id)
    return wire.json_response(200, {"networks": [_nova_network(n) for n in nets]})


async def get_network(call: Call) -> web.Response:
    try:
        net = _neutron(call).get_network(call.project_id, call.params["id"])
    except ApiError:
        raise ApiError(404, "Network not found") from None
    return wire.json_response(200, {"network": _nova_network(net)})


async def no_route(call: Call) -> web.Response:
    raise ApiError(404, NOT_FOUND)


# ---- routes -----------------------------------------------------------------------------------------

def add_routes(r: Router) -> None:
    s = "compute"
    routes = [
        ("GET", "/v2.1/os-security-groups", list_groups, "compute:os_security_group:list"),
        ("POST", "/v2.1/os-security-groups", create_group, "compute:os_security_group:create"),
        ("GET", "/v2.1/os-security-groups/{id}", get_group, "compute:os_security_group:get"),
        ("PUT", "/v2.1/os-security-groups/{id}", update_group, "compute:os_security_group:update"),
        ("DELETE", "/v2.1/os-security-groups/{id}", delete_group, "compute:os_security_group:delete"),
        ("POST", "/v2.1/os-security-group-rules", create_rule, "compute:os_security_group_rule:create"),
        ("DELETE", "/v2.1/os-security-group-rules/{id}", delete_rule, "compute:os_security_group_rule:delete"),
        ("GET", "/v2.1/os-floating-ips", list_fips, "compute:os_floating_ip:list"),
        ("POST", "/v2.1/os-floating-ips", create_fip, "compute:os_floating_ip:create"),
        ("GET", "/v2.1/os-floating-ips/{id}", get_fip, "compute:os_floating_ip:get"),
        ("DELETE", "/v2.1/os-floating-ips/{id}", delete_fip, "compute:os_floating_ip:delete"),
        ("GET", "/v2.1/images", list_images, "compute:image:list"),
        ("GET", "/v2.1/images/detail", list_images_detail, "compute:image:list"),
        ("GET", "/v2.1/images/{id}", get_image, "compute:image:get"),
        ("DELETE", "/v2.1/images/{id}", delete_image, "compute:image:delete"),
        ("GET", "/v2.1/images/{id}/metadata", get_image_metadata, "compute:image_metadata:list"),
        ("PUT", "/v2.1/images/{id}/metadata", set_image_metadata, "compute:image_metadata:replace"),
        ("POST", "/v2.1/images/{id}/metadata", set_image_metadata, "compute:image_metadata:update"),
        ("GET", "/v2.1/images/{id}/metadata/{key}", get_image_metadata_item, "compute:image_metadata:get"),
        ("PUT", "/v2.1/images/{id}/metadata/{key}", set_image_metadata_item, "compute:image_metadata:set"),
        ("DELETE", "/v2.1/images/{id}/metadata/{key}", delete_image_metadata_item, "compute:image_metadata:delete"),
        ("GET", "/v2.1/os-networks", list_networks, "compute:os_network:list"),
        # a delete without an id: Nova has no such route (404, where a method mismatch would be a 405)
        ("DELETE", "/v2.1/os-security-groups", no_route, "compute:os_security_group:delete"),
        ("DELETE", "/v2.1/images", no_route, "compute:image:delete"),
        ("GET", "/v2.1/os-networks/{id}", get_network, "compute:os_network:get"),
    ]
    for method, pattern, handler, operation in routes:
        r.add(s, method, pattern, _proxy(handler), operation)
