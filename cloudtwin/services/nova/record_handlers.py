"""Nova v2.1 wire format of what Nova reports about servers: ``os-instance-actions``, ``os-migrations``
and a server's migrations, ``os-simple-tenant-usage``, diagnostics, ``os-server-password`` and
``os-server-external-events``.

Microversions: 2.21 actions of deleted servers, 2.23 migration type and links, 2.48 standard
diagnostics, 2.51 events for members, 2.58 action ``updated_at`` and paging, 2.59 migration uuid and
paging, 2.62 event host, 2.80 migration user and project.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import invalid, mv, nova_of, server_of, usg
from cloudtwin.services.nova.models import Server, host_id
from cloudtwin.services.nova.records import InstanceAction, Migration
from cloudtwin.policy import is_admin

_EVENTS = ("network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted",
           "volume-extended", "power-update", "accelerator-request-bound", "volume-reimaged")


def _parse_time(value: str, field: str) -> float:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, value, "not a valid ISO 8601 date-time") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def _changed_page(call: Call, items: list[Any], body: dict[str, Any], link_key: str, path: str) -> list[Any]:
    """``changes-since`` / ``changes-before`` then ``limit`` / ``marker`` (records' paging since 2.58/2.59);
    a next link under ``link_key`` when more follow."""
    q = call.query
    for key, newer in (("changes-since", True), ("changes-before", False)):
        if key in q:
            when = _parse_time(q[key], key)
            items = [x for x in items if (x.updated_at >= when if newer else x.updated_at <= when)]
    items, nxt = wire.page(items, q, max_limit=1000, marker_error="Marker {marker} could not be found.")
    if nxt:
        body[link_key] = [{"rel": "next", "href": f"{call.base_url()}{path}?limit={q.get('limit', '1000')}"
                                                  f"&marker={nxt}"}]
    return list(items)


# ---- instance actions ----------------------------------------------------------------------------------

def _action_doc(call: Call, a: InstanceAction) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.server_id, "message": a.message,
                           "project_id": a.project_id, "request_id": a.id, "start_time": usg(a.created_at),
                           "user_id": a.user_id}
    if mv(call, 2, 58):
        out["updated_at"] = usg(a.updated_at)
    return out


def _event_doc(call: Call, a: InstanceAction, ev: dict[str, Any], admin: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"event": ev["event"], "start_time": usg(ev["start_time"]),
                           "finish_time": usg(ev.get("finish_time")), "result": ev.get("result")}
    if admin:
        out["traceback"] = None
    if mv(call, 2, 62):
        if admin:
            out["host"] = ev.get("host") or ""
        out["hostId"] = host_id(a.project_id, ev.get("host") or "")
    if mv(call, 2, 84):
        out["details"] = None
    return out


def _action_server(call: Call) -> str:
    """The server id of the URL; a deleted server's actions stay visible to an admin (2.21)."""
    nova = nova_of(call)
    sid = call.params["id"]
    if sid in nova.servers:
        server_of(call)
        return sid
    if mv(call, 2, 21) and any(a.server_id == sid and (a.project_id == call.project_id or is_admin(call))
                               for a in nova.instance_actions.values()):
        return sid
    raise ApiError(404, f"Instance {sid} could not be found.")


async def list_instance_actions(call: Call) -> web.Response:
    sid = _action_server(call)
    items = nova_of(call).actions_of(sid)
    body: dict[str, Any] = {}
    if mv(call, 2, 58):
        items = _changed_page(call, items, body, "links", f"/servers/{sid}/os-instance-actions")
    body["instanceActions"] = [_action_doc(call, a) for a in items]
    return wire.json_response(200, body)


async def get_instance_action(call: Call) -> web.Response:
    sid = _action_server(call)
    a = nova_of(call).instance_actions.get(call.params["request_id"])
    if a is None or a.server_id != sid:
        raise ApiError(404, f"Action for request_id {call.params['request_id']} on instance {sid} not found")
    doc = _action_doc(call, a)
    admin = is_admin(call)
    if admin or mv(call, 2, 51):
        doc["events"] = [_event_doc(call, a, ev, admin) for ev in a.events]
    return wire.json_response(200, {"instanceAction": doc})


# ---- migrations ----------------------------------------------------------------------------------------

def _flavor_number(call: Call, flavor_id: str) -> int:
    """Nova shows flavors' internal integer ids in migrations."""
    if flavor_id.isdigit():
        return int(flavor_id)
    ids = list(nova_of(call).flavors)
    return ids.index(flavor_id) + 1 if flavor_id in ids else 0


def _migration_doc(call: Call, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.seq, "instance_uuid": m.server_id, "status": m.status,
                           "source_compute": m.source_compute, "source_node": m.source_compute,
                           "dest_compute": m.dest_compute, "dest_node": m.dest_compute, "dest_host": "",
                           "old_instance_type_id": _flavor_number(call, m.old_flavor_id),
                           "new_instance_type_id": _flavor_number(call, m.new_flavor_id),
                           "created_at": usg(m.created_at), "updated_at": usg(m.updated_at)}
    if mv(call, 2, 23):
        out["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in ("queued", "preparing", "running"):
            href = f"{call.base_url()}/servers/{m.server_id}/migrations/{m.seq}"
            out["links"] = [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]
    if mv(call, 2, 59):
        out["uuid"] = m.id
    if mv(call, 2, 80):
        out["user_id"], out["project_id"] = m.user_id, m.project_id
    return out


async def list_migrations(call: Call) -> web.Response:
    items = sorted(nova_of(call).migrations.values(), key=lambda m: (m.created_at, m.seq), reverse=True)
    q = call.query
    for key, attr in (("instance_uuid", "server_id"), ("status", "status"), ("migration_type", "migration_type"),
                      ("source_compute", "source_compute"), ("user_id", "user_id"), ("project_id", "project_id")):
        if key in q:
            items = [m for m in items if getattr(m, attr) == q[key]]
    body: dict[str, Any] = {}
    if mv(call, 2, 59):
        items = _changed_page(call, items, body, "migrations_links", "/os-migrations")
    body["migrations"] = [_migration_doc(call, m) for m in items]
    return wire.json_response(200, body)


def _live_migrations(call: Call, s: Server) -> list[Migration]:
    return [m for m in nova_of(call).migrations.values() if m.server_id == s.id
            and m.migration_type == "live-migration" and m.status in ("queued", "preparing", "running")]


def _server_migration_doc(call: Call, m: Migration) -> dict[str, Any]:
    out = {"id": m.seq, "server_uuid": m.server_id, "status": m.status, "source_compute": m.source_compute,
           "source_node": m.source_compute, "dest_compute": m.dest_compute, "dest_node": m.dest_compute,
           "dest_host": "", "created_at": usg(m.created_at), "updated_at": usg(m.updated_at),
           "memory_total_bytes": 0, "memory_processed_bytes": 0, "memory_remaining_bytes": 0,
           "disk_total_bytes": 0, "disk_processed_bytes": 0, "disk_remaining_bytes": 0}
    if mv(call, 2, 59):
        out["uuid"] = m.id
    if mv(call, 2, 80):
        out["user_id"], out["project_id"] = m.user_id, m.project_id
    return out


async def list_server_migrations(call: Call) -> web.Response:
    if not mv(call, 2, 23):
        raise ApiError(404, "The resource could not be found.")
    s = server_of(call)
    return wire.json_response(200, {"migrations": [_server_migration_doc(call, m) for m in _live_migrations(call, s)]})


def _server_migration(call: Call) -> tuple[Server, Migration]:
    s = server_of(call)
    mid = call.params["mid"]
    for m in nova_of(call).migrations.values():
        if m.server_id == s.id and str(m.seq) == mid:
            return s, m
    raise ApiError(404, f"Migration {mid} could not be found.")


async def get_server_migration(call: Call) -> web.Response:
    if not mv(call, 2, 23):
        raise ApiError(404, "The resource could not be found.")
    s, m = _server_migration(call)
    if m not in _live_migrations(call, s):
        raise ApiError(404, f"Migration {m.seq} for instance {s.id} is not in progress.")
    return wire.json_response(200, {"migration": _server_migration_doc(call, m)})


async def server_migration_action(call: Call) -> web.Response:
    if not mv(call, 2, 22):
        raise ApiError(404, "The resource could not be found.")
    body = call.body()
    if body != {"force_complete": None}:
        raise invalid("force_complete", body, "the only action is force_complete")
    s, m = _server_migration(call)
    if m.status != "running":
        raise ApiError(400, f"Migration {m.seq} state of instance {s.id} is {m.status}. Cannot force_complete "
                            "while the migration is in this state.")
    return wire.json_response(202)


async def abort_server_migration(call: Call) -> web.Response:
    if not mv(call, 2, 24):
        raise ApiError(404, "The resource could not be found.")
    s, m = _server_migration(call)
    if m.status not in ("queued", "preparing", "running"):
        raise ApiError(400, f"Migration {m.seq} state of instance {s.id} is {m.status}. Cannot abort live "
                            "migration while the migration is in this state.")
    nova = nova_of(call)
    m.status = "cancelled"
    s.migration_id = None
    nova.force_state(s, "ACTIVE")
    return wire.json_response(202)


# ---- usage -----------------------------------------------------------------------------------------------

def _window(call: Call) -> tuple[float, float]:
    q = call.query
    now = time.time()
    end = _parse_time(q["end"], "end") if "end" in q else now
    start = _parse_time(q["start"], "start") if "start" in q else end - 86400
    if start > end:
        raise ApiError(400, "Invalid start time. The start time cannot occur after the end time.")
    return start, end


def _usage_of(call: Call, project_id: str, servers: list[Server], start: float, end: float,
              detailed: bool) -> dict[str, Any]:
    nova = nova_of(call)
    rows = []
    totals = {"total_local_gb_usage": 0.0, "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0,
              "total_hours": 0.0}
    for s in servers:
        began = max(start, s.launched_at or s.created_at)
        hours = max(0.0, min(end, time.time()) - began) / 3600
        totals["total_hours"] += hours
        totals["total_vcpus_usage"] += hours * s.vcpus
        totals["total_memory_mb_usage"] += hours * s.ram
        totals["total_local_gb_usage"] += hours * s.disk
        flavor = nova.flavors.get(s.flavor_id)
        status = nova.life.attrs(s.state).get("vm_state", "active")
        rows.append({"instance_id": s.id, "name": s.name, "hours": hours, "memory_mb": s.ram, "local_gb": s.disk,
                     "vcpus": s.vcpus, "tenant_id": s.project_id, "flavor": flavor.name if flavor else s.flavor_id,
                     "started_at": usg(s.launched_at or s.created_at), "ended_at": None, "state": status,
                     "uptime": int(max(0.0, time.time() - (s.launched_at or s.created_at)))})
    out: dict[str, Any] = {"tenant_id": project_id, **totals,
                           "start": usg(start), "stop": usg(end)}
    if detailed:
        out["server_usages"] = rows
    return out


async def list_usage(call: Call) -> web.Response:
    if call.request.path.endswith("/"):     # ``.../os-simple-tenant-usage/``: an empty project id
        raise ApiError(404, "The resource could not be found.")
    start, end = _window(call)
    detailed = (call.query.get("detailed") or "0") not in ("0", "false", "False", "")
    nova = nova_of(call)
    by_project: dict[str, list[Server]] = {}
    for s in nova.servers.values():
        if (s.launched_at or s.created_at) <= end:
            by_project.setdefault(s.project_id, []).append(s)
    usages = [_usage_of(call, pid, servers, start, end, detailed) for pid, servers in sorted(by_project.items())]
    return wire.json_response(200, {"tenant_usages": usages})


async def get_usage(call: Call) -> web.Response:
    pid = call.params["project"]
    if pid != call.project_id and not is_admin(call):
        raise ApiError(403, "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.")
    start, end = _window(call)
    servers = [s for s in nova_of(call).servers.values() if s.project_id == pid
               and (s.launched_at or s.created_at) <= end]
    if not servers:
        return wire.json_response(200, {"tenant_usage": {}})
    return wire.json_response(200, {"tenant_usage": _usage_of(call, pid, servers, start, end, True)})


# ---- diagnostics, password, external events -------------------------------------------------------------

async def diagnostics(call: Call) -> web.Response:
    s = server_of(call)
    nova = nova_of(call)
    attrs = nova.life.attrs(s.state)
    if attrs.get("status") not in ("ACTIVE", "PAUSED", "SUSPENDED", "SHUTOFF", "RESCUE", "VERIFY_RESIZE"):
        raise ApiError(409, f"Cannot 'get_diagnostics' instance {s.id} while it is in vm_state {attrs.get('vm_state')}")
    uptime = int(time.time() - (s.launched_at or s.created_at))
    ports = nova.region.neutron.ports_of_device(s.id)
    if not mv(call, 2, 48):
        out: dict[str, Any] = {"cpu0_time": uptime * 10 ** 9, "memory": s.ram * 1024, "memory-actual": s.ram * 1024,
                               "vda_read": 0, "vda_read_req": 0, "vda_write": 0, "vda_write_req": 0,
                               "vda_errors": -1}
        for i, _ in enumerate(ports):
            out.update({f"tap{i}_rx": 0, f"tap{i}_rx_packets": 0, f"tap{i}_tx": 0, f"tap{i}_tx_packets": 0})
        return wire.json_response(200, out)
    running = attrs.get("power_state") == 1
    body = {"state": {1: "running", 3: "paused", 4: "shutdown", 7: "suspended"}.get(attrs.get("power_state", 0),
                                                                                        "pending"),
            "driver": "libvirt", "hypervisor": "qemu", "hypervisor_os": "linux",
            "uptime": uptime if running else 0, "config_drive": bool(s.config_drive),
            "num_cpus": s.vcpus, "num_nics": len(ports), "num_disks": 1,
            "cpu_details": [{"id": i, "time": uptime * 10 ** 9, "utilisation": None} for i in range(s.vcpus)],
            "nic_details": [{"mac_address": p.mac_address, "rx_octets": 0, "rx_errors": 0, "rx_drop": 0,
                             "rx_packets": 0, "rx_rate": None, "tx_octets": 0, "tx_errors": 0, "tx_drop": 0,
                             "tx_packets": 0, "tx_rate": None} for p in ports],
            "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0,
                              "errors_count": 0}],
            "memory_details": {"maximum": s.ram, "used": 0}}
    return wire.json_response(200, body)


