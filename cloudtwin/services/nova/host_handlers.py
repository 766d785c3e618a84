"""Nova v2.1 wire format of the operator APIs over compute hosts: ``os-hypervisors``, ``os-services``,
``os-hosts``, ``os-aggregates`` and ``os-availability-zone``. All but the zone list are admin-only.

Microversions: 2.11 ``forced_down``, 2.28 ``cpu_info`` as an object, 2.41 aggregate ``uuid``, 2.43
removes ``os-hosts``, 2.53 UUID ids (services, hypervisors) and the query-based hypervisor search,
2.88 hypervisors lose the capacity fields (they live in Placement) and statistics.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import invalid, mv, nova_of, usg
from cloudtwin.services.nova.hosts import CONTROLLER, INTERNAL_ZONE, Aggregate, ComputeHost, HostState

_CPU_INFO = {"arch": "x86_64", "model": "Nehalem", "vendor": "Intel", "features": ["pge", "clflush"],
             "topology": {"cores": 1, "threads": 1, "sockets": 4}}
_GONE = "The resource could not be found."


def _hosts(call: Call) -> HostState:
    return nova_of(call).hosts


# ---- hypervisors ------------------------------------------------------------------------------------------

def _usage(call: Call, h: ComputeHost) -> dict[str, int]:
    servers = [s for s in nova_of(call).servers.values() if s.host == h.name]
    return {"vcpus_used": sum(s.vcpus for s in servers), "memory_mb_used": 512 + sum(s.ram for s in servers),
            "local_gb_used": sum(s.disk for s in servers), "running_vms": len(servers)}


def _hv_summary(call: Call, h: ComputeHost) -> dict[str, Any]:
    return {"id": h.uuid if mv(call, 2, 53) else h.seq, "hypervisor_hostname": h.name,
            "state": "up" if h.up else "down", "status": "disabled" if h.disabled else "enabled"}


def _hv_detail(call: Call, h: ComputeHost) -> dict[str, Any]:
    out = _hv_summary(call, h)
    spec = _hosts(call).spec
    out.update({"hypervisor_type": spec.hypervisor_type, "hypervisor_version": spec.hypervisor_version,
                "host_ip": h.host_ip,
                "service": {"host": h.name, "id": h.service_uuid if mv(call, 2, 53) else h.seq,
                            "disabled_reason": h.disabled_reason}})
    if mv(call, 2, 88):
        out["uptime"] = _uptime(h)
        return out
    u = _usage(call, h)
    out.update({"vcpus": h.vcpus, "memory_mb": h.memory_mb, "local_gb": h.local_gb, **u,
                "free_ram_mb": h.memory_mb - u["memory_mb_used"], "free_disk_gb": h.local_gb - u["local_gb_used"],
                "current_workload": 0, "disk_available_least": h.local_gb - u["local_gb_used"],
                "cpu_info": _CPU_INFO if mv(call, 2, 28) else json.dumps(_CPU_INFO)})
    return out


def _uptime(h: ComputeHost) -> str:
    import time
    up = max(0, int(time.time() - h.started_at))
    days, rest = divmod(up, 86400)
    return (time.strftime(" %H:%M:%S", time.gmtime()) + f" up {days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d},"
            "  1 user,  load average: 0.10, 0.08, 0.05")


def _servers_of(call: Call, h: ComputeHost) -> list[dict[str, str]]:
    return [{"uuid": s.id, "name": f"instance-{s.id[:8]}"} for s in nova_of(call).servers.values()
            if s.host == h.name]


def _hv_list(call: Call, detail: bool) -> web.Response:
    hosts = _hosts(call)
    items = sorted(hosts.hosts.values(), key=lambda h: h.seq)
    q = call.query
    if mv(call, 2, 53):
        pattern = q.get("hypervisor_hostname_pattern")
        if pattern is not None:
            items = [h for h in items if pattern in h.name]
            if not items:
                raise ApiError(404, f"Hypervisor with hostname pattern {pattern} could not be found.")
        with_servers = wire.truthy(q.get("with_servers")) if "with_servers" in q else False
        if "with_servers" in q and with_servers is None:
            raise invalid("with_servers", q.get("with_servers"), "not a boolean")
    else:
        with_servers = False
    body: dict[str, Any] = {}
    if mv(call, 2, 33):
        marker = q.get("marker")
        if marker is not None:
            ids = [h.uuid if mv(call, 2, 53) else str(h.seq) for h in items]
            if marker not in ids:
                raise ApiError(400, f"marker [{marker}] not found")
            items = items[ids.index(marker) + 1:]
        if "limit" in q:
            try:
                n = int(q["limit"])
            except ValueError:
                raise invalid("limit", q["limit"], "not an integer") from None
            if n < 0:
                raise invalid("limit", n, "must be >= 0")
            if len(items) > n:
                items = items[:n]
                last = items[-1].uuid if mv(call, 2, 53) else items[-1].seq if items else ""
                path = "/os-hypervisors/detail" if detail else "/os-hypervisors"
                body["hypervisors_links"] = [{"rel": "next",
                                              "href": f"{call.base_url()}{path}?limit={n}&marker={last}"}]
    out = []
    for h in items:
        doc = _hv_detail(call, h) if detail else _hv_summary(call, h)
        if detail and mv(call, 2, 88):
            doc.pop("uptime", None)
        if with_servers:
            servers = _servers_of(call, h)
            if servers:
                doc["servers"] = servers
        out.append(doc)
    body["hypervisors"] = out
    return wire.json_response(200, body)


async def list_hypervisors(call: Call) -> web.Response:
    return _hv_list(call, False)


async def list_hypervisors_detail(call: Call) -> web.Response:
    return _hv_list(call, True)


def _hypervisor(call: Call) -> ComputeHost:
    hid = call.params["id"]
    hosts = _hosts(call)
    if mv(call, 2, 53):
        h = next((x for x in hosts.hosts.values() if x.uuid == hid), None)
        if h is None:
            raise ApiError(400 if not _is_uuid(hid) else 404,
                           f"Invalid uuid {hid}" if not _is_uuid(hid) else f"Hypervisor with ID {hid} could not be found.")
        return h
    return hosts.by_hypervisor_id(hid)


def _is_uuid(text: str) -> bool:
    import uuid
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def get_hypervisor(call: Call) -> web.Response:
    h = _hypervisor(call)
    doc = _hv_detail(call, h)
    if mv(call, 2, 53) and "with_servers" in call.query and wire.truthy(call.query.get("with_servers")):
        servers = _servers_of(call, h)
        if servers:
            doc["servers"] = servers
    return wire.json_response(200, {"hypervisor": doc})


async def hypervisor_uptime(call: Call) -> web.Response:
    if mv(call, 2, 88):
        raise ApiError(404, _GONE)
    h = _hypervisor(call)
    doc = _hv_summary(call, h)
    doc["uptime"] = _uptime(h)
    return wire.json_response(200, {"hypervisor": doc})


async def hypervisor_statistics(call: Call) -> web.Response:
    hosts = _hosts(call)
    if mv(call, 2, 88):
        raise ApiError(404, _GONE)
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms",
            "free_ram_mb", "free_disk_gb", "current_workload", "disk_available_least")
    total = dict.fromkeys(keys, 0)
    for h in hosts.hosts.values():
        d = _hv_detail(call, h)
        for k in keys:
            total[k] += d[k]
    return wire.json_response(200, {"hypervisor_statistics": {"count": len(hosts.hosts), **total}})


def _legacy_matches(call: Call) -> list[ComputeHost]:
    if mv(call, 2, 53):
        raise ApiError(404, _GONE)
    pattern = call.params["pattern"]
    found = [h for h in sorted(_hosts(call).hosts.values(), key=lambda h: h.seq) if pattern in h.name]
    if not found:
        raise ApiError(404, f"No hypervisor matching '{pattern}' could be found.")
    return found


async def search_hypervisors(call: Call) -> web.Response:
    return wire.json_response(200, {"hypervisors": [_hv_summary(call, h) for h in _legacy_matches(call)]})


async def hypervisor_servers(call: Call) -> web.Response:
    out = []
    for h in _legacy_matches(call):
        doc = _hv_summary(call, h)
        servers = _servers_of(call, h)
        if servers:
            doc["servers"] = servers
        out.append(doc)
    return wire.json_response(200, {"hypervisors": out})


# ---- services ------------------------------------------------------------------------------------------

def _service_docs(call: Call) -> list[tuple[Any, dict[str, Any]]]:
    hosts = _hosts(call)
    created = usg(call.region.cloud.created_at) if call.region else None   # type: ignore[union-attr]
    out: list[tuple[Any, dict[str, Any]]] = []
    new_ids = mv(call, 2, 53)
    for svc in hosts.control:
        out.append((svc, {"id": svc.uuid if new_ids else svc.seq, "binary": svc.binary, "host": CONTROLLER,
                          "zone": INTERNAL_ZONE}))
    for h in sorted(hosts.hosts.values(), key=lambda h: h.seq):
        out.append((h, {"id": h.service_uuid if new_ids else h.seq, "binary": "nova-compute", "host": h.name,
                        "zone": hosts.zone_of(h.name)}))
    for obj, doc in out:
        doc.update({"status": "disabled" if obj.disabled else "enabled",
                    "state": "down" if obj.forced_down else "up", "updated_at": usg(obj.updated_at) or created,
                    "disabled_reason": obj.disabled_reason})
        if mv(call, 2, 11):
            doc["forced_down"] = obj.forced_down
    return out


async def list_services(call: Call) -> web.Response:
    docs = [d for _, d in _service_docs(call)]
    for key in ("host", "binary"):
        if key in call.query:
            docs = [d for d in docs if d[key] == call.query[key]]
    return wire.json_response(200, {"services": docs})


def _find_service(call: Call, host: Any, binary: Any) -> tuple[Any, dict[str, Any]]:
    for obj, doc in _service_docs(call):
        if doc["host"] == host and doc["binary"] == binary:
            return obj, doc
    raise ApiError(404, f"Service {binary} on host {host} could not be found." if host in _hosts(call).hosts
                   or host == CONTROLLER else f"Host {host} could not be found.")


def _set(obj: Any, *, disabled: bool | None = None, reason: Any = ..., forced_down: bool | None = None) -> None:
    import time
    if disabled is not None:
        obj.disabled = disabled
        if not disabled:
            obj.disabled_reason = None
    if reason is not ...:
        obj.disabled_reason = reason
    if forced_down is not None:
        obj.forced_down = forced_down
    obj.updated_at = time.time()


async def update_service_legacy(call: Call) -> web.Response:
    """``PUT /os-services/{enable,disable,disable-log-reason,force-down}`` (before 2.53)."""
    verb = call.params["action"]
    if mv(call, 2, 53) or verb not in ("enable", "disable", "disable-log-reason", "force-down"):
        raise ApiError(404, _GONE)
    if verb == "force-down" and not mv(call, 2, 11):
        raise ApiError(404, _GONE)
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not isinstance(body.get("binary"), str):
        raise invalid("host", body, "'host' and 'binary' are required strings")
    if body["binary"] != "nova-compute" and verb != "force-down":
        raise ApiError(400, f"Updating a {body['binary']} service is not supported. Only nova-compute services "
                            "can be updated.")
    obj, _ = _find_service(call, body["host"], body["binary"])
    out: dict[str, Any] = {"host": body["host"], "binary": body["binary"]}
    if verb == "enable":
        _set(obj, disabled=False)
        out["status"] = "enabled"
    elif verb == "disable":
        _set(obj, disabled=True)
        out["status"] = "disabled"
    elif verb == "disable-log-reason":
        reason = body.get("disabled_reason")
        if not isinstance(reason, str) or not 1 <= len(reason) <= 255:
            raise ApiError(400, "Missing disabled reason field")
        _set(obj, disabled=True, reason=reason)
        out.update({"status": "disabled", "disabled_reason": reason})
    else:
        forced = wire.boolean(body.get("forced_down"))
        if forced is None:
            raise invalid("forced_down", body.get("forced_down"), "not a boolean")
        _set(obj, forced_down=forced)
        out["forced_down"] = forced
    return wire.json_response(200, {"service": out})


def _service_by_uuid(call: Call) -> tuple[Any, dict[str, Any]]:
    sid = call.params["action"]
    for obj, doc in _service_docs(call):
        if str(doc["id"]) == sid:
            return obj, doc
    if mv(call, 2, 53) and not _is_uuid(sid):
        raise ApiError(400, f"Invalid uuid {sid}")
    raise ApiError(404, f"Service {sid} could not be found.")


async def update_service(call: Call) -> web.Response:
    if not mv(call, 2, 53):
        return await update_service_legacy(call)
    body = call.body()
    obj, doc = _service_by_uuid(call)
    if not isinstance(body, dict) or not body or set(body) - {"status", "disabled_reason", "forced_down"}:
        raise invalid("service", body, "one of status, disabled_reason, forced_down")
    if doc["binary"] != "nova-compute":
        raise ApiError(400, f"Updating a {doc['binary']} service is not supported. Only nova-compute services "
                            "can be updated.")
    status = body.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise invalid("status", status, "'enabled' or 'disabled'")
    reason = body.get("disabled_reason", ...)
    if reason is not ... and status != "disabled":
        raise ApiError(400, "Specifying 'disabled_reason' with status 'enabled' is invalid.")
    if reason is not ... and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
        raise invalid("disabled_reason", reason, "a string of 1 to 255 characters")
    forced = body.get("forced_down")
    if forced is not None and not isinstance(forced, bool):
        raise invalid("forced_down", forced, "not a boolean")
    _set(obj, disabled=None if status is None else status == "disabled", reason=reason, forced_down=forced)
    _, doc = _service_by_uuid(call)
    return wire.json_response(200, {"service": doc})


async def delete_service(call: Call) -> web.Response:
    obj, doc = _service_by_uuid(call)
    if isinstance(obj, ComputeHost):
        if any(s.host == obj.name for s in nova_of(call).servers.values()):
            raise ApiError(409, f"Unable to delete compute service that is hosting instances. Migrate or delete "
                                f"the instances first.")
        hosts = _hosts(call)
        for a in list(hosts.aggregates_of(obj.name)):
            a.hosts.remove(obj.name)
        del hosts.hosts[obj.name]
    else:
        _hosts(call).control.remove(obj)
    return wire.json_response(204)


# ---- os-hosts (before 2.43) ---------------------------------------------------------------------------------

def _legacy_hosts(call: Call) -> HostState:
    if mv(call, 2, 43):
        raise ApiError(404, _GONE)
    return _hosts(call)


async def list_hosts(call: Call) -> web.Response:
    hosts = _legacy_hosts(call)
    out = [{"host_name": CONTROLLER, "service": svc.binary.split("-", 1)[1], "zone": INTERNAL_ZONE}
           for svc in hosts.control]
    out += [{"host_name": h.name, "service": "compute", "zone": hosts.zone_of(h.name)}
            for h in sorted(hosts.hosts.values(), key=lambda h: h.seq)]
    if call.query.get("zone"):      # a blank zone filters nothing, as in Nova
        out = [h for h in out if h["zone"] == call.query["zone"]]
    return wire.json_response(200, {"hosts": out})


async def get_host(call: Call) -> web.Response:
    hosts = _legacy_hosts(call)
    h = hosts.get(call.params["host"])
    servers = [s for s in nova_of(call).servers.values() if s.host == h.name]

    def row(project: str, cpu: int, mem: int, disk: int) -> dict[str, Any]:
        return {"resource": {"host": h.name, "project": project, "cpu": cpu, "memory_mb": mem, "disk_gb": disk}}

    used = (sum(s.vcpus for s in servers), sum(s.ram for s in servers), sum(s.disk for s in servers))
    out = [row("(total)", h.vcpus, h.memory_mb, h.local_gb), row("(used_now)", *used), row("(used_max)", *used)]
    for pid in sorted({s.project_id for s in servers}):
        mine = [s for s in servers if s.project_id == pid]
        out.append(row(pid, sum(s.vcpus for s in mine), sum(s.ram for s in mine), sum(s.disk for s in mine)))
    return wire.json_response(200, {"host": out})


async def update_host(call: Call) -> web.Response:
    hosts = _legacy_hosts(call)
    body = call.body()
    if not isinstance(body, dict) or not body or set(body) - {"status", "maintenance_mode"}:
        raise invalid("host", body, "'status' and/or 'maintenance_mode'")
    for key in body:
        if body[key] not in ("enable", "disable"):
            raise invalid(key, body[key], "'enable' or 'disable'")
    h = hosts.get(call.params["host"])
    out: dict[str, Any] = {"host": h.name}
    if "maintenance_mode" in body:
        raise ApiError(501, "Virt driver does not implement host maintenance mode.")
    _set(h, disabled=body["status"] == "disable")
    out["status"] = "disabled" if h.disabled else "enabled"
    return wire.json_response(200, out)


async def host_power_action(call: Call) -> web.Response:
    hosts = _legacy_hosts(call)
    hosts.get(call.params["host"])
    raise ApiError(501, "Virt driver does not implement host power management.")


# ---- aggregates --------------------------------------------------------------------------------------------

def _agg_doc(call: Call, a: Aggregate, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": a.seq, "name": a.name, "availability_zone": a.availability_zone,
                           "created_at": wire.iso(a.created_at), "updated_at": wire.iso(a.updated_at)
                           if a.revision_number else None, "deleted": False, "deleted_at": None}
    if full:
        out["hosts"] = list(a.hosts)
        out["metadata"] = dict(a.metadata)
    if mv(call, 2, 41):
        out["uuid"] = a.id
    return out


def _name(value: Any, field: str, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or value != value.strip():
        raise invalid(field, value, "a string of 1 to 255 characters without leading or trailing spaces")
    return value


async def list_aggregates(call: Call) -> web.Response:
    hosts = _hosts(call)
    return wire.json_response(200, {"aggregates": [_agg_doc(call, a) for a in
                                                   sorted(hosts.aggregates.values(), key=lambda a: a.seq)]})


async def create_aggregate(call: Call) -> web.Response:
    hosts = _hosts(call)
    body = call.body("aggregate")
    if set(body) - {"name", "availability_zone"}:
        raise invalid("aggregate", body, "Additional properties are not allowed")
    name = _name(body.get("name"), "name", required=True)
    zone = _name(body.get("availability_zone"), "availability_zone", required=False)
    assert name is not None
    a = hosts.create_aggregate(name, zone)
    return wire.json_response(200, {"aggregate": _agg_doc(call, a, full=False)})


async def get_aggregate(call: Call) -> web.Response:
    hosts = _hosts(call)
    return wire.json_response(200, {"aggregate": _agg_doc(call, hosts.get_aggregate(call.params["id"]))})


async def update_aggregate(call: Call) -> web.Response:
    hosts = _hosts(call)
    body = call.body("aggregate")
    if not body or set(body) - {"name", "availability_zone"}:
        raise invalid("aggregate", body, "'name' and/or 'availability_zone'")
    a = hosts.get_aggregate(call.params["id"])
    name = _name(body.get("name"), "name", required=False)
    zone: Any = ...
    if "availability_zone" in body:
        zone = _name(body["availability_zone"], "availability_zone", required=False)
    hosts.update_aggregate(a, name, zone)
    return wire.json_response(200, {"aggregate": _agg_doc(call, a)})


async def delete_aggregate(call: Call) -> web.Response:
    hosts = _hosts(call)
    hosts.delete_aggregate(hosts.get_aggregate(call.params["id"]))
    return wire.json_response(200)


async def aggregate_action(call: Call) -> web.Response:
    hosts = _hosts(call)
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    a = hosts.get_aggregate(call.params["id"])
    if name in ("add_host", "remove_host"):
        if not isinstance(arg, dict) or set(arg) != {"host"} or not isinstance(arg["host"], str):
            raise invalid(name, arg, "'host' is a required property")
        (hosts.add_host if name == "add_host" else hosts.remove_host)(a, arg["host"])
    elif name == "set_metadata":
        md = arg.get("metadata") if isinstance(arg, dict) else None
        if not isinstance(md, dict) or not all(isinstance(k, str) and 1 <= len(k) <= 255 and
                                               (v is None or isinstance(v, str) and len(v) <= 255)
                                               for k, v in md.items()):
            raise invalid("metadata", md, "a map of strings (or null to remove a key)")
        hosts.set_metadata(a, md)
    else:
        raise ApiError(400, f"There is no such action: {name}")
    return wire.json_response(200, {"aggregate": _agg_doc(call, a)})


# ---- availability zones --------------------------------------------------------------------------------------

def _zone_available(call: Call, zone: str) -> bool:
    try:
        call.twin.faults.zone_check(call, zone)
    except ApiError:
        return False
    return any(not h.disabled for h in _hosts(call).hosts_in(zone))


async def availability_zones(call: Call) -> web.Response:
    hosts = _hosts(call)
    detail = call.route.pattern.endswith("/detail")
    out = []
    for z in hosts.zones():
        members = hosts.hosts_in(z)
        if not members:
            continue
        ok = _zone_available(call, z)
        item: dict[str, Any] = {"zoneName": z, "zoneState": {"available": ok}, "hosts": None}
        if detail:
            item["hosts"] = {h.name: {"nova-compute": {"available": not h.disabled and h.up, "active": not h.disabled,
                                                       "updated_at": usg(h.updated_at)}} for h in members}
        out.append(item)
    if detail:
        out.insert(0, {"zoneName": INTERNAL_ZONE, "zoneState": {"available": True},
                       "hosts": {CONTROLLER: {svc.binary: {"available": not svc.disabled, "active": not svc.disabled,
                                                           "updated_at": usg(svc.updated_at)}
                                              for svc in hosts.control}}})
    return wire.json_response(200, {"availabilityZoneInfo": out})


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "GET", "/v2.1/os-hypervisors", list_hypervisors, "compute:hypervisor:list")
    r.add(s, "GET", "/v2.1/os-hypervisors/detail", list_hypervisors_detail, "compute:hypervisor:list")
    r.add(s, "GET", "/v2.1/os-hypervisors/statistics", hypervisor_statistics, "compute:hypervisor:statistics")
    r.add(s, "GET", "/v2.1/os-hypervisors/{id}", get_hypervisor, "compute:hypervisor:get")
    r.add(s, "GET", "/v2.1/os-hypervisors/{id}/uptime", hypervisor_uptime, "compute:hypervisor:uptime")
    r.add(s, "GET", "/v2.1/os-hypervisors/{pattern}/search", search_hypervisors, "compute:hypervisor:search")
    r.add(s, "GET", "/v2.1/os-hypervisors/{pattern}/servers", hypervisor_servers, "compute:hypervisor:servers")
    r.add(s, "GET", "/v2.1/os-services", list_services, "compute:service:list")
    r.add(s, "PUT", "/v2.1/os-services/{action}", update_service, "compute:service:update")
    r.add(s, "DELETE", "/v2.1/os-services/{action}", delete_service, "compute:service:delete")
    r.add(s, "GET", "/v2.1/os-hosts", list_hosts, "compute:host:list")
    r.add(s, "GET", "/v2.1/os-hosts/{host}", get_host, "compute:host:get")
    r.add(s, "PUT", "/v2.1/os-hosts/{host}", update_host, "compute:host:update")
    for verb in ("startup", "shutdown", "reboot"):
        r.add(s, "GET", f"/v2.1/os-hosts/{{host}}/{verb}", host_power_action, f"compute:host:{verb}")
    r.add(s, "GET", "/v2.1/os-aggregates", list_aggregates, "compute:aggregate:list")
    r.add(s, "POST", "/v2.1/os-aggregates", create_aggregate, "compute:aggregate:create")
    r.add(s, "GET", "/v2.1/os-aggregates/{id}", get_aggregate, "compute:aggregate:get")
    r.add(s, "PUT", "/v2.1/os-aggregates/{id}", update_aggregate, "compute:aggregate:update")
    r.add(s, "DELETE", "/v2.1/os-aggregates/{id}", delete_aggregate, "compute:aggregate:delete")
    r.add(s, "POST", "/v2.1/os-aggregates/{id}/action", aggregate_action, "compute:aggregate:action")
    r.add(s, "GET", "/v2.1/os-availability-zone", availability_zones, "compute:availability_zone:list")
    r.add(s, "GET", "/v2.1/os-availability-zone/detail", availability_zones, "compute:availability_zone:detail")
