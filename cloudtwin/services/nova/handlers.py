"""Nova v2.1 wire format: version documents, servers, actions, flavors, keypairs, zones, limits, quotas.

Shapes follow the microversion the dispatcher negotiated (``call.microversion``): 2.2 keypair type and
201/204, 2.9 ``locked``, 2.19 ``description``, 2.26 ``tags``, 2.37 ``networks: auto|none``, 2.47 the
embedded flavor, 2.55 flavor ``description``, 2.61 flavor ``extra_specs``, 2.75 integer ``swap``,
2.92 keypair create requires ``public_key``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import string
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.ids import hostname_of
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.volumes import parse_block_devices
from cloudtwin.services.nova.models import (Flavor, Keypair, NetRequest, NovaState, Server, generate_keypair,
                                            generate_x509, host_id, ref_id)
from cloudtwin.services.nova.proxies import nova_rules as _nova_rules
from cloudtwin.policy import is_admin, project_scope

MAX_LIMIT = 1000            # Nova's osapi_max_limit
PASS_CHARS = string.ascii_letters + string.digits
_KEYPAIR_NAME = re.compile(r"^[A-Za-z0-9 _\-]+$")
_KEYPAIR_NAME_292 = re.compile(r"^[A-Za-z0-9 _\-@.]+$")
UPDATED = "2013-07-23T11:33:21Z"


def nova_of(call: Call) -> NovaState:
    assert call.region is not None
    return call.region.nova  # type: ignore[no-any-return]


def mv(call: Call, major: int, minor: int) -> bool:
    return call.microversion >= (major, minor)


# ---- versions ---------------------------------------------------------------------------------------

def _version_doc(call: Call) -> dict[str, Any]:
    assert call.cloud is not None
    base = call.base_url()
    return {"id": "v2.1", "status": "CURRENT", "version": call.cloud.profile.max_microversion,
            "min_version": "2.1", "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{base}/"},
                      {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


async def version(call: Call) -> web.Response:
    return wire.json_response(200, {"version": _version_doc(call)})


async def version_v20(call: Call) -> web.Response:
    """The legacy v2.0 endpoint's document (the version list links to it)."""
    base = call.base_url()
    root = base[: -len("/v2.1")] if base.endswith("/v2.1") else base
    return wire.json_response(200, {"version": {
        "id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": f"{root}/v2/"},
                  {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]}})


async def versions(call: Call) -> web.Response:
    base = call.base_url()
    root = base[: -len("/v2.1")] if base.endswith("/v2.1") else base
    v21 = _version_doc(call)
    v21 = {k: v21[k] for k in ("id", "status", "version", "min_version", "updated", "links")}
    v20 = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
           "links": [{"rel": "self", "href": f"{root}/v2/"}]}
    return wire.json_response(200, {"versions": [v20, v21]})


# ---- rendering --------------------------------------------------------------------------------------

_FULL_ONLY = ("key_name", "security_groups", "config_drive", "host_status", "server_groups",
              "os-extended-volumes:volumes_attached")