async def get_password(call: Call) -> web.Response:
    server_of(call)
    return wire.json_response(200, {"password": ""})


async def clear_password(call: Call) -> web.Response:
    server_of(call)
    return wire.json_response(204)


async def external_events(call: Call) -> web.Response:
    body = call.body()
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise invalid("events", events, "a non-empty list of events")
    nova = nova_of(call)
    out = []
    for ev in events:
        if not isinstance(ev, dict) or ev.get("name") not in _EVENTS or not isinstance(ev.get("server_uuid"), str):
            raise invalid("events", ev, f"each event needs 'server_uuid' and a 'name' among {list(_EVENTS)}")
        status = ev.get("status", "completed")
        if status not in ("failed", "completed", "in-progress"):
            raise invalid("status", status, "'failed', 'completed' or 'in-progress'")
        item = dict(ev)
        item["status"] = status
        s = nova.servers.get(ev["server_uuid"])
        if s is None:
            item.update({"code": 404, "status": "failed"})
        elif not s.host:
            item.update({"code": 422, "status": "failed"})
        else:
            item["code"] = 200
            if ev["name"] == "volume-extended":
                nova.volume_extended(s.id, call.token.user_id if call.token else "")
        out.append(item)
    code = 200 if any(e["code"] == 200 for e in out) else 404 if all(e["code"] == 404 for e in out) else 207
    return wire.json_response(code, {"events": out})


