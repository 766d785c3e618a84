"""Cinder v3 wire format for managing existing storage (admin): os-volume-manage and os-snapshot-manage
(and their 3.8 names ``manageable_volumes``/``manageable_snapshots``, with the lists of what a backend
holds)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.cinder.handlers import View, _bool, _cinder, _metadata, _mv, _opt_str, _project
from cloudtwin.services.cinder.snapshot_handlers import _owner, render_snapshot


async def manage_volume(call: Call) -> web.Response:
    _project(call)
    body = call.body("volume")
    assert call.token is not None
    bootable = _bool(body["bootable"], "bootable") if body.get("bootable") is not None else False
    v = _cinder(call).manage_volume(call.project_id, call.token.user_id, host=body.get("host"), ref=body.get("ref"),
                                    name=_opt_str(body, "name"), description=_opt_str(body, "description"),
                                    volume_type=_opt_str(body, "volume_type"),
                                    zone=_opt_str(body, "availability_zone"),
                                    metadata=_metadata(body.get("metadata")), bootable=bootable)
    return wire.json_response(202, {"volume": View(call).volume(v, extended=False)})


async def manage_snapshot(call: Call) -> web.Response:
    _project(call)
    body = call.body("snapshot")
    c = _cinder(call)
    vid = _opt_str(body, "volume_id", max_len=64)
    if not vid:
        raise ApiError(400, "Invalid input received: 'volume_id' is a required property.")
    assert call.token is not None
    s = c.manage_snapshot(c.get_volume(_owner(call), vid), call.token.user_id, ref=body.get("ref"),
                          name=_opt_str(body, "name"), description=_opt_str(body, "description"),
                          metadata=_metadata(body.get("metadata")))
    return wire.json_response(202, {"snapshot": render_snapshot(call, s, detail=False)})


_SUMMARY = ("reference", "size", "safe_to_manage")


def _manageable(call: Call, key: str, items: list[dict[str, Any]], detail: bool) -> web.Response:
    if not _mv(call, 3, 8):
        raise ApiError(404, "The resource could not be found.")
    if not detail:
        items = [{k: item[k] for k in (*_SUMMARY, "source_reference") if k in item} for item in items]
    return wire.json_response(200, {key: items})


async def list_manageable_volumes(call: Call) -> web.Response:
    _project(call)
    detail = call.request.path.endswith("/detail")
    return _manageable(call, "manageable-volumes", _cinder(call).manageable_volumes(call.query.get("host")), detail)


async def list_manageable_snapshots(call: Call) -> web.Response:
    _project(call)
    detail = call.request.path.endswith("/detail")
    return _manageable(call, "manageable-snapshots", _cinder(call).manageable_snapshots(call.query.get("host")),
                       detail)


def _since_38(handler: Any) -> Any:
    async def gated(call: Call) -> web.Response:
        if not _mv(call, 3, 8):
            raise ApiError(404, "The resource could not be found.")
        return await handler(call)   # type: ignore[no-any-return]
    return gated


def add_routes(r: Router) -> None:
    s, p = "volume", "/v3/{project_id}"
    r.add(s, "POST", f"{p}/os-volume-manage", manage_volume, "volume:manage:volume")
    r.add(s, "POST", f"{p}/manageable_volumes", _since_38(manage_volume), "volume:manage:volume")
    r.add(s, "GET", f"{p}/manageable_volumes", list_manageable_volumes, "volume:manage:volume_list")
    r.add(s, "GET", f"{p}/manageable_volumes/detail", list_manageable_volumes, "volume:manage:volume_list")
    r.add(s, "POST", f"{p}/os-snapshot-manage", manage_snapshot, "volume:manage:snapshot")
    r.add(s, "POST", f"{p}/manageable_snapshots", _since_38(manage_snapshot), "volume:manage:snapshot")
    r.add(s, "GET", f"{p}/manageable_snapshots", list_manageable_snapshots, "volume:manage:snapshot_list")
    r.add(s, "GET", f"{p}/manageable_snapshots/detail", list_manageable_snapshots, "volume:manage:snapshot_list")