class View:
    """Per-request rendering context (URLs, microversion switches, Neutron lookups)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.nova = nova_of(call)
        assert call.region is not None
        self.region = call.region
        self.neutron = call.region.neutron
        self.glance = call.region.glance
        self.life = self.nova.life
        self.base = call.base_url()
        self.root = self.base[: -len("/v2.1")] if self.base.endswith("/v2.1") else self.base
        self.mv = call.microversion
        self._host_ids: dict[tuple[str, str], str] = {}

    def host_id(self, s: Server) -> str:
        key = (s.project_id, s.host)
        hid = self._host_ids.get(key)
        if hid is None:
            hid = self._host_ids[key] = host_id(s.project_id, s.host)
        return hid

    def links(self, kind: str, oid: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{self.base}/{kind}/{oid}"},
                {"rel": "bookmark", "href": f"{self.root}/{kind}/{oid}"}]

    def ports(self, s: Server) -> list[Any]:
        return self.neutron.ports_of_device(s.id)  # type: ignore[no-any-return]

    def addresses(self, ports: list[Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        nets = self.neutron.networks
        for p in ports:
            net = nets.get(p.network_id)
            label = net.name if net is not None and net.name else p.network_id
            entries = out.setdefault(label, [])
            for ip in p.fixed_ips:
                addr = ip["ip_address"]
                entries.append({"version": 6 if ":" in addr else 4, "addr": addr,
                                "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.mac_address})
            for fip in self.neutron.floatingips_of_port(p.id):
                addr = fip.floating_ip_address
                entries.append({"version": 6 if ":" in addr else 4, "addr": addr,
                                "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": p.mac_address})
        return out

    def sg_names(self, s: Server, ports: list[Any]) -> list[dict[str, str]]:
        sgs = self.neutron.security_groups
        ids: list[str] = []
        if ports:
            for p in ports:
                ids.extend(p.security_groups)
        else:
            ids = list(s.security_groups)
        names = []
        for sid in dict.fromkeys(ids):
            sg = sgs.get(sid)
            names.append(sg.name if sg is not None else sid)
        return [{"name": n} for n in dict.fromkeys(names)]

    def flavor_ref(self, s: Server) -> dict[str, Any]:
        f = self.nova.flavors.get(s.flavor_id)
        if self.mv >= (2, 47):
            return {"vcpus": s.vcpus, "ram": s.ram, "disk": s.disk,
                    "ephemeral": f.ephemeral if f else 0, "swap": f.swap if f else 0,
                    "original_name": f.name if f else s.flavor_id,
                    "extra_specs": dict(f.extra_specs) if f else {}}
        return {"id": s.flavor_id, "links": [{"rel": "bookmark", "href": f"{self.root}/flavors/{s.flavor_id}"}]}

    def volumes_attached(self, s: Server) -> list[dict[str, Any]]:
        out = []
        for a in self.region.cinder.attachments_of_server(s.id):
            item: dict[str, Any] = {"id": a.volume_id}
            if self.mv >= (2, 3):
                item["delete_on_termination"] = a.delete_on_termination
            out.append(item)
        return out

    def summary(self, s: Server) -> dict[str, Any]:
        return {"id": s.id, "name": s.name, "links": self.links("servers", s.id)}

    def server(self, s: Server, *, show: bool = False) -> dict[str, Any]:
        attrs = self.life.attrs(s.state)
        status = attrs.get("status", s.state)
        ports = self.ports(s)
        mv = self.mv
        out: dict[str, Any] = {
            "id": s.id, "name": s.name, "status": status, "tenant_id": s.project_id, "user_id": s.user_id,
            "metadata": dict(s.metadata), "hostId": self.host_id(s),
            "image": ({"id": s.image_id, "links": [{"rel": "bookmark", "href": f"{self.root}/images/{s.image_id}"}]}
                      if s.image_id else ""),
            "flavor": self.flavor_ref(s),
            "created": wire.iso(s.created_at), "updated": wire.iso(s.updated_at),
            "addresses": self.addresses(ports),
            "accessIPv4": s.access_ipv4, "accessIPv6": s.access_ipv6,
            "links": self.links("servers", s.id),
            "OS-DCF:diskConfig": s.disk_config,
            "OS-EXT-AZ:availability_zone": s.availability_zone,
            "config_drive": s.config_drive,
            "key_name": s.key_name,
            "OS-SRV-USG:launched_at": usg(s.launched_at),
            "OS-SRV-USG:terminated_at": None,
            "OS-EXT-SRV-ATTR:host": s.host or None,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{s.id[:8]}",
            "OS-EXT-SRV-ATTR:hypervisor_hostname": s.host or None,
            "OS-EXT-STS:task_state": attrs.get("task_state"),
            "OS-EXT-STS:vm_state": attrs.get("vm_state"),
            "OS-EXT-STS:power_state": attrs.get("power_state", 0),
            "os-extended-volumes:volumes_attached": self.volumes_attached(s),
        }
        groups = self.sg_names(s, ports)
        if groups:        # Nova leaves the key out for a server without security groups
            out["security_groups"] = groups
        if attrs.get("vm_state") in ("active", "building", "rescued", "resized"):
            out["progress"] = 0        # Nova shows progress only while a server runs or builds
        if status == "ERROR" and s.fault:
            out["fault"] = {"code": s.fault.get("code", 500), "created": wire.iso(s.fault.get("created")),
                            "message": s.fault.get("message", "")}
        if mv >= (2, 3):
            out.update({"OS-EXT-SRV-ATTR:reservation_id": s.reservation_id,
                        "OS-EXT-SRV-ATTR:launch_index": s.launch_index,
                        "OS-EXT-SRV-ATTR:hostname": hostname_of(s.name),
                        "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                        "OS-EXT-SRV-ATTR:user_data": s.user_data})
        if mv >= (2, 9):
            out["locked"] = s.locked
        if mv >= (2, 16):
            out["host_status"] = "UP"
        if mv >= (2, 19):
            out["description"] = s.description
        if mv >= (2, 26):
            out["tags"] = list(s.tags)
        if mv >= (2, 63):
            out["trusted_image_certificates"] = None
        if mv >= (2, 71) and show:
            group = self.nova.group_of(s.id)
            out["server_groups"] = [group.id] if group is not None else []
        if mv >= (2, 73):
            out["locked_reason"] = s.locked_reason
        if mv >= (2, 96):
            out["pinned_availability_zone"] = None
        return out

    def changed(self, s: Server) -> dict[str, Any]:
        """The server as an update or rebuild answers it: before 2.75 without the extended attributes
        (status, host, zone, usage, volumes, key, groups, IP types); from 2.75 the full show."""
        doc = self.server(s, show=True)
        if self.mv >= (2, 75):
            return doc
        for key in list(doc):
            if key.startswith(("OS-EXT-STS:", "OS-EXT-SRV-ATTR:", "OS-SRV-USG:", "OS-EXT-AZ:")) or key in _FULL_ONLY:
                del doc[key]
        for entries in doc["addresses"].values():
            for entry in entries:
                entry.pop("OS-EXT-IPS:type", None)
                entry.pop("OS-EXT-IPS-MAC:mac_addr", None)
        return doc

    def flavor(self, f: Flavor, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": f.id, "name": f.name, "links": self.links("flavors", f.id)}
        if self.mv >= (2, 55):
            out["description"] = f.description
        if not detail:
            return out
        out.update({"ram": f.ram, "disk": f.disk, "vcpus": f.vcpus, "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
                    "OS-FLV-DISABLED:disabled": f.disabled,
                    "swap": f.swap if (f.swap or self.mv >= (2, 75)) else "",
                    "rxtx_factor": f.rxtx_factor, "os-flavor-access:is_public": f.is_public})
        if self.mv >= (2, 61):
            out["extra_specs"] = dict(f.extra_specs)
        return out


def usg(ts: float | None) -> str | None:
    """Nova's ``launched_at`` / keypair ``created_at`` style: microseconds, no zone suffix."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ts)) + f"{int(ts % 1 * 1e6):06d}"