# ---- instance usage audit log -----------------------------------------------------------------------------

def _audit_period(before: float) -> tuple[datetime, datetime]:
    """Nova's last completed monthly audit period before ``before``."""
    end = datetime.fromtimestamp(before, timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end.replace(year=end.year - 1, month=12) if end.month == 1 else end.replace(month=end.month - 1))
    return start, end


def _audit_log(call: Call, before: float) -> dict[str, Any]:
    start, end = _audit_period(before)
    nova = nova_of(call)
    log = {}
    for h in sorted(nova.hosts.hosts):
        n = sum(1 for s in nova.servers.values() if s.host == h and s.created_at < end.timestamp())
        log[h] = {"state": "DONE", "instances": n, "errors": 0,
                  "message": f"Instance usage audit ran for host {h}, {n} instances in 0.01 seconds."}
    fmt = "%Y-%m-%d %H:%M:%S"
    return {"hosts_not_run": [], "log": log, "num_hosts": len(log), "num_hosts_done": len(log),
            "num_hosts_not_run": 0, "num_hosts_running": 0, "overall_status": "ALL hosts done. 0 errors.",
            "period_beginning": start.strftime(fmt), "period_ending": end.strftime(fmt), "total_errors": 0,
            "total_instances": sum(e["instances"] for e in log.values())}


