"""Nova's volume proxy APIs (removed at microversion 2.36): ``os-volumes`` and ``os-snapshots`` over
Cinder's model, in Nova's camelCase shapes, and ``os-tenant-networks`` over Neutron's."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import invalid, mv
from cloudtwin.services.nova.proxies import no_route
from cloudtwin.services.nova.volumes import offset_page

_GONE = "The resource could not be found."


def _cinder(call: Call) -> Any:
    if mv(call, 2, 36):
        raise ApiError(404, _GONE)
    assert call.region is not None
    return call.region.cinder


def _volume_doc(call: Call, v: Any) -> dict[str, Any]:
    cinder = _cinder(call)
    attachments = [{"id": a.volume_id, "volumeId": a.volume_id, "serverId": a.server_id, "device": a.device}
                   for a in cinder.attachments_of_volume(v.id) if a.server_id]
    return {"id": v.id, "status": cinder.status(v), "size": v.size, "availabilityZone": v.availability_zone,
            "createdAt": wire.iso(v.created_at), "displayName": v.name, "displayDescription": v.description,
            "volumeType": v.volume_type, "snapshotId": v.snapshot_id, "metadata": dict(v.metadata),
            "attachments": attachments or [{}]}


def _volume(call: Call) -> Any:
    return _cinder(call).get_volume(None if is_admin(call) else call.project_id, call.params["id"])


async def list_volumes(call: Call) -> web.Response:
    if call.request.path.endswith("/os-volumes/"):     # an empty volume id, not the list
        raise ApiError(404, _GONE)
    items = offset_page(call, _cinder(call).volumes_of(call.project_id))
    return wire.json_response(200, {"volumes": [_volume_doc(call, v) for v in items]})


async def get_volume(call: Call) -> web.Response:
    return wire.json_response(200, {"volume": _volume_doc(call, _volume(call))})


async def create_volume(call: Call) -> web.Response:
    cinder = _cinder(call)
    body = call.body("volume")
    size = body.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise invalid("size", size, f"{size!r} is not a positive integer")
    for key in ("display_name", "display_description", "volume_type", "availability_zone", "snapshot_id"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise invalid(key, body[key], f"{body[key]!r} is not of type 'string'")
    md = body.get("metadata") or {}
    if not isinstance(md, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in md.items()):
        raise invalid("metadata", md, "a map of strings")
    assert call.token is not None
    snapshot = cinder.get_snapshot(call.project_id, body["snapshot_id"]) if body.get("snapshot_id") else None
    v = cinder.create_volume(call.project_id, call.token.user_id, size=size, name=body.get("display_name"),
                             description=body.get("display_description"), volume_type=body.get("volume_type"),
                             zone=body.get("availability_zone"), metadata=md, snapshot=snapshot)
    return wire.json_response(200, {"volume": _volume_doc(call, v)})


async def delete_volume(call: Call) -> web.Response:
    _cinder(call).delete_volume(_volume(call))
    return wire.json_response(202)


def _snapshot_doc(call: Call, s: Any) -> dict[str, Any]:
    return {"id": s.id, "volumeId": s.volume_id, "status": _cinder(call).snapshot_status(s), "size": s.size,
            "createdAt": wire.iso(s.created_at), "displayName": s.name, "displayDescription": s.description}


def _snapshot(call: Call) -> Any:
    return _cinder(call).get_snapshot(None if is_admin(call) else call.project_id, call.params["id"])


async def list_snapshots(call: Call) -> web.Response:
    items = offset_page(call, _cinder(call).snapshots_of(call.project_id))
    return wire.json_response(200, {"snapshots": [_snapshot_doc(call, s) for s in items]})


async def get_snapshot(call: Call) -> web.Response:
    return wire.json_response(200, {"snapshot": _snapshot_doc(call, _snapshot(call))})


async def create_snapshot(call: Call) -> web.Response:
    cinder = _cinder(call)
    body = call.body("snapshot")
    vid = body.get("volume_id")
    if not isinstance(vid, str) or not vid:
        raise invalid("volume_id", vid, "'volume_id' is a required property")
    force = wire.boolean(body.get("force", False))
    if force is None:
        raise invalid("force", body.get("force"), "not a boolean")
    try:
        v = cinder.get_volume(call.project_id, vid)
    except ApiError:
        raise ApiError(404, f"Volume {vid} could not be found.") from None
    assert call.token is not None
    s = cinder.create_snapshot(v, call.token.user_id, name=body.get("display_name"),
                               description=body.get("display_description"), force=force, metadata={})
    return wire.json_response(200, {"snapshot": _snapshot_doc(call, s)})


async def delete_snapshot(call: Call) -> web.Response:
    _cinder(call).delete_snapshot(_snapshot(call))
    return wire.json_response(202)


# ---- assisted volume snapshots (Cinder's call-back for file-based backends) ----------------------------

def _attached_volume(call: Call, volume_id: Any) -> Any:
    assert call.region is not None
    cinder = call.region.cinder
    if not isinstance(volume_id, str) or not any(a.server_id for a in cinder.attachments_of_volume(volume_id)):
        raise ApiError(404, f"Volume {volume_id} is not attached to any instance.")
    return cinder.get_volume(None, volume_id)


async def create_assisted_snapshot(call: Call) -> web.Response:
    body = call.body("snapshot")
    info = body.get("create_info")
    if not isinstance(info, dict) or not isinstance(info.get("snapshot_id"), str) \
            or info.get("type") not in ("qcow2",) or not isinstance(info.get("new_file"), str):
        raise invalid("create_info", info, "'snapshot_id', 'type' (qcow2) and 'new_file' are required")
    v = _attached_volume(call, body.get("volume_id"))
    return wire.json_response(200, {"snapshot": {"id": info["snapshot_id"], "volumeId": v.id}})


async def delete_assisted_snapshot(call: Call) -> web.Response:
    try:
        info = json.loads(call.query.get("delete_info") or "")
    except ValueError:
        raise ApiError(400, "Invalid delete_info: a JSON object with 'volume_id' is required.") from None
    if not isinstance(info, dict):
        raise ApiError(400, "Invalid delete_info: a JSON object with 'volume_id' is required.")
    _attached_volume(call, info.get("volume_id"))
    return wire.json_response(204)


# ---- tenant networks ---------------------------------------------------------------------------------

def _network_doc(call: Call, net: Any) -> dict[str, Any]:
    assert call.region is not None
    neutron = call.region.neutron
    cidr = next((sn.cidr for sid in getattr(net, "subnets", []) if (sn := neutron.subnets.get(sid)) is not None
                 and ":" not in sn.cidr), None)
    return {"id": net.id, "label": net.name, "cidr": cidr}


async def list_tenant_networks(call: Call) -> web.Response:
    _cinder(call)      # the same 2.36 cut-off
    assert call.region is not None
    nets = call.region.neutron.visible_networks(call.project_id)
    return wire.json_response(200, {"networks": [_network_doc(call, n) for n in nets]})


async def get_tenant_network(call: Call) -> web.Response:
    _cinder(call)
    assert call.region is not None
    try:
        net = call.region.neutron.get_network(call.project_id, call.params["id"])
    except ApiError:
        raise ApiError(404, "Network not found") from None
    return wire.json_response(200, {"network": _network_doc(call, net)})


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "GET", "/v2.1/os-volumes", list_volumes, "compute:os_volume:list")
    r.add(s, "GET", "/v2.1/os-volumes/detail", list_volumes, "compute:os_volume:list")
    r.add(s, "POST", "/v2.1/os-volumes", create_volume, "compute:os_volume:create")
    r.add(s, "GET", "/v2.1/os-volumes/{id}", get_volume, "compute:os_volume:get")
    r.add(s, "DELETE", "/v2.1/os-volumes/{id}", delete_volume, "compute:os_volume:delete")
    r.add(s, "DELETE", "/v2.1/os-volumes", no_route, "compute:os_volume:delete")
    r.add(s, "GET", "/v2.1/os-snapshots", list_snapshots, "compute:os_snapshot:list")
    r.add(s, "GET", "/v2.1/os-snapshots/detail", list_snapshots, "compute:os_snapshot:list")
    r.add(s, "POST", "/v2.1/os-snapshots", create_snapshot, "compute:os_snapshot:create")
    r.add(s, "GET", "/v2.1/os-snapshots/{id}", get_snapshot, "compute:os_snapshot:get")
    r.add(s, "DELETE", "/v2.1/os-snapshots/{id}", delete_snapshot, "compute:os_snapshot:delete")
    r.add(s, "POST", "/v2.1/os-assisted-volume-snapshots", create_assisted_snapshot,
          "compute:assisted_volume_snapshot:create")
    r.add(s, "DELETE", "/v2.1/os-assisted-volume-snapshots/{id}", delete_assisted_snapshot,
          "compute:assisted_volume_snapshot:delete")
    r.add(s, "GET", "/v2.1/os-tenant-networks", list_tenant_networks, "compute:os_tenant_network:list")
    r.add(s, "GET", "/v2.1/os-tenant-networks/{id}", get_tenant_network, "compute:os_tenant_network:get")