# ---- servers ----------------------------------------------------------------------------------------

def _page(items: list[Any], call: Call) -> tuple[list[Any], str | None]:
    return wire.page(items, call.query, max_limit=MAX_LIMIT, marker_error="marker [{marker}] not found")


def _regex(text: str) -> Any:
    try:
        return re.compile(text)
    except re.error:
        return re.compile(re.escape(text))


def _timestamp(value: str, field: str) -> float:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid(field, value, f"{value!r} is not a 'date-time'") from None
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()


def _filter_servers(view: View, servers: list[Server], q: Any) -> list[Server]:
    if "name" in q:
        rx = _regex(q["name"])
        servers = [s for s in servers if rx.search(s.name)]
    if "status" in q:
        wanted = {v.upper() for v in q.getall("status")}
        life = view.life
        servers = [s for s in servers if life.attrs(s.state).get("status", s.state) in wanted]
    if "availability_zone" in q:
        servers = [s for s in servers if s.availability_zone == q["availability_zone"]]
    if "image" in q:
        img = ref_id(q["image"])
        servers = [s for s in servers if s.image_id == img]
    if "flavor" in q:
        fl = ref_id(q["flavor"])
        servers = [s for s in servers if s.flavor_id == fl]
    if "key_name" in q:
        servers = [s for s in servers if s.key_name == q["key_name"]]
    if "uuid" in q:
        servers = [s for s in servers if s.id == q["uuid"]]
    if "reservation_id" in q:
        servers = [s for s in servers if s.reservation_id == q["reservation_id"]]
    if "host" in q and is_admin(view.call):
        servers = [s for s in servers if s.host == q["host"]]
    for key, newer in (("changes-since", True), ("changes-before", False)):
        if key in q and (newer or view.mv >= (2, 66)):
            when = _timestamp(q[key], key)
            servers = [s for s in servers if (s.updated_at >= when if newer else s.updated_at <= when)]
    if "tags" in q and view.mv >= (2, 26):
        want = [t for t in q["tags"].split(",") if t]
        servers = [s for s in servers if all(t in s.tags for t in want)]
    if "tags-any" in q and view.mv >= (2, 26):
        want = [t for t in q["tags-any"].split(",") if t]
        servers = [s for s in servers if any(t in s.tags for t in want)]
    for key in ("ip", "ip6"):
        if key in q:
            rx = _regex(q[key])
            keep = []
            for s in servers:
                addrs = [ip["ip_address"] for p in view.ports(s) for ip in p.fixed_ips]
                if any(rx.search(a) for a in addrs if (":" in a) == (key == "ip6")):
                    keep.append(s)
            servers = keep
    return servers


def _list_servers(call: Call, detail: bool) -> web.Response:
    view = View(call)
    # as in Nova, project_id / tenant_id narrow an admin's list only together with all_tenants
    projects = project_scope(call) if "all_tenants" in call.query else {call.project_id}
    if projects is None:
        pool = view.nova.all_servers()
    elif len(projects) == 1:
        pool = view.nova.servers_of(next(iter(projects)))
    else:
        pool = [s for s in view.nova.all_servers() if s.project_id in projects]
    servers = _filter_servers(view, pool, call.query)
    chunk, next_marker = _page(servers, call)
    render = (lambda s: view.server(s)) if detail else view.summary
    body: dict[str, Any] = {"servers": [render(s) for s in chunk]}
    if next_marker:
        path = "/servers/detail" if detail else "/servers"
        q = [(k, v) for k, v in call.query.items() if k != "marker"]
        if "limit" not in call.query:
            q.append(("limit", str(MAX_LIMIT)))
        q.append(("marker", next_marker))
        body["servers_links"] = [{"rel": "next", "href": f"{view.base}{path}?{urlencode(q)}"}]
    return wire.json_response(200, body)


async def list_servers(call: Call) -> web.Response:
    return _list_servers(call, False)


