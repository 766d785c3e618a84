"""Cinder v3 wire format for snapshots (with metadata and admin actions), backups (create, restore,
export/import of records) and volume transfers (``os-volume-transfer`` and, from 3.55,
``volume-transfers``). Shapes follow the microversion: 3.41 snapshot ``user_id``, 3.43 backup
``metadata``, 3.56 backup ``user_id``, 3.57 transfer ``source/destination_project_id`` and ``accepted``."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.policy import is_admin
from cloudtwin.services.cinder.handlers import (View, _bool, _cinder, _invalid, _metadata, _mv, _opt_str,
                                                _project, _stamp, metadata_call, metadata_item_call, page)
from cloudtwin.services.cinder.resources import Backup, Snapshot, Transfer


def _links(call: Call, kind: str, oid: str, project_id: str) -> list[dict[str, str]]:
    return View(call).links(kind, oid, project_id)


def _scope(call: Call) -> str | None:
    """None (every project) for an admin's ``all_tenants`` listing, else the caller's project."""
    pid = _project(call)
    if wire.truthy(call.query.get("all_tenants")) and is_admin(call):
        return None
    return pid


def _owner(call: Call) -> str | None:
    """The project whose objects a show/update may reach: any for an admin."""
    pid = _project(call)
    return None if is_admin(call) else pid


def _page(call: Call, items: list[Any], key: str, path: str, render: Any) -> web.Response:
    q = call.query
    if "offset" in q:
        try:
            offset = int(q["offset"])
        except ValueError:
            raise ApiError(400, f"Invalid input received: offset {q['offset']} is not an integer") from None
        if offset < 0:
            raise ApiError(400, "Invalid input received: offset must be >= 0")
        items = items[offset:]
    chunk, next_marker = page(call, items)
    body: dict[str, Any] = {key: [render(i) for i in chunk]}
    if next_marker:
        params = "&".join(f"{k}={v}" for k, v in q.items() if k != "marker")
        body[f"{key}_links"] = [{"rel": "next", "href": f"{call.base_url()}/v3/{call.project_id}{path}?"
                                                       f"{params}&marker={next_marker}".replace("?&", "?")}]
    return wire.json_response(200, body)


_SORT = {"created_at", "updated_at", "name", "id", "size", "status"}
_SORT_ALIASES = {"display_name": "name", "display_description": "description"}


def _sorted(items: list[Any], q: Any, status: Any) -> list[Any]:
    spec = q.get("sort") or (f"{q['sort_key']}:{q.get('sort_dir', 'desc')}" if "sort_key" in q else "")
    for part in reversed([p for p in spec.split(",") if p]):
        key, _, direction = part.partition(":")
        key, direction = _SORT_ALIASES.get(key.strip(), key.strip()), direction.strip().lower()
        if key not in _SORT:
            raise ApiError(400, f"Invalid input received: Invalid sort key {key}")
        if direction not in ("", "asc", "desc"):
            raise ApiError(400, f"Invalid input received: Invalid sort direction {direction}")
        fn = (lambda o: status(o)) if key == "status" else (lambda o, k=key: getattr(o, k) or "")
        items = sorted(items, key=fn, reverse=direction != "asc")
    return items


# ---- snapshots --------------------------------------------------------------------------------------

def render_snapshot(call: Call, s: Snapshot, *, detail: bool = True) -> dict[str, Any]:
    c = _cinder(call)
    out: dict[str, Any] = {"id": s.id, "name": s.name, "description": s.description,
                           "status": c.snapshot_status(s), "size": s.size, "volume_id": s.volume_id,
                           "metadata": dict(s.metadata), "created_at": _stamp(s.created_at),
                           "updated_at": _stamp(s.updated_at)}
    if detail:
        out["os-extended-snapshot-attributes:progress"] = s.progress
        out["os-extended-snapshot-attributes:project_id"] = s.project_id
    if _mv(call, 3, 14):
        out["group_snapshot_id"] = s.group_snapshot_id
    if _mv(call, 3, 41):
        out["user_id"] = s.user_id
    if _mv(call, 3, 65):
        out["consumes_quota"] = True
    return out


def _list_snapshots(call: Call, detail: bool) -> web.Response:
    c = _cinder(call)
    q = call.query
    items = c.snapshots_of(_scope(call))
    for key in ("name", "volume_id", "project_id"):
        if key in q:
            items = [s for s in items if getattr(s, key) == q[key]]
    if "status" in q:
        items = [s for s in items if c.snapshot_status(s) == q["status"]]
    if "metadata" in q:
        from cloudtwin.services.cinder.handlers import _query_dict
        want = _query_dict(q["metadata"])
        items = [s for s in items if all(s.metadata.get(k) == str(v) for k, v in want.items())]
    items = _sorted(items, q, c.snapshot_status)
    path = "/snapshots/detail" if detail else "/snapshots"
    return _page(call, items, "snapshots", path, lambda s: render_snapshot(call, s, detail=detail))


async def list_snapshots(call: Call) -> web.Response:
    return _list_snapshots(call, False)


async def list_snapshots_detail(call: Call) -> web.Response:
    return _list_snapshots(call, True)


def _snapshot_of(call: Call) -> Snapshot:
    return _cinder(call).get_snapshot(_owner(call), call.params["id"])


async def create_snapshot(call: Call) -> web.Response:
    body = call.body("snapshot")
    c = _cinder(call)
    vid = body.get("volume_id")
    if vid is not None and not isinstance(vid, str):
        raise _invalid("volume_id", vid, "not of type 'string'")
    if not vid:
        raise ApiError(404, "Volume None could not be found.")
    force = _bool(body["force"], "force") if body.get("force") is not None else False
    v = c.get_volume(_owner(call), vid)
    name = _opt_str(body, "name") or _opt_str(body, "display_name")
    description = _opt_str(body, "description")
    if description is None:
        description = _opt_str(body, "display_description")
    assert call.token is not None
    s = c.create_snapshot(v, call.token.user_id, name=name, description=description, force=force,
                          metadata=_metadata(body.get("metadata")))
    return wire.json_response(202, {"snapshot": render_snapshot(call, s, detail=False)})


async def get_snapshot(call: Call) -> web.Response:
    return wire.json_response(200, {"snapshot": render_snapshot(call, _snapshot_of(call))})


async def update_snapshot(call: Call) -> web.Response:
    body = call.body("snapshot")
    s = _snapshot_of(call)
    allowed = {"name", "description", "display_name", "display_description"}
    if not body or set(body) - allowed:
        raise _invalid("snapshot", body, "Additional properties are not allowed")
    if "name" in body or "display_name" in body:
        s.name = (_opt_str(body, "name") if "name" in body else _opt_str(body, "display_name")) or ""
    for key in ("description", "display_description"):
        if key in body:
            s.description = _opt_str(body, key)
    s.touch()
    return wire.json_response(200, {"snapshot": render_snapshot(call, s, detail=False)})


async def delete_snapshot(call: Call) -> web.Response:
    _cinder(call).delete_snapshot(_snapshot_of(call))
    return wire.json_response(202)


async def snapshot_metadata(call: Call) -> web.Response:
    return metadata_call(call, _snapshot_of(call))


async def snapshot_metadata_item(call: Call) -> web.Response:
    return metadata_item_call(call, _snapshot_of(call), "Snapshot")


def _admin(call: Call) -> None:
    if not is_admin(call):
        raise ApiError(403, "Policy doesn't allow this operation to be performed.")


async def snapshot_action(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    c = _cinder(call)
    s = _snapshot_of(call)
    if name == "os-reset_status":
        _admin(call)
        if not isinstance(arg, dict) or not isinstance(arg.get("status"), str):
            raise _invalid(name, arg, "'status' is a required property")
        c.reset_snapshot_status(s, arg["status"])
    elif name == "os-update_snapshot_status":     # the backend's callback: the owner may call it
        if not isinstance(arg, dict) or not isinstance(arg.get("status"), str):
            raise _invalid(name, arg, "'status' is a required property")
        progress = arg.get("progress")
        if progress is not None and not isinstance(progress, str):
            raise _invalid("progress", progress, "not of type 'string'")
        current = c.snapshot_status(s)
        allowed = {"creating": ("available", "error"), "deleting": ("error_deleting",)}
        if arg["status"] not in allowed.get(current, ()) and arg["status"] != current:
            raise ApiError(400, f"Invalid input received: Provided snapshot status {arg['status']} not allowed "
                                f"for snapshot with status {current}.")
        c.reset_snapshot_status(s, arg["status"], progress)
    elif name == "os-force_delete":
        _admin(call)
        c.delete_snapshot(s, force=True)
    elif name == "os-unmanage":
        _admin(call)
        c.unmanage_snapshot(s)
    else:
        raise ApiError(400, f"There is no such action: {name}")
    return wire.json_response(202)


# ---- backups ----------------------------------------------------------------------------------------

def render_backup(call: Call, b: Backup, *, detail: bool = True) -> dict[str, Any]:
    c = _cinder(call)
    out: dict[str, Any] = {"id": b.id, "name": b.name, "links": _links(call, "backups", b.id, b.project_id)}
    if not detail:
        return out
    out.update({"status": c.backup_status(b), "description": b.description, "size": b.size,
                "volume_id": b.volume_id, "availability_zone": b.availability_zone, "container": b.container,
                "created_at": _stamp(b.created_at), "updated_at": _stamp(b.updated_at),
                "fail_reason": b.fail_reason, "object_count": 0 if c.backup_status(b) != "available" else 1,
                "has_dependent_backups": c.has_dependents(b), "is_incremental": b.is_incremental,
                "snapshot_id": b.snapshot_id, "data_timestamp": _stamp(b.data_timestamp)})
    if _mv(call, 3, 18):
        out["os-backup-project-attr:project_id"] = b.project_id
    if _mv(call, 3, 43):
        out["metadata"] = dict(b.metadata)
    if _mv(call, 3, 56):
        out["user_id"] = b.user_id
    return out


def _list_backups(call: Call, detail: bool) -> web.Response:
    c = _cinder(call)
    q = call.query
    items = c.backups_of(_scope(call))
    for key in ("name", "volume_id"):
        if key in q:
            items = [b for b in items if getattr(b, key) == q[key]]
    if "status" in q:
        items = [b for b in items if c.backup_status(b) == q["status"]]
    items = _sorted(items, q, c.backup_status)
    path = "/backups/detail" if detail else "/backups"
    return _page(call, items, "backups", path, lambda b: render_backup(call, b, detail=detail))


async def list_backups(call: Call) -> web.Response:
    return _list_backups(call, False)


async def list_backups_detail(call: Call) -> web.Response:
    return _list_backups(call, True)


def _backup_of(call: Call) -> Backup:
    return _cinder(call).get_backup(_owner(call), call.params["id"])


async def create_backup(call: Call) -> web.Response:
    body = call.body("backup")
    c = _cinder(call)
    vid = body.get("volume_id")
    if not isinstance(vid, str) or not vid:
        raise _invalid("volume_id", vid, "'volume_id' is a required property")
    v = c.get_volume(_owner(call), vid)
    assert call.token is not None
    b = c.create_backup(
        v, call.token.user_id, name=_opt_str(body, "name"), description=_opt_str(body, "description"),
        container=_opt_str(body, "container"),
        incremental=_bool(body["incremental"], "incremental") if body.get("incremental") is not None else False,
        force=_bool(body["force"], "force") if body.get("force") is not None else False,
        snapshot_id=_opt_str(body, "snapshot_id", max_len=64),
        metadata=_metadata(body.get("metadata")) if _mv(call, 3, 43) else {})
    return wire.json_response(202, {"backup": render_backup(call, b, detail=False)})


async def get_backup(call: Call) -> web.Response:
    return wire.json_response(200, {"backup": render_backup(call, _backup_of(call))})


async def update_backup(call: Call) -> web.Response:
    if not _mv(call, 3, 9):
        raise ApiError(404, "The resource could not be found.")
    body = call.body("backup")
    b = _backup_of(call)
    if "name" in body:
        b.name = _opt_str(body, "name") or ""
    if "description" in body:
        b.description = _opt_str(body, "description")
    if "metadata" in body and _mv(call, 3, 43):
        b.metadata = _metadata(body["metadata"])
    b.touch()
    return wire.json_response(200, {"backup": render_backup(call, b, detail=False)})


async def delete_backup(call: Call) -> web.Response:
    force = bool(wire.truthy(call.query.get("force")))
    if force:
        _admin(call)
    _cinder(call).delete_backup(_backup_of(call), force=force)
    return wire.json_response(202)


async def restore_backup(call: Call) -> web.Response:
    body = call.body("restore", required=False)
    c = _cinder(call)
    b = _backup_of(call)
    vid = _opt_str(body, "volume_id", max_len=64)
    assert call.token is not None
    if vid:
        target = c.get_volume(_owner(call), vid)
    else:
        name = _opt_str(body, "name") or f"restore_backup_{b.id}"
        target = c.create_volume(b.project_id, call.token.user_id, size=b.size, name=name,
                                 zone=b.availability_zone or None,
                                 description=f"auto-created_from_restore_from_backup")
        target.state = "available"   # the restore below takes over its lifecycle
        c.region.twin.scheduler.cancel(target)
    c.restore_backup(b, target)
    return wire.json_response(202, {"restore": {"backup_id": b.id, "volume_id": target.id,
                                               "volume_name": target.name}})


async def backup_action(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    c = _cinder(call)
    b = _backup_of(call)
    _admin(call)
    if name == "os-reset_status":
        if not isinstance(arg, dict) or not isinstance(arg.get("status"), str):
            raise _invalid(name, arg, "'status' is a required property")
        c.reset_backup_status(b, arg["status"])
    elif name == "os-force_delete":
        c.delete_backup(b, force=True)
    else:
        raise ApiError(400, f"There is no such action: {name}")
    return wire.json_response(202)


async def export_backup(call: Call) -> web.Response:
    _admin(call)
    b = _backup_of(call)
    if _cinder(call).backup_status(b) != "available":
        raise ApiError(400, f"Invalid backup: Backup status must be available, not {_cinder(call).backup_status(b)}.")
    record = {"id": b.id, "display_name": b.name, "display_description": b.description, "volume_id": b.volume_id,
              "size": b.size, "availability_zone": b.availability_zone, "container": b.container,
              "service": "cinder.backup.drivers.twin"}
    url = base64.b64encode(json.dumps(record).encode()).decode()
    return wire.json_response(200, {"backup-record": {"backup_service": "cinder.backup.drivers.twin",
                                                      "backup_url": url}})


async def import_backup(call: Call) -> web.Response:
    _admin(call)
    rec = call.body("backup-record")
    service, url = rec.get("backup_service"), rec.get("backup_url")
    if not isinstance(service, str) or not isinstance(url, str):
        raise ApiError(400, "Invalid input received: backup_service and backup_url are required.")
    if service != "cinder.backup.drivers.twin":
        raise ApiError(400, f"Invalid input received: Backup service {service} is not supported.")
    try:
        record = json.loads(base64.b64decode(url, validate=True))
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError:
        raise ApiError(400, "Invalid input received: backup_url is not a valid backup record.") from None
    assert call.token is not None
    c = _cinder(call)
    existing = c.backups.get(str(record.get("id")))
    if existing is not None:
        if c.backup_status(existing) != "deleting":
            raise ApiError(400, f"Invalid backup: Backup {existing.id} already exists.")
    b = c.import_backup(_project(call), call.token.user_id, record)
    return wire.json_response(201, {"backup": render_backup(call, b, detail=False)})


# ---- transfers --------------------------------------------------------------------------------------

def render_transfer(call: Call, t: Transfer, *, detail: bool = True, key: str | None = None) -> dict[str, Any]:
    kind = "volume-transfers" if _mv(call, 3, 55) else "os-volume-transfer"
    out: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": t.volume_id,
                           "links": _links(call, kind, t.id, t.project_id)}
    if detail:
        out["created_at"] = _stamp(t.created_at)
    if key is not None:
        out["auth_key"] = key
    if _mv(call, 3, 57) and detail:
        out.update({"source_project_id": t.source_project_id, "destination_project_id": t.destination_project_id,
                    "accepted": t.accepted})
    if _mv(call, 3, 55) and detail:
        out["no_snapshots"] = t.no_snapshots
    return out


async def list_transfers(call: Call) -> web.Response:
    c = _cinder(call)
    items = c.transfers_of(_scope(call))
    detail = call.route.pattern.endswith("/detail")
    return _page(call, items, "transfers", "/os-volume-transfer", lambda t: render_transfer(call, t, detail=detail))


async def create_transfer(call: Call) -> web.Response:
    body = call.body("transfer")
    vid = body.get("volume_id")
    if not isinstance(vid, str) or not vid:
        raise _invalid("volume_id", vid, "'volume_id' is a required property")
    c = _cinder(call)
    v = c.get_volume(_owner(call), vid)
    no_snapshots = _mv(call, 3, 55) and bool(body.get("no_snapshots", False))
    t, key = c.create_transfer(v, _opt_str(body, "name"), no_snapshots=no_snapshots)
    return wire.json_response(202, {"transfer": render_transfer(call, t, key=key)})


async def get_transfer(call: Call) -> web.Response:
    t = _cinder(call).get_transfer(_owner(call), call.params["id"])
    return wire.json_response(200, {"transfer": render_transfer(call, t)})


async def delete_transfer(call: Call) -> web.Response:
    c = _cinder(call)
    c.delete_transfer(c.get_transfer(_owner(call), call.params["id"]))
    return wire.json_response(202)


async def accept_transfer(call: Call) -> web.Response:
    body = call.body("accept")
    key = body.get("auth_key")
    if not isinstance(key, str):
        raise _invalid("auth_key", key, "'auth_key' is a required property")
    assert call.token is not None
    t = _cinder(call).accept_transfer(call.params["id"], key, _project(call), call.token.user_id)
    return wire.json_response(202, {"transfer": render_transfer(call, t, detail=False)})


def _transfers_since_355(handler: Any) -> Any:
    async def gated(call: Call) -> web.Response:
        if not _mv(call, 3, 55):
            raise ApiError(404, "The resource could not be found.")
        return await handler(call)
    return gated


def add_routes(r: Router) -> None:
    s, p = "volume", "/v3/{project_id}"
    r.add(s, "GET", f"{p}/snapshots", list_snapshots, "volume:snapshot:list")
    r.add(s, "GET", f"{p}/snapshots/detail", list_snapshots_detail, "volume:snapshot:list")
    r.add(s, "POST", f"{p}/snapshots", create_snapshot, "volume:snapshot:create")
    r.add(s, "GET", f"{p}/snapshots/{{id}}", get_snapshot, "volume:snapshot:get")
    r.add(s, "PUT", f"{p}/snapshots/{{id}}", update_snapshot, "volume:snapshot:update")
    r.add(s, "DELETE", f"{p}/snapshots/{{id}}", delete_snapshot, "volume:snapshot:delete")
    r.add(s, "POST", f"{p}/snapshots/{{id}}/action", snapshot_action, "volume:snapshot:action")
    for method in ("GET", "POST", "PUT"):
        r.add(s, method, f"{p}/snapshots/{{id}}/metadata", snapshot_metadata, "volume:snapshot_metadata:update")
    for method in ("GET", "PUT", "DELETE"):
        r.add(s, method, f"{p}/snapshots/{{id}}/metadata/{{key}}", snapshot_metadata_item,
              "volume:snapshot_metadata:update")
    r.add(s, "GET", f"{p}/backups", list_backups, "volume:backup:list")
    r.add(s, "GET", f"{p}/backups/detail", list_backups_detail, "volume:backup:list")
    r.add(s, "POST", f"{p}/backups", create_backup, "volume:backup:create")
    r.add(s, "POST", f"{p}/backups/import_record", import_backup, "volume:backup:import")
    r.add(s, "GET", f"{p}/backups/{{id}}", get_backup, "volume:backup:get")
    r.add(s, "PUT", f"{p}/backups/{{id}}", update_backup, "volume:backup:update")
    r.add(s, "DELETE", f"{p}/backups/{{id}}", delete_backup, "volume:backup:delete")
    r.add(s, "POST", f"{p}/backups/{{id}}/restore", restore_backup, "volume:backup:restore")
    r.add(s, "POST", f"{p}/backups/{{id}}/action", backup_action, "volume:backup:action")
    r.add(s, "GET", f"{p}/backups/{{id}}/export_record", export_backup, "volume:backup:export")
    for base, gate in (("os-volume-transfer", lambda h: h), ("volume-transfers", _transfers_since_355)):
        r.add(s, "GET", f"{p}/{base}", gate(list_transfers), "volume:transfer:list")
        r.add(s, "GET", f"{p}/{base}/detail", gate(list_transfers), "volume:transfer:list")
        r.add(s, "POST", f"{p}/{base}", gate(create_transfer), "volume:transfer:create")
        r.add(s, "GET", f"{p}/{base}/{{id}}", gate(get_transfer), "volume:transfer:get")
        r.add(s, "DELETE", f"{p}/{base}/{{id}}", gate(delete_transfer), "volume:transfer:delete")
        r.add(s, "POST", f"{p}/{base}/{{id}}/accept", gate(accept_transfer), "volume:transfer:accept")