async def list_audit_logs(call: Call) -> web.Response:
    return wire.json_response(200, {"instance_usage_audit_logs": _audit_log(call, time.time())})


async def get_audit_log(call: Call) -> web.Response:
    raw = call.params["before"]
    try:
        before = datetime.strptime(raw.replace("%20", " ").split(".")[0], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ApiError(400, "Invalid timestamp for date " + raw) from None
    return wire.json_response(200, {"instance_usage_audit_log": _audit_log(
        call, before.replace(tzinfo=timezone.utc).timestamp())})


def add_routes(r: Router) -> None:
    r.add("compute", "GET", "/v2.1/os-instance_usage_audit_log", list_audit_logs, "compute:instance_usage_audit_log:list")
    r.add("compute", "GET", "/v2.1/os-instance_usage_audit_log/{before}", get_audit_log,
          "compute:instance_usage_audit_log:get")
    s = "compute"
    r.add(s, "GET", "/v2.1/servers/{id}/os-instance-actions", list_instance_actions, "compute:instance_action:list")
    r.add(s, "GET", "/v2.1/servers/{id}/os-instance-actions/{request_id}", get_instance_action,
          "compute:instance_action:get")
    r.add(s, "GET", "/v2.1/os-migrations", list_migrations, "compute:migration:list")
    r.add(s, "GET", "/v2.1/servers/{id}/migrations", list_server_migrations, "compute:server_migration:list")
    r.add(s, "GET", "/v2.1/servers/{id}/migrations/{mid}", get_server_migration, "compute:server_migration:get")
    r.add(s, "POST", "/v2.1/servers/{id}/migrations/{mid}/action", server_migration_action,
          "compute:server_migration:action")
    r.add(s, "DELETE", "/v2.1/servers/{id}/migrations/{mid}", abort_server_migration,
          "compute:server_migration:delete")
    r.add(s, "GET", "/v2.1/os-simple-tenant-usage", list_usage, "compute:simple_tenant_usage:list")
    r.add(s, "GET", "/v2.1/os-simple-tenant-usage/{project}", get_usage, "compute:simple_tenant_usage:get")
    r.add(s, "GET", "/v2.1/servers/{id}/diagnostics", diagnostics, "compute:server_diagnostics:get")
    r.add(s, "GET", "/v2.1/servers/{id}/os-server-password", get_password, "compute:server_password:get")
    r.add(s, "DELETE", "/v2.1/servers/{id}/os-server-password", clear_password, "compute:server_password:delete")
    r.add(s, "POST", "/v2.1/os-server-external-events", external_events, "compute:server_external_event:create")