async def list_servers_detail(call: Call) -> web.Response:
    return _list_servers(call, True)


def server_of(call: Call) -> Server:
    """The server of the URL: the caller's project's, or any project's for an admin."""
    return nova_of(call).server_for(call.project_id, call.params["id"], admin=is_admin(call))


async def get_server(call: Call) -> web.Response:
    s = server_of(call)
    call.twin.faults.zone_check(call, s.availability_zone)
    return wire.json_response(200, {"server": View(call).server(s, show=True)})


def invalid(field: str, value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute {field}. Value: {value}. {why}")


def _str_field(body: dict[str, Any], key: str, *, max_len: int = 255, required: bool = False,
               allow_empty: bool = True) -> str | None:
    if key not in body:
        if required:
            raise invalid("server", body, f"'{key}' is a required property")
        return None
    v = body[key]
    if not isinstance(v, str):
        raise invalid(key, v, f"{v!r} is not of type 'string'")
    if len(v) > max_len:
        raise invalid(key, v, f"{v!r} is too long")
    if not allow_empty and not v.strip():
        raise invalid(key, v, f"{v!r} does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'")
    return v


def _access_ip(body: dict[str, Any], key: str, version: int) -> str | None:
    """``accessIPv4`` / ``accessIPv6``: an address of that version (or empty)."""
    v = body.get(key)
    if v is None or v == "":
        return v
    try:
        ok = isinstance(v, str) and ipaddress.ip_address(v).version == version
    except ValueError:
        ok = False
    if not ok:
        raise invalid(key, v, f"{v!r} is not a 'ipv{version}'")
    return str(ipaddress.ip_address(v))      # Nova stores (and shows) the normalized address


def _int_field(body: dict[str, Any], key: str, default: int) -> int:
    v = body.get(key, default)
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise invalid(key, v, f"{v!r} is not a positive integer")
    return v


def _parse_networks(call: Call, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):
        if mv(call, 2, 37) and raw in ("auto", "none"):
            return raw
        raise invalid("networks", raw, f"{raw!r} is not of type 'array'")
    if not isinstance(raw, list):
        raise invalid("networks", raw, f"{raw!r} is not of type 'array'")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid("networks", item, f"{item!r} is not of type 'object'")
        port, uuid, fixed = item.get("port"), item.get("uuid"), item.get("fixed_ip")
        for k, v in (("port", port), ("uuid", uuid), ("fixed_ip", fixed)):
            if v is not None and not isinstance(v, str):
                raise invalid(f"networks/{k}", v, f"{v!r} is not of type 'string'")
        if port:
            out.append(NetRequest(port_id=port))
        elif uuid:
            out.append(NetRequest(network_id=uuid, fixed_ip=fixed or None))
        else:
            raise ApiError(400, "Bad network format: missing 'uuid'")
    return out


def scheduler_group(call: Call) -> str | None:
    """The server group a create request names in ``os:scheduler_hints`` (checked to exist)."""
    body = call.body()
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") if isinstance(body, dict) else None
    if hints is None:
        return None
    if not isinstance(hints, dict):
        raise invalid("os:scheduler_hints", hints, "not an object")
    group = hints.get("group")
    if group is None:
        return None
    if not isinstance(group, str):
        raise invalid("group", group, "a server group id")
    try:
        nova_of(call).get_server_group(call.project_id, group)
    except ApiError:
        raise ApiError(400, f"Invalid input for field/attribute group. Value: {group}. "
                            f"Instance group {group} could not be found.") from None
    return group


def host_hints(call: Call) -> tuple[list[str], list[str]]:
    """The ``same_host`` and ``different_host`` scheduler hints of a create request: server ids (one as
    a string, several as a list), as Nova's SameHostFilter and DifferentHostFilter read them."""
    body = call.body()
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") if isinstance(body, dict) else None
    out: list[list[str]] = []
    for key in ("same_host", "different_host"):
        value = hints.get(key) if isinstance(hints, dict) else None
        ids = [value] if isinstance(value, str) else value if value is not None else []
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise invalid(key, value, "a server id or a list of server ids")
        out.append(ids)
    return out[0], out[1]


def _check_flavor_access(call: Call, flavor_ref: str) -> None:
    """A private flavor boots only in the projects it is shared with (or for an admin)."""
    nova = nova_of(call)
    f = nova.find_flavor(flavor_ref)
    if f is not None and not nova.flavor_visible(f, call.project_id, is_admin(call)):
        raise ApiError(400, f"Flavor {flavor_ref} could not be found.")


def _target_host(call: Call, body: dict[str, Any]) -> str | None:
    """An admin's ``host`` / ``hypervisor_hostname`` (2.74): the server must land there."""
    host = body.get("host")
    node = body.get("hypervisor_hostname")
    if host is None and node is None:
        return None
    if not mv(call, 2, 74):
        raise invalid("server", body, "Additional properties are not allowed ('host' was unexpected)")
    for v in (host, node):
        if v is not None and (not isinstance(v, str) or not v):
            raise invalid("host", v, "a host name")
    if host is not None and node is not None and host != node:
        raise ApiError(400, f"Compute host {host} could not be found.")
    target = host or node
    if target not in nova_of(call).hosts.hosts:
        raise ApiError(400, f"Compute host {target} could not be found.")
    return target


async def create_server(call: Call) -> web.Response:
    body = call.body("server")
    nova = nova_of(call)
    assert call.token is not None
    name = _str_field(body, "name", required=True, allow_empty=False)
    image_ref = body.get("imageRef")
    if image_ref is not None and not isinstance(image_ref, str):
        raise invalid("imageRef", image_ref, f"{image_ref!r} is not of type 'string'")
    flavor_ref = body.get("flavorRef")
    if flavor_ref is None:
        raise invalid("server", "{...}", "'flavorRef' is a required property")
    if not isinstance(flavor_ref, (str, int)) or isinstance(flavor_ref, bool):
        raise invalid("flavorRef", flavor_ref, f"{flavor_ref!r} is not of type 'string', 'integer'")
    flavor_ref = str(flavor_ref)
    devices = parse_block_devices(call, body)
    sgs_raw = body.get("security_groups")
    sgs: list[str] | None = None
    if sgs_raw is not None:
        if not isinstance(sgs_raw, list) or not all(isinstance(x, dict) and isinstance(x.get("name"), str)
                                                    for x in sgs_raw):
            raise invalid("security_groups", sgs_raw, "each item needs a 'name' string")
        sgs = [x["name"] for x in sgs_raw]
    key_name = body.get("key_name")
    if key_name is not None and not isinstance(key_name, str):
        raise invalid("key_name", key_name, f"{key_name!r} is not of type 'string'")
    zone = body.get("availability_zone")
    if zone is not None and not isinstance(zone, str):
        raise invalid("availability_zone", zone, f"{zone!r} is not of type 'string'")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255
                                                 and len(v) <= 255 for k, v in metadata.items()):
        raise invalid("metadata", metadata, "metadata is a map of strings (keys 1-255, values <= 255)")
    if len(metadata) > 128:
        raise ApiError(403, "Quota exceeded for metadata_items: Requested "
                            f"{len(metadata)}, but already used 0 of 128 metadata_items")
    user_data = body.get("user_data")
    if user_data is not None and not isinstance(user_data, str):
        raise invalid("user_data", user_data, "not of type 'string'")
    description = None
    if mv(call, 2, 19) and "description" in body:
        description = body["description"]
        if description is not None and (not isinstance(description, str) or len(description) > 255):
            raise invalid("description", description, "a string of at most 255 characters or null")
    tags = body.get("tags") if mv(call, 2, 52) else None
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)
                             or len(tags) > 50):
        raise invalid("tags", tags, "a list of at most 50 non-empty strings")
    disk_config = body.get("OS-DCF:diskConfig", "MANUAL")
    if disk_config not in ("MANUAL", "AUTO"):
        raise invalid("OS-DCF:diskConfig", disk_config, "'MANUAL' or 'AUTO'")
    min_count = _int_field(body, "min_count", 1)
    max_count = _int_field(body, "max_count", min_count)
    networks = _parse_networks(call, body.get("networks"))
    access4 = _access_ip(body, "accessIPv4", 4) or ""
    access6 = _access_ip(body, "accessIPv6", 6) or ""
    password = body.get("adminPass")
    if password is not None and not isinstance(password, str):
        raise invalid("adminPass", password, f"{password!r} is not of type 'string'")
    _check_flavor_access(call, flavor_ref)
    made = nova.create_servers(
        call.project_id, call.token.user_id, name=name or "", image_ref=image_ref or None, flavor_ref=flavor_ref,
        networks=networks, security_groups=sgs, key_name=key_name, zone=zone, user_data=user_data,
        metadata=metadata, min_count=min_count, max_count=max_count, description=description, tags=tags,
        access_ipv4=str(access4), access_ipv6=str(access6), config_drive=bool(body.get("config_drive")),
        disk_config=disk_config, devices=devices, group_id=scheduler_group(call), host=_target_host(call, body),
        host_hints=host_hints(call),
        zone_check=lambda z: call.twin.faults.zone_check(call, z))
    for s in made:
        nova.record_action(s, "create", call.request_id if s is made[0] else f"{call.request_id}-{s.launch_index}",
                           call.token.user_id)
    first = made[0]
    view = View(call)
    if body.get("return_reservation_id") is True:
        return wire.json_response(202, {"reservation_id": first.reservation_id})
    out = {"id": first.id, "links": view.links("servers", first.id), "OS-DCF:diskConfig": first.disk_config,
           "security_groups": [{"name": n} for n in (sgs or ["default"])],
           "adminPass": password or "".join(secrets.choice(PASS_CHARS) for _ in range(12))}
    return wire.json_response(202, {"server": out}, {"Location": f"{view.base}/servers/{first.id}"})


