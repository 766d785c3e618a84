"""Cinder v3 wire format for limits, quotas (per project and the ``default`` class), services, hosts,
scheduler pools, backend capabilities and user messages (3.3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.cinder import backends
from cloudtwin.policy import is_admin
from cloudtwin.services.cinder.handlers import _cinder, _mv, _project, _stamp
from cloudtwin.services.cinder.models import QUOTA_NAMES, CinderState
from cloudtwin.services.cinder.resources import Message

PER_TYPE = ("volumes", "gigabytes", "snapshots")


def _admin(call: Call) -> None:
    _project(call)
    if not is_admin(call):
        raise ApiError(403, "Policy doesn't allow this operation to be performed.")


async def limits(call: Call) -> web.Response:
    c = _cinder(call)
    pid = _project(call)
    u = c.usage(pid)

    def q(name: str) -> int:
        return c.quota(name, pid)
    return wire.json_response(200, {"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q("volumes"), "maxTotalSnapshots": q("snapshots"),
        "maxTotalVolumeGigabytes": q("gigabytes"), "maxTotalBackups": q("backups"),
        "maxTotalBackupGigabytes": q("backup_gigabytes"),
        "totalVolumesUsed": u["volumes"], "totalGigabytesUsed": u["gigabytes"],
        "totalSnapshotsUsed": u["snapshots"], "totalBackupsUsed": u["backups"],
        "totalBackupGigabytesUsed": u["backup_gigabytes"]}}})


def _per_type_usage(c: CinderState, pid: str, type_name: str) -> dict[str, int]:
    vols = [v for v in c.volumes_of(pid) if v.volume_type == type_name]
    snaps = [s for s in c.snapshots.values() if s.project_id == pid and s.volume_id in c.volumes
             and c.volumes[s.volume_id].volume_type == type_name]
    return {"volumes": len(vols), "gigabytes": sum(v.size for v in vols) + sum(s.size for s in snaps),
            "snapshots": len(snaps)}


def _target_project(call: Call) -> str:
    assert call.cloud is not None
    target = call.params["target"]
    proj = call.cloud.project(target)
    return proj.id if proj is not None else target


def quota_values(c: CinderState, pid: str | None) -> dict[str, tuple[int, int]]:
    """``{name: (limit, in_use)}`` for a project (None: the defaults)."""
    use = c.usage(pid) if pid else {}
    out = {name: (c.quota(name, pid) if pid else c.default_quota(name), use.get(name, 0)) for name in QUOTA_NAMES}
    for vt in c.types.values():
        per = _per_type_usage(c, pid, vt.name) if pid else {}
        for name in PER_TYPE:
            key = f"{name}_{vt.name}"
            limit = c.project_quotas.get(pid or "", {}).get(key, c.class_quotas.get(key, -1))
            out[key] = (limit, per.get(name, 0))
    return out


async def show_quota(call: Call) -> web.Response:
    pid = _project(call)
    target = _target_project(call)
    if target != pid and not is_admin(call):
        raise ApiError(403, "Policy doesn't allow volume_extension:quotas:show to be performed.")
    c = _cinder(call)
    defaults = call.route.pattern.endswith("/defaults")
    usage = not defaults and bool(wire.truthy(call.query.get("usage")))
    out: dict[str, Any] = {"id": target}
    for k, (limit, in_use) in quota_values(c, None if defaults else target).items():
        out[k] = {"limit": limit, "in_use": in_use, "reserved": 0, "allocated": 0} if usage else limit
    return wire.json_response(200, {"quota_set": out})


def _quota_body(call: Call, c: CinderState, known: set[str], key: str = "quota_set") -> dict[str, int]:
    body = call.body(key)
    bad = sorted(k for k in body if k not in known and k not in ("tenant_id", "id"))
    if bad:
        raise ApiError(400, f"Bad key(s) in quota set: {', '.join(bad)}")
    out = {}
    for k, v in body.items():
        if k in ("tenant_id", "id"):
            continue
        try:
            value = int(v) if not isinstance(v, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or value < -1:
            raise ApiError(400, f"Invalid input received: Quota limit {v} for {k} must be an integer >= -1.")
        out[k] = value
    return out


async def update_quota(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    target = _target_project(call)
    current = quota_values(c, target)
    values = _quota_body(call, c, set(current))
    for k, v in values.items():
        if v != -1 and v < current[k][1]:
            raise ApiError(400, f"Invalid input received: Quota limit {v} for {k} must be greater than or equal "
                                f"to already used and reserved {current[k][1]}.")
    c.project_quotas.setdefault(target, {}).update(values)
    return wire.json_response(200, {"quota_set": {k: lim for k, (lim, _) in quota_values(c, target).items()}})


async def delete_quota(call: Call) -> web.Response:
    _admin(call)
    _cinder(call).project_quotas.pop(_target_project(call), None)
    return wire.json_response(200)


async def show_quota_class(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    out: dict[str, Any] = {"id": call.params["name"]}
    out.update({k: lim for k, (lim, _) in quota_values(c, None).items()})
    return wire.json_response(200, {"quota_class_set": out})


async def update_quota_class(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    values = _quota_body(call, c, set(quota_values(c, None)), "quota_class_set")
    c.class_quotas.update(values)
    return wire.json_response(200, {"quota_class_set": {k: lim for k, (lim, _) in quota_values(c, None).items()}})


# ---- services, hosts, pools, capabilities
def _service_doc(call: Call, svc: backends.Service) -> dict[str, Any]:
    out: dict[str, Any] = {"binary": svc.binary, "host": svc.host, "zone": svc.zone,
                           "status": "disabled" if svc.disabled else "enabled", "state": "up",
                           "updated_at": _stamp(call.twin.started_at), "disabled_reason": svc.disabled_reason,
                           "frozen": svc.frozen, "replication_status": "not-capable",
                           "active_backend_id": None}
    if _mv(call, 3, 7):
        out["cluster"] = None
    if _mv(call, 3, 49) and svc.binary == "cinder-volume":
        out["backend_state"] = "up"
    return out


def _services(call: Call) -> list[backends.Service]:
    assert call.region is not None
    return backends.services(call.region, _cinder(call).services)


async def list_services(call: Call) -> web.Response:
    _admin(call)
    items = _services(call)
    q = call.query
    if "host" in q:
        items = [s for s in items if s.host == q["host"] or s.host.split("@")[0] == q["host"]]
    if "binary" in q:
        items = [s for s in items if s.binary == q["binary"]]
    return wire.json_response(200, {"services": [_service_doc(call, s) for s in items]})


async def service_action(call: Call) -> web.Response:
    _admin(call)
    action = call.params["action"]
    body = call.body()
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid input received: a JSON object is required.")
    host = body.get("host")
    if action in ("freeze", "thaw"):
        match = [s for s in _services(call) if s.host == host or s.host.split("@")[0] == host]
        if not match:
            raise ApiError(400, f"Invalid input received: Host {host} is not a known cinder-volume host.")
        for s in match:
            s.frozen = action == "freeze"
        return wire.json_response(200)
    if action not in ("enable", "disable", "disable-log-reason"):
        raise ApiError(404, f"Unknown action {action}")
    binary = body.get("binary")
    if action == "disable-log-reason" and not (isinstance(body.get("disabled_reason"), str)
                                               and body["disabled_reason"].strip()):
        raise ApiError(400, "Invalid input received: disabled_reason is required.")
    match = [s for s in _services(call) if s.host == host and s.binary == binary]
    if not match:
        raise ApiError(404, f"Service {binary} on host {host} could not be found.")
    svc = match[0]
    svc.disabled = action != "enable"
    svc.disabled_reason = body.get("disabled_reason") if action == "disable-log-reason" else None
    out = {"host": svc.host, "binary": svc.binary, "status": "disabled" if svc.disabled else "enabled",
           "disabled": svc.disabled}
    if svc.disabled_reason:
        out["disabled_reason"] = svc.disabled_reason
    return wire.json_response(200, out)


async def list_hosts(call: Call) -> web.Response:
    _admin(call)
    return wire.json_response(200, {"hosts": [
        {"service-status": "available", "service": s.binary, "zone": s.zone,
         "service-state": "disabled" if s.disabled else "enabled", "host_name": s.host,
         "last-update": _stamp(call.twin.started_at)} for s in _services(call)]})


async def show_host(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    host = call.params["host"]
    if not any(s.host == host for s in _services(call) if s.binary == "cinder-volume"):
        raise ApiError(404, f"Host {host} could not be found.")
    vols = [v for v in c.volumes.values() if (v.host or "").split("#")[0] == host]
    snaps = [s for s in c.snapshots.values() if s.volume_id in {v.id for v in vols}]
    rows = [{"resource": {"project": "(total)", "host": host, "volume_count": str(len(vols)),
                          "total_volume_gb": str(sum(v.size for v in vols)), "snapshot_count": str(len(snaps)),
                          "total_snapshot_gb": str(sum(s.size for s in snaps))}}]
    for pid in sorted({v.project_id for v in vols}):
        pv = [v for v in vols if v.project_id == pid]
        ps = [s for s in snaps if s.project_id == pid]
        rows.append({"resource": {"project": pid, "host": host, "volume_count": str(len(pv)),
                                  "total_volume_gb": str(sum(v.size for v in pv)), "snapshot_count": str(len(ps)),
                                  "total_snapshot_gb": str(sum(s.size for s in ps))}})
    return wire.json_response(200, {"host": rows})


def _pool_names(call: Call) -> list[tuple[str, str]]:
    assert call.region is not None
    return [(f"{backends.HOST}@{b}#{b}", b) for b in backends.backend_names(call.region)]


async def list_pools(call: Call) -> web.Response:
    _admin(call)
    detail = bool(wire.truthy(call.query.get("detail")))
    pools = []
    for name, backend in _pool_names(call):
        pool: dict[str, Any] = {"name": name}
        if detail:
            caps = backends.capabilities(backend)
            used = sum(v.size for v in _cinder(call).volumes.values() if v.host == name)
            caps["allocated_capacity_gb"] = used
            caps["free_capacity_gb"] = backends.CAPACITY_GB - used
            pool["capabilities"] = caps
        pools.append(pool)
    return wire.json_response(200, {"pools": pools})


async def show_capabilities(call: Call) -> web.Response:
    _admin(call)
    host = call.params["host"]
    match = [b for name, b in _pool_names(call) if host in (name, name.split("#")[0])]
    if not match:
        raise ApiError(404, f"Host {host} could not be found.")
    caps = backends.capabilities(match[0])
    return wire.json_response(200, {
        "namespace": f"OS::Storage::Capabilities::{host}", "vendor_name": caps["vendor_name"],
        "volume_backend_name": caps["volume_backend_name"], "pool_name": caps["pool_name"],
        "driver_version": caps["driver_version"], "storage_protocol": caps["storage_protocol"],
        "display_name": None, "description": None, "visibility": None, "replication_targets": [],
        "properties": {"thin_provisioning": {"title": "Thin Provisioning", "type": "boolean",
                                             "description": "Sets thin provisioning."}}})


# ---- user messages
def _messages_api(call: Call) -> None:
    _project(call)
    if not _mv(call, 3, 3):
        raise ApiError(404, "The resource could not be found.")


def _message_doc(call: Call, m: Message) -> dict[str, Any]:
    base = call.base_url()
    return {"id": m.id, "request_id": m.request_id, "resource_type": m.resource_type,
            "resource_uuid": m.resource_uuid, "event_id": m.event_id, "message_level": m.message_level,
            "user_message": m.user_message, "created_at": _stamp(m.created_at),
            "guaranteed_until": _stamp(m.expires_at),
            "links": [{"rel": "self", "href": f"{base}/v3/{m.project_id}/messages/{m.id}"},
                      {"rel": "bookmark", "href": f"{base}/{m.project_id}/messages/{m.id}"}]}


def _visible_messages(call: Call) -> list[Message]:
    c = _cinder(call)
    items = [m for m in c.messages.values() if is_admin(call) or m.project_id == call.project_id]
    return sorted(items, key=lambda m: (m.created_at, m.id), reverse=True)


async def list_messages(call: Call) -> web.Response:
    _messages_api(call)
    items = _visible_messages(call)
    chunk, _ = wire.page(items, call.query, max_limit=1000, marker_error="Marker {marker} could not be found.")
    return wire.json_response(200, {"messages": [_message_doc(call, m) for m in chunk]})


def _message_of(call: Call) -> Message:
    m = next((m for m in _visible_messages(call) if m.id == call.params["id"]), None)
    if m is None:
        raise ApiError(404, f"Message {call.params['id']} could not be found.")
    return m


async def show_message(call: Call) -> web.Response:
    _messages_api(call)
    return wire.json_response(200, {"message": _message_doc(call, _message_of(call))})


async def delete_message(call: Call) -> web.Response:
    _messages_api(call)
    m = _message_of(call)
    _cinder(call).messages.pop(m.id, None)
    return wire.json_response(204)


def add_routes(r: Router) -> None:
    s, p = "volume", "/v3/{project_id}"
    table = [
        ("GET", f"{p}/limits", limits, "limits:get"),
        ("GET", f"{p}/os-quota-sets/{{target}}", show_quota, "quota:get"),
        ("GET", f"{p}/os-quota-sets/{{target}}/defaults", show_quota, "quota:get"),
        ("PUT", f"{p}/os-quota-sets/{{target}}", update_quota, "quota:update"),
        ("DELETE", f"{p}/os-quota-sets/{{target}}", delete_quota, "quota:delete"),
        ("GET", f"{p}/os-quota-class-sets/{{name}}", show_quota_class, "quota_class:get"),
        ("PUT", f"{p}/os-quota-class-sets/{{name}}", update_quota_class, "quota_class:update"),
        ("GET", f"{p}/os-services", list_services, "service:list"),
        ("PUT", f"{p}/os-services/{{action}}", service_action, "service:update"),
        ("GET", f"{p}/os-hosts", list_hosts, "host:list"),
        ("GET", f"{p}/os-hosts/{{host}}", show_host, "host:get"),
        ("GET", f"{p}/scheduler-stats/get_pools", list_pools, "pool:list"),
        ("GET", f"{p}/capabilities/{{host}}", show_capabilities, "capabilities:get"),
        ("GET", f"{p}/messages", list_messages, "message:list"),
        ("GET", f"{p}/messages/{{id}}", show_message, "message:get"),
        ("DELETE", f"{p}/messages/{{id}}", delete_message, "message:delete"),
    ]
    for method, path, handler, op in table:
        r.add(s, method, path, handler, f"volume:{op}")
