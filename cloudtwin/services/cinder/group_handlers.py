"""Cinder v3 wire format for generic volume groups: group types and their group specs (3.11, admin
writes), groups (3.13; from a group or a group snapshot 3.14; reset_status 3.20; the member volumes
3.25), group snapshots (3.14; reset_status 3.19)."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.cinder.handlers import _cinder, _mv, _opt_str, _project, _stamp
from cloudtwin.services.cinder.resources import Group, GroupSnapshot, GroupType
from cloudtwin.services.cinder.snapshot_handlers import _owner, _page, _scope, _sorted
from cloudtwin.services.cinder.type_handlers import one_key_body
from cloudtwin.services.cinder.types import check_specs


def _since(call: Call, minor: int) -> None:
    """Group APIs exist from a microversion on; below it Cinder has no such resource."""
    _project(call)
    if not _mv(call, 3, minor):
        raise ApiError(404, "The resource could not be found.")


def _boolean(value: Any, key: str) -> bool:
    parsed = wire.boolean(value)
    if parsed is None:
        raise ApiError(400, f"Invalid input received: Invalid value '{value}' for {key}.")
    return parsed


# ---- group types ------------------------------------------------------------------------------------

def render_group_type(gt: GroupType) -> dict[str, Any]:
    return {"id": gt.id, "name": gt.name, "description": gt.description, "is_public": gt.is_public,
            "group_specs": dict(gt.group_specs)}


def _group_type_of(call: Call) -> GroupType:
    _since(call, 11)
    return _cinder(call).get_group_type(call.params["id"], project_id=None if is_admin(call) else call.project_id)


async def list_group_types(call: Call) -> web.Response:
    _since(call, 11)
    raw = call.query.get("is_public")
    is_public = None if raw is not None and raw.lower() == "none" else wire.truthy(raw) if raw else True
    items = _cinder(call).visible_group_types(is_admin(call), is_public)
    q = call.query
    spec = q.get("sort") or (f"{q['sort_key']}:{q.get('sort_dir', 'asc')}" if "sort_key" in q else "")
    for part in reversed([p for p in spec.split(",") if p]):
        key, _, direction = part.partition(":")
        if key.strip() not in ("name", "id", "description"):
            raise ApiError(400, f"Invalid input received: Invalid sort key {key}")
        items = sorted(items, key=lambda t, k=key.strip(): getattr(t, k) or "",
                       reverse=direction.strip().lower() == "desc")
    return wire.json_response(200, {"group_types": [render_group_type(t) for t in items]})


async def get_group_type(call: Call) -> web.Response:
    if call.params["id"] == "default":
        _since(call, 11)
        c = _cinder(call)
        gt = next((t for t in c.group_types.values() if t.builtin), None)
        if gt is None:
            raise ApiError(404, "Default group type could not be found.")
        return wire.json_response(200, {"group_type": render_group_type(gt)})
    return wire.json_response(200, {"group_type": render_group_type(_group_type_of(call))})


async def create_group_type(call: Call) -> web.Response:
    _since(call, 11)
    body = call.body("group_type")
    gt = _cinder(call).create_group_type(body.get("name"), body.get("description"),
                                         _boolean(body.get("is_public", True), "is_public"),
                                         check_specs(body.get("group_specs") or {}, "group_specs"))
    return wire.json_response(202, {"group_type": render_group_type(gt)})


async def update_group_type(call: Call) -> web.Response:
    gt = _group_type_of(call)
    body = call.body("group_type")
    is_public = _boolean(body["is_public"], "is_public") if body.get("is_public") is not None else None
    _cinder(call).update_group_type(gt, name=body.get("name"), description=body.get("description", ...),
                                    is_public=is_public)
    return wire.json_response(200, {"group_type": render_group_type(gt)})


async def delete_group_type(call: Call) -> web.Response:
    _cinder(call).delete_group_type(_group_type_of(call))
    return wire.json_response(202)


async def list_group_specs(call: Call) -> web.Response:
    return wire.json_response(200, {"group_specs": dict(_group_type_of(call).group_specs)})


async def create_group_specs(call: Call) -> web.Response:
    gt = _group_type_of(call)
    body = call.body()
    if not isinstance(body, dict) or "group_specs" not in body:
        raise ApiError(400, "Invalid input received: 'group_specs' is required.")
    specs = check_specs(body["group_specs"], "group_specs")
    gt.group_specs.update(specs)
    return wire.json_response(202, {"group_specs": specs})


def _spec_key(gt: GroupType, key: str) -> str:
    if key not in gt.group_specs:
        raise ApiError(404, f"Group Type {gt.id} has no specs with key {key}.")
    return key


async def get_group_spec(call: Call) -> web.Response:
    gt = _group_type_of(call)
    key = _spec_key(gt, call.params["key"])
    return wire.json_response(200, {key: gt.group_specs[key]})


async def update_group_spec(call: Call) -> web.Response:
    gt = _group_type_of(call)
    key = call.params["key"]
    gt.group_specs.update(check_specs(one_key_body(call), "group_specs"))
    return wire.json_response(200, {key: gt.group_specs[key]})


async def delete_group_spec(call: Call) -> web.Response:
    gt = _group_type_of(call)
    del gt.group_specs[_spec_key(gt, call.params["key"])]
    return wire.json_response(202)


# ---- groups -----------------------------------------------------------------------------------------

def render_group(call: Call, g: Group, *, detail: bool = True) -> dict[str, Any]:
    c = _cinder(call)
    out: dict[str, Any] = {"id": g.id, "name": g.name}
    if not detail:
        return out
    out.update({"status": c.group_status(g), "description": g.description,
                "availability_zone": g.availability_zone, "created_at": _stamp(g.created_at),
                "group_type": g.group_type_id, "volume_types": list(g.volume_type_ids),
                "group_snapshot_id": g.group_snapshot_id, "source_group_id": g.source_group_id})
    if _mv(call, 3, 25) and wire.truthy(call.query.get("list_volume")):
        out["volumes"] = [v.id for v in c.group_volumes(g)]
    if _mv(call, 3, 38):
        out["replication_status"] = "disabled"
    if _mv(call, 3, 58):
        out["project_id"] = g.project_id
    return out


def _group_of(call: Call) -> Group:
    _since(call, 13)
    return _cinder(call).get_group(_owner(call), call.params["id"])


def _listing(call: Call, items: list[Any], status: Callable[[Any], str], keys: tuple[str, ...], plural: str,
             detail: bool, render: Callable[..., dict[str, Any]]) -> web.Response:
    """A list of groups or group snapshots: filtered by ``keys`` and status, sorted, paged."""
    q = call.query
    for key in keys:
        if key in q:
            items = [i for i in items if getattr(i, key) == q[key]]
    if "status" in q:
        items = [i for i in items if status(i) == q["status"]]
    path = f"/{plural}/detail" if detail else f"/{plural}"
    return _page(call, _sorted(items, q, status), plural, path, lambda i: render(call, i, detail=detail))


def _list_groups(call: Call, detail: bool) -> web.Response:
    _since(call, 13)
    c = _cinder(call)
    return _listing(call, c.groups_of(_scope(call)), c.group_status, ("name",), "groups", detail, render_group)


async def list_groups(call: Call) -> web.Response:
    return _list_groups(call, False)


async def list_groups_detail(call: Call) -> web.Response:
    return _list_groups(call, True)


async def get_group(call: Call) -> web.Response:
    return wire.json_response(200, {"group": render_group(call, _group_of(call))})


async def create_group(call: Call) -> web.Response:
    _since(call, 13)
    body = call.body("group")
    c = _cinder(call)
    zone = c.resolve_zone(_opt_str(body, "availability_zone"))
    g = c.create_group(call.project_id, group_type=body.get("group_type"), volume_types=body.get("volume_types"),
                       name=_opt_str(body, "name"), description=_opt_str(body, "description"), zone=zone)
    return wire.json_response(202, {"group": render_group(call, g, detail=False)})


def _id_list(body: dict[str, Any], key: str) -> list[str]:
    raw = body.get(key)
    if raw in (None, ""):
        return []
    if not isinstance(raw, str):
        raise ApiError(400, f"Invalid input received: {key} must be a comma-separated string of volume ids.")
    return [part.strip() for part in raw.split(",") if part.strip()]


async def update_group(call: Call) -> web.Response:
    g = _group_of(call)
    body = call.body("group")
    _cinder(call).update_group(g, name=_opt_str(body, "name"),
                               description=_opt_str(body, "description") if "description" in body else ...,
                               add=_id_list(body, "add_volumes"), remove=_id_list(body, "remove_volumes"))
    return wire.json_response(202)


async def group_action(call: Call) -> web.Response:
    g = _group_of(call)
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Invalid request body: one action is required.")
    (name, arg), = body.items()
    c = _cinder(call)
    if name == "delete":
        arg = arg if isinstance(arg, dict) else {}
        c.delete_group(g, delete_volumes=_boolean(arg.get("delete-volumes", False), "delete-volumes"))
    elif name == "reset_status" and _mv(call, 3, 20):
        if not isinstance(arg, dict) or not isinstance(arg.get("status"), str):
            raise ApiError(400, "Invalid input received: 'status' is a required property.")
        c.reset_group_status(g, arg["status"])
    else:
        raise ApiError(400, f"There is no such action: {name}")
    return wire.json_response(202)


async def create_group_from_source(call: Call) -> web.Response:
    _since(call, 14)
    body = call.body("create-from-src")
    c = _cinder(call)
    gs_ref, src_ref = _opt_str(body, "group_snapshot_id"), _opt_str(body, "source_group_id")
    if bool(gs_ref) == bool(src_ref):
        raise ApiError(400, "Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be "
                            "provided to create group from source.")
    owner = _owner(call)
    assert call.token is not None
    g = c.create_group_from_source(call.project_id, call.token.user_id,
                                   source=c.get_group(owner, src_ref) if src_ref else None,
                                   group_snapshot=c.get_group_snapshot(owner, gs_ref) if gs_ref else None,
                                   name=_opt_str(body, "name"), description=_opt_str(body, "description"))
    return wire.json_response(202, {"group": render_group(call, g, detail=False)})


# ---- group snapshots ----------------------------------------------------------------------------------

def render_group_snapshot(call: Call, gs: GroupSnapshot, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": gs.id, "name": gs.name}
    if not detail:
        return out
    out.update({"status": _cinder(call).group_snapshot_status(gs), "description": gs.description,
                "created_at": _stamp(gs.created_at), "group_id": gs.group_id, "group_type_id": gs.group_type_id})
    if _mv(call, 3, 58):
        out["project_id"] = gs.project_id
    return out


def _group_snapshot_of(call: Call) -> GroupSnapshot:
    _since(call, 14)
    return _cinder(call).get_group_snapshot(_owner(call), call.params["id"])


def _list_group_snapshots(call: Call, detail: bool) -> web.Response:
    _since(call, 14)
    c = _cinder(call)
    return _listing(call, c.group_snapshots_of(_scope(call)), c.group_snapshot_status, ("name", "group_id"),
                    "group_snapshots", detail, render_group_snapshot)


async def list_group_snapshots(call: Call) -> web.Response:
    return _list_group_snapshots(call, False)


async def list_group_snapshots_detail(call: Call) -> web.Response:
    return _list_group_snapshots(call, True)


async def get_group_snapshot(call: Call) -> web.Response:
    return wire.json_response(200, {"group_snapshot": render_group_snapshot(call, _group_snapshot_of(call))})


async def create_group_snapshot(call: Call) -> web.Response:
    _since(call, 14)
    body = call.body("group_snapshot")
    c = _cinder(call)
    group_ref = _opt_str(body, "group_id", max_len=64)
    if not group_ref:
        raise ApiError(400, "Invalid input received: 'group_id' must be specified")
    assert call.token is not None
    gs = c.create_group_snapshot(c.get_group(_owner(call), group_ref), call.token.user_id,
                                 name=_opt_str(body, "name"), description=_opt_str(body, "description"))
    doc = render_group_snapshot(call, gs, detail=False)
    doc["group_type_id"] = gs.group_type_id
    return wire.json_response(202, {"group_snapshot": doc})


async def delete_group_snapshot(call: Call) -> web.Response:
    _cinder(call).delete_group_snapshot(_group_snapshot_of(call))
    return wire.json_response(202)


async def group_snapshot_action(call: Call) -> web.Response:
    gs = _group_snapshot_of(call)
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Invalid request body: one action is required.")
    (name, arg), = body.items()
    if name != "reset_status" or not _mv(call, 3, 19):
        raise ApiError(400, f"There is no such action: {name}")
    if not isinstance(arg, dict) or not isinstance(arg.get("status"), str):
        raise ApiError(400, "Invalid input received: 'status' is a required property.")
    _cinder(call).reset_group_snapshot_status(gs, arg["status"])
    return wire.json_response(202)


def add_routes(r: Router) -> None:
    s, p = "volume", "/v3/{project_id}"
    r.add(s, "GET", f"{p}/group_types", list_group_types, "volume:group_type:list")
    r.add(s, "POST", f"{p}/group_types", create_group_type, "volume:group_type:create")
    r.add(s, "GET", f"{p}/group_types/{{id}}", get_group_type, "volume:group_type:get")
    r.add(s, "PUT", f"{p}/group_types/{{id}}", update_group_type, "volume:group_type:update")
    r.add(s, "DELETE", f"{p}/group_types/{{id}}", delete_group_type, "volume:group_type:delete")
    r.add(s, "GET", f"{p}/group_types/{{id}}/group_specs", list_group_specs, "volume:group_type:get")
    r.add(s, "POST", f"{p}/group_types/{{id}}/group_specs", create_group_specs, "volume:group_type:spec_create")
    r.add(s, "GET", f"{p}/group_types/{{id}}/group_specs/{{key}}", get_group_spec, "volume:group_type:get")
    r.add(s, "PUT", f"{p}/group_types/{{id}}/group_specs/{{key}}", update_group_spec,
          "volume:group_type:spec_update")
    r.add(s, "DELETE", f"{p}/group_types/{{id}}/group_specs/{{key}}", delete_group_spec,
          "volume:group_type:spec_delete")
    r.add(s, "GET", f"{p}/groups", list_groups, "volume:group:list")
    r.add(s, "GET", f"{p}/groups/detail", list_groups_detail, "volume:group:list")
    r.add(s, "POST", f"{p}/groups", create_group, "volume:group:create")
    r.add(s, "POST", f"{p}/groups/action", create_group_from_source, "volume:group:create_from_src")
    r.add(s, "GET", f"{p}/groups/{{id}}", get_group, "volume:group:get")
    r.add(s, "PUT", f"{p}/groups/{{id}}", update_group, "volume:group:update")
    r.add(s, "POST", f"{p}/groups/{{id}}/action", group_action, "volume:group:action")
    r.add(s, "GET", f"{p}/group_snapshots", list_group_snapshots, "volume:group_snapshot:list")
    r.add(s, "GET", f"{p}/group_snapshots/detail", list_group_snapshots_detail, "volume:group_snapshot:list")
    r.add(s, "POST", f"{p}/group_snapshots", create_group_snapshot, "volume:group_snapshot:create")
    r.add(s, "GET", f"{p}/group_snapshots/{{id}}", get_group_snapshot, "volume:group_snapshot:get")
    r.add(s, "DELETE", f"{p}/group_snapshots/{{id}}", delete_group_snapshot, "volume:group_snapshot:delete")
    r.add(s, "POST", f"{p}/group_snapshots/{{id}}/action", group_snapshot_action, "volume:group_snapshot:action")