async def update_server(call: Call) -> web.Response:
    body = call.body("server")
    s = server_of(call)
    name = _str_field(body, "name", allow_empty=False)
    description: Any = ...
    if "description" in body:
        if not mv(call, 2, 19):
            raise invalid("server", body, "Additional properties are not allowed ('description' was unexpected)")
        description = body["description"]
        if description is not None and (not isinstance(description, str) or len(description) > 255):
            raise invalid("description", description, "a string of at most 255 characters or null")
    a4 = _access_ip(body, "accessIPv4", 4)
    a6 = _access_ip(body, "accessIPv6", 6)
    disk_config = body.get("OS-DCF:diskConfig")
    if disk_config is not None:
        if disk_config not in ("MANUAL", "AUTO"):
            raise invalid("OS-DCF:diskConfig", disk_config, "'MANUAL' or 'AUTO'")
        s.disk_config = disk_config
    nova_of(call).update_server(s, name=name, description=description, access_ipv4=a4, access_ipv6=a6)
    return wire.json_response(200, {"server": View(call).changed(s)})


async def delete_server(call: Call) -> web.Response:
    s = server_of(call)
    call.twin.faults.zone_check(call, s.availability_zone)
    nova_of(call).delete_server(s)
    assert call.token is not None
    nova_of(call).record_action(s, "delete", call.request_id, call.token.user_id, done=True)
    return wire.json_response(204)


def floating_ip_action(call: Call, s: Server, name: str, arg: Any) -> None:
    if mv(call, 2, 44):
        raise ApiError(404, "The resource could not be found.")
    if not isinstance(arg, dict) or not isinstance(arg.get("address"), str):
        raise invalid(name, arg, "'address' is a required property")
    neutron = call.region.neutron  # type: ignore[union-attr]
    fip = next((f for f in neutron.owned("floatingips", call.project_id)
                if f.floating_ip_address == arg["address"]), None)
    if fip is None:
        raise ApiError(404, f"floating IP not found for address {arg['address']}")
    ports = neutron.ports_of_device(s.id)
    if name == "removeFloatingIp":
        if fip.port_id not in {p.id for p in ports}:
            raise ApiError(409, f"Floating IP {arg['address']} is not associated with instance {s.id}.")
        neutron.update_floatingip(call.project_id, fip.id, {"port_id": None})
        return
    if not ports:
        raise ApiError(400, f"No nw_info cache associated with instance {s.id}")
    try:
        neutron.update_floatingip(call.project_id, fip.id, {"port_id": ports[0].id,
                                                            "fixed_ip_address": arg.get("fixed_address")})
    except ApiError as err:        # Nova reports Neutron's association conflicts as a bad request
        raise ApiError(400 if err.status == 409 else err.status, err.message) from None


def interface_doc(view: View, p: Any) -> dict[str, Any]:
    """One ``interfaceAttachment``: a port as Nova shows it."""
    item = {"port_state": p.status, "fixed_ips": [dict(ip) for ip in p.fixed_ips], "port_id": p.id,
            "net_id": p.network_id, "mac_addr": p.mac_address}
    if view.mv >= (2, 70):
        item["tag"] = None
    return item


async def server_interfaces(call: Call) -> web.Response:
    s = server_of(call)
    view = View(call)
    items = [interface_doc(view, p) for p in view.ports(s)]
    if "port_id" in call.params:
        found = next((i for i in items if i["port_id"] == call.params["port_id"]), None)
        if found is None:
            raise ApiError(404, f"Instance {s.id} is not attached to port {call.params['port_id']}.")
        return wire.json_response(200, {"interfaceAttachment": found})
    return wire.json_response(200, {"interfaceAttachments": items})


async def server_ips(call: Call) -> web.Response:
    s = server_of(call)
    view = View(call)
    addresses = view.addresses(view.ports(s))
    if "network" in call.params:
        label = call.params["network"]
        if label not in addresses:
            raise ApiError(404, "Instance is not a member of specified network")
        return wire.json_response(200, {label: addresses[label]})
    return wire.json_response(200, {"addresses": addresses})


async def server_metadata(call: Call) -> web.Response:
    s = server_of(call)
    return wire.json_response(200, {"metadata": dict(s.metadata)})


async def server_security_groups(call: Call) -> web.Response:
    s = server_of(call)
    view = View(call)
    ports = view.ports(s)
    ids: list[str] = []
    for p in ports:
        ids.extend(p.security_groups)
    if not ports:
        ids = list(s.security_groups)
    out = []
    sgs = view.neutron.security_groups
    for sid in dict.fromkeys(ids):
        sg = sgs.get(sid)
        if sg is None:
            continue
        out.append({"id": sg.id, "name": sg.name, "description": getattr(sg, "description", "") or "",
                    "tenant_id": sg.project_id, "rules": _nova_rules(view, sg)})
    return wire.json_response(200, {"security_groups": out})


# ---- flavors ----------------------------------------------------------------------------------------

# oslo's bool_from_string(strict=True), which Nova's is_public filter uses
_IS_PUBLIC = {**dict.fromkeys(("1", "t", "true", "on", "y", "yes"), True),
              **dict.fromkeys(("0", "f", "false", "off", "n", "no"), False)}


def _flavors(call: Call) -> list[Flavor]:
    q = call.query
    items = list(nova_of(call).flavors.values())
    raw = q.get("is_public")
    pid = call.project_id
    if not is_admin(call):     # a member sees public flavors and the private ones shared with it
        items = [f for f in items if f.is_public or pid in f.access]
    if raw is None:
        items = [f for f in items if f.is_public or pid in f.access]
    elif raw.strip().lower() != "none":
        want = _IS_PUBLIC.get(raw.strip().lower())
        if want is None:
            raise ApiError(400, f"Invalid is_public filter [{raw}]")
        items = [f for f in items if f.is_public is want or (want and pid in f.access)]
    for key, attr in (("minRam", "ram"), ("minDisk", "disk")):
        if key in q:
            try:
                n = int(q[key])
            except ValueError:
                raise ApiError(400, f"Invalid {key} filter [{q[key]}]") from None
            items = [f for f in items if getattr(f, attr) >= n]
    sort_key = q.get("sort_key", "flavorid")
    attr = {"flavorid": "id", "id": "id", "name": "name", "memory_mb": "ram", "ram": "ram", "vcpus": "vcpus",
            "root_gb": "disk", "disk": "disk"}.get(sort_key)
    if attr is None:
        raise ApiError(400, f"Invalid sort_key {sort_key}")
    reverse = q.get("sort_dir", "asc").lower() == "desc"
    if attr == "id":
        items.sort(key=lambda f: (0, int(f.id), "") if f.id.isdigit() else (1, 0, f.id), reverse=reverse)
    else:
        items.sort(key=lambda f: getattr(f, attr), reverse=reverse)
    return items


def _list_flavors(call: Call, detail: bool) -> web.Response:
    view = View(call)
    chunk, next_marker = _page(_flavors(call), call)
    body: dict[str, Any] = {"flavors": [view.flavor(f, detail=detail) for f in chunk]}
    if next_marker:
        path = "/flavors/detail" if detail else "/flavors"
        body["flavors_links"] = [{"rel": "next", "href": f"{view.base}{path}?marker={next_marker}"
                                  + (f"&limit={call.query['limit']}" if "limit" in call.query else "")}]
    return wire.json_response(200, body)


async def list_flavors(call: Call) -> web.Response:
    return _list_flavors(call, False)


async def list_flavors_detail(call: Call) -> web.Response:
    return _list_flavors(call, True)


def flavor_of(call: Call) -> Flavor:
    """The flavor of the URL if the caller may see it (a private one needs access, or admin)."""
    nova = nova_of(call)
    f = nova.get_flavor(call.params["id"])
    if not nova.flavor_visible(f, call.project_id, is_admin(call)):
        raise ApiError(404, f"Flavor {f.id} could not be found.")
    return f


async def get_flavor(call: Call) -> web.Response:
    f = flavor_of(call)
    return wire.json_response(200, {"flavor": View(call).flavor(f)})


async def flavor_extra_specs(call: Call) -> web.Response:
    f = flavor_of(call)
    key = call.params.get("key")
    if key is not None:
        if key not in f.extra_specs:
            raise ApiError(404, f"Flavor {f.id} has no extra specs with key {key}.")
        return wire.json_response(200, {key: f.extra_specs[key]})
    return wire.json_response(200, {"extra_specs": dict(f.extra_specs)})


# ---- keypairs ---------------------------------------------------------------------------------------

def _kp_user(call: Call) -> str:
    assert call.token is not None
    user = call.query.get("user_id") if mv(call, 2, 10) else None
    return user or call.token.user_id


def _kp_doc(call: Call, kp: Keypair, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint}
    if mv(call, 2, 2):
        out["type"] = kp.type
    if full:
        out.update({"user_id": kp.user_id, "id": kp.seq, "created_at": usg(kp.created_at), "deleted": False,
                    "deleted_at": None, "updated_at": None})
    return out


async def list_keypairs(call: Call) -> web.Response:
    items = nova_of(call).keypairs_of(_kp_user(call), call.project_id)
    body: dict[str, Any] = {}
    if mv(call, 2, 35):
        chunk: list[Any] = items
        marker = call.query.get("marker")
        if marker:
            names = [k.name for k in items]
            if marker not in names:
                raise ApiError(400, f"marker [{marker}] not found")
            chunk = items[names.index(marker) + 1:]
        limit = call.query.get("limit")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise ApiError(400, "limit param must be an integer") from None
            if len(chunk) > n:
                chunk = chunk[:n]
                body["keypairs_links"] = [{"rel": "next", "href": f"{call.base_url()}/os-keypairs?limit={n}"
                                                                   f"&marker={chunk[-1].name}"}]
        items = chunk
    body["keypairs"] = [{"keypair": _kp_doc(call, kp, full=False)} for kp in items]
    return wire.json_response(200, body)


async def get_keypair(call: Call) -> web.Response:
    kp = nova_of(call).get_keypair(_kp_user(call), call.project_id, call.params["name"])
    return wire.json_response(200, {"keypair": _kp_doc(call, kp, full=True)})


async def create_keypair(call: Call) -> web.Response:
    body = call.body("keypair")
    assert call.token is not None
    name = body.get("name")
    if not isinstance(name, str):
        raise invalid("keypair", body, "'name' is a required property")
    rx = _KEYPAIR_NAME_292 if mv(call, 2, 92) else _KEYPAIR_NAME
    if not 1 <= len(name) <= 255 or not rx.match(name):
        raise ApiError(400, "Keypair data is invalid: Keypair name contains unsafe characters")
    key_type = "ssh"
    if mv(call, 2, 2) and "type" in body:
        key_type = body["type"]
        if key_type not in ("ssh", "x509"):
            raise invalid("type", key_type, f"{key_type!r} is not one of ['ssh', 'x509']")
    user_id = call.token.user_id
    if mv(call, 2, 10) and body.get("user_id"):
        if not isinstance(body["user_id"], str):
            raise invalid("user_id", body["user_id"], "not of type 'string'")
        user_id = body["user_id"]
    public_key = body.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise invalid("public_key", public_key, "not of type 'string'")
    nova = nova_of(call)
    private_key = None
    if public_key is None:
        if mv(call, 2, 92):
            raise invalid("keypair", body, "'public_key' is a required property")
        nova.create_keypair_check(user_id, call.project_id, name)
        if key_type == "x509":
            private_key, public_key = await asyncio.to_thread(generate_x509, user_id, call.project_id)
        else:
            private_key, public_key = await asyncio.to_thread(generate_keypair)
    kp = nova.create_keypair(user_id, call.project_id, name, public_key, key_type)
    out = _kp_doc(call, kp, full=False)
    out["user_id"] = kp.user_id
    if private_key is not None:
        out["private_key"] = private_key
    return wire.json_response(201 if mv(call, 2, 2) else 200, {"keypair": out})


async def delete_keypair(call: Call) -> web.Response:
    nova_of(call).delete_keypair(_kp_user(call), call.project_id, call.params["name"])
    return wire.json_response(204 if mv(call, 2, 2) else 202)


# ---- zones, limits, quotas --------------------------------------------------------------------------

# ---- routes -----------------------------------------------------------------------------------------

def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "GET", "/", versions, "compute:version:list", auth=False)
    r.add(s, "GET", "/v2.1", version, "compute:version:get", auth=False)
    r.add(s, "GET", "/v2", version_v20, "compute:version:get", auth=False)
    r.add(s, "GET", "/v2.1/servers", list_servers, "compute:server:list")
    r.add(s, "GET", "/v2.1/servers/detail", list_servers_detail, "compute:server:list")
    r.add(s, "POST", "/v2.1/servers", create_server, "compute:server:create")
    r.add(s, "GET", "/v2.1/servers/{id}", get_server, "compute:server:get")
    r.add(s, "PUT", "/v2.1/servers/{id}", update_server, "compute:server:update")
    r.add(s, "DELETE", "/v2.1/servers/{id}", delete_server, "compute:server:delete")
    r.add(s, "GET", "/v2.1/servers/{id}/os-interface", server_interfaces, "compute:interface:list")
    r.add(s, "GET", "/v2.1/servers/{id}/os-interface/{port_id}", server_interfaces, "compute:interface:get")
    r.add(s, "GET", "/v2.1/servers/{id}/ips", server_ips, "compute:server_ip:list")
    r.add(s, "GET", "/v2.1/servers/{id}/ips/{network}", server_ips, "compute:server_ip:get")
    r.add(s, "GET", "/v2.1/servers/{id}/metadata", server_metadata, "compute:server_metadata:list")
    r.add(s, "GET", "/v2.1/servers/{id}/os-security-groups", server_security_groups,
          "compute:server_security_group:list")
    r.add(s, "GET", "/v2.1/flavors", list_flavors, "compute:flavor:list")
    r.add(s, "GET", "/v2.1/flavors/detail", list_flavors_detail, "compute:flavor:list")
    r.add(s, "GET", "/v2.1/flavors/{id}", get_flavor, "compute:flavor:get")
    r.add(s, "GET", "/v2.1/flavors/{id}/os-extra_specs", flavor_extra_specs, "compute:flavor_extra_specs:list")
    r.add(s, "GET", "/v2.1/flavors/{id}/os-extra_specs/{key}", flavor_extra_specs, "compute:flavor_extra_specs:get")
    r.add(s, "GET", "/v2.1/os-keypairs", list_keypairs, "compute:keypair:list")
    r.add(s, "POST", "/v2.1/os-keypairs", create_keypair, "compute:keypair:create")
    r.add(s, "GET", "/v2.1/os-keypairs/{name}", get_keypair, "compute:keypair:get")
    r.add(s, "DELETE", "/v2.1/os-keypairs/{name}", delete_keypair, "compute:keypair:delete")

