"""Nova's volume wire format: ``block_device_mapping_v2`` in a server create, and a server's volume
attachments (``/servers/{id}/os-volume_attachments``), served over the region's Cinder.

Shapes by microversion: 2.49 ``tag`` accepted, 2.70 ``tag`` shown, 2.79 ``delete_on_termination``,
2.89 ``attachment_id`` and ``bdm_uuid`` instead of ``id``.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.block_devices import (DESTINATION_TYPES, ROOT_DEVICE, SOURCE_TYPES, BlockDevice,
                                                   next_device)

_DEVICE = re.compile(r"^/dev/[a-z]+[a-z0-9]*$")
# the vm_states that take an attach or a detach (Nova's check_instance_state), with no task running
ATTACH_VM_STATES = ("active", "paused", "stopped", "suspended")
SHELVED_VM_STATES = ("shelved", "shelved_offloaded")     # from microversion 2.20


def _invalid(field: str, value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute {field}. Value: {value}. {why}")


def _optional_int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v.strip()) <= 10:
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or abs(v) > 2 ** 31 - 1:
        raise _invalid(key, v, f"{str(v)[:40]!r} is not an integer of at most 32 bits")
    return v


def _optional_bool(d: dict[str, Any], key: str) -> bool:
    v = d.get(key, False)
    if v is None:
        return False
    parsed = wire.boolean(v)
    if parsed is None:
        raise _invalid(key, v, f"{v!r} is not of type 'boolean', 'string'")
    return parsed


def _optional_str(d: dict[str, Any], key: str, max_len: int = 255) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > max_len:
        raise _invalid(key, v, f"{v!r} is not a string of at most {max_len} characters")
    return v


def _device_name(d: dict[str, Any]) -> str | None:
    name = _optional_str(d, "device_name")
    if not name:
        return None
    if not name.startswith("/dev/"):
        name = "/dev/" + name
    if not _DEVICE.match(name):
        raise ApiError(400, f"Block Device Mapping is Invalid: Device name {name} contains invalid characters.")
    return name


def parse_block_devices(call: Call, body: dict[str, Any]) -> list[BlockDevice]:
    """``block_device_mapping_v2`` (and the older ``block_device_mapping`` of volume ids) as entries."""
    out: list[BlockDevice] = []
    raw = body.get("block_device_mapping_v2")
    if raw is not None:
        if not isinstance(raw, list) or not all(isinstance(d, dict) for d in raw):
            raise _invalid("block_device_mapping_v2", raw, f"{raw!r} is not a list of objects")
        for d in raw:
            source = d.get("source_type")
            if source not in SOURCE_TYPES:
                raise _invalid("source_type", source, f"{source!r} is not one of {list(SOURCE_TYPES)}")
            dest = d.get("destination_type") or ("volume" if source in ("volume", "snapshot") else "local")
            if dest not in DESTINATION_TYPES:
                raise _invalid("destination_type", dest, f"{dest!r} is not one of {list(DESTINATION_TYPES)}")
            boot_index = _optional_int(d, "boot_index")
            size = _optional_int(d, "volume_size")
            if size is not None and size < 0:
                raise _invalid("volume_size", size, f"{size!r} is less than the minimum of 0")
            vtype = _optional_str(d, "volume_type") if call.microversion >= (2, 67) else None
            out.append(BlockDevice(source_type=source, destination_type=dest, uuid=_optional_str(d, "uuid"),
                                   boot_index=boot_index if boot_index is not None and boot_index >= 0 else None,
                                   volume_size=size or None, device_name=_device_name(d),
                                   delete_on_termination=_optional_bool(d, "delete_on_termination"),
                                   volume_type=vtype))
    legacy = body.get("block_device_mapping")
    if legacy is not None:
        if raw is not None:
            raise ApiError(400, "Using different block_device_mapping syntaxes is not allowed")
        if not isinstance(legacy, list) or not all(isinstance(d, dict) for d in legacy):
            raise _invalid("block_device_mapping", legacy, f"{legacy!r} is not a list of objects")
        for d in legacy:
            name = _device_name(d)
            out.append(BlockDevice(source_type="volume", destination_type="volume",
                                   uuid=_optional_str(d, "volume_id"), volume_size=_optional_int(d, "volume_size"),
                                   boot_index=0 if name in (ROOT_DEVICE, "/dev/sda") else None,
                                   device_name=name,
                                   delete_on_termination=_optional_bool(d, "delete_on_termination")))
    return out


# ---- os-volume_attachments --------------------------------------------------------------------------

def _server(call: Call) -> Any:
    assert call.region is not None
    return call.region.nova.server_for(call.project_id, call.params["id"], admin=is_admin(call))


def _attachment_doc(call: Call, a: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"device": a.device, "serverId": a.server_id, "volumeId": a.volume_id}
    if call.microversion < (2, 89):
        out["id"] = a.volume_id
    if call.microversion >= (2, 70):
        out["tag"] = None
    if call.microversion >= (2, 79):
        out["delete_on_termination"] = a.delete_on_termination
    if call.microversion >= (2, 89):
        out["attachment_id"] = a.id
        out["bdm_uuid"] = stable_id("bdm", a.id)
    return out


def _check_server_state(call: Call, s: Any, verb: str) -> None:
    assert call.region is not None
    attrs = call.region.nova.life.attrs(s.state)
    vm_state = attrs.get("vm_state", s.state.lower())
    allowed = ATTACH_VM_STATES + (SHELVED_VM_STATES if call.microversion >= (2, 20) else ())
    if vm_state not in allowed:       # Nova's check_instance_state: vm_state, then task_state
        raise ApiError(409, f"Cannot '{verb}' instance {s.id} while it is in vm_state {vm_state}")
    if attrs.get("task_state"):
        raise ApiError(409, f"Cannot '{verb}' instance {s.id} while it is in task_state {attrs['task_state']}")
    if s.locked:
        raise ApiError(409, f"Instance {s.id} is locked")


def offset_page(call: Call, items: list[Any]) -> list[Any]:
    """Nova's ``offset`` / ``limit`` paging (volume attachments and the volume proxies)."""
    q = call.query
    try:
        offset = wire.count(q.get("offset") or "0")
        limit = wire.count(q["limit"]) if q.get("limit") else len(items)
    except ValueError:
        raise ApiError(400, "limit and offset must be integers") from None
    if offset < 0 or limit < 0:
        raise ApiError(400, "limit and offset must be >= 0")
    return items[offset:offset + limit]


async def list_attachments(call: Call) -> web.Response:
    s = _server(call)
    assert call.region is not None
    chunk = offset_page(call, call.region.cinder.attachments_of_server(s.id))
    return wire.json_response(200, {"volumeAttachments": [_attachment_doc(call, a) for a in chunk]})


async def get_attachment(call: Call) -> web.Response:
    s = _server(call)
    assert call.region is not None
    vid = call.params["volume_id"]
    a = next((a for a in call.region.cinder.attachments_of_server(s.id) if a.volume_id == vid), None)
    if a is None:
        raise ApiError(404, f"Volume {vid} is not attached to the instance {s.id}")
    return wire.json_response(200, {"volumeAttachment": _attachment_doc(call, a)})


async def attach_volume(call: Call) -> web.Response:
    body = call.body("volumeAttachment")
    s = _server(call)
    assert call.region is not None
    cinder = call.region.cinder
    vid = body.get("volumeId")
    if not isinstance(vid, str) or not vid:
        raise _invalid("volumeAttachment", body, "'volumeId' is a required property")
    device = _optional_str(body, "device")
    if device is not None and not _DEVICE.match(device):
        raise ApiError(400, f"The supplied device path ({device}) is invalid.")
    delete_on_termination = False
    if call.microversion >= (2, 79):
        delete_on_termination = _optional_bool(body, "delete_on_termination")
    elif "delete_on_termination" in body:
        raise _invalid("volumeAttachment", body, "Additional properties are not allowed "
                                                 "('delete_on_termination' was unexpected)")
    _check_server_state(call, s, "attach_volume")
    call.twin.faults.zone_check(call, s.availability_zone)
    v = cinder.get_volume(call.project_id, vid)
    used = {ROOT_DEVICE} | {a.device for a in cinder.attachments_of_server(s.id)}
    if device in used:
        raise ApiError(400, f"The supplied device path ({device}) is in use.")
    a = cinder.attach_to_server(v, s.id, device or next_device(used), host=s.host,
                                delete_on_termination=delete_on_termination)
    return wire.json_response(200, {"volumeAttachment": _attachment_doc(call, a)})


async def detach_volume(call: Call) -> web.Response:
    s = _server(call)
    assert call.region is not None
    _check_server_state(call, s, "detach_volume")
    call.twin.faults.zone_check(call, s.availability_zone)
    vid = call.params["volume_id"]
    cinder = call.region.cinder
    if not any(a.volume_id == vid for a in cinder.attachments_of_server(s.id)):
        raise ApiError(404, f"Volume {vid} is not attached to the instance {s.id}")
    cinder.detach_from_server(s.id, vid)
    return wire.json_response(202)


async def update_attachment(call: Call) -> web.Response:
    """``PUT .../os-volume_attachments/{volume_id}``: swap to another volume, or (2.85) change
    ``delete_on_termination`` of the same one."""
    body = call.body("volumeAttachment")
    s = _server(call)
    assert call.region is not None
    cinder = call.region.cinder
    vid = call.params["volume_id"]
    new_id = body.get("volumeId")
    if not isinstance(new_id, str) or not new_id:
        raise _invalid("volumeAttachment", body, "'volumeId' is a required property")
    old = next((a for a in cinder.attachments_of_server(s.id) if a.volume_id == vid), None)
    if old is None:
        raise ApiError(404, f"Volume {vid} is not attached to the instance {s.id}")
    _check_server_state(call, s, "swap_volume")
    if new_id == vid:
        if call.microversion < (2, 85):
            raise ApiError(400, "The volume to swap to is the attached one.")
        if "delete_on_termination" in body:
            old.delete_on_termination = _optional_bool(body, "delete_on_termination")
        return wire.json_response(202)
    new = cinder.get_volume(call.project_id, new_id)
    device = old.device
    cinder.detach_from_server(s.id, vid)
    cinder.attach_to_server(new, s.id, device, host=s.host, delete_on_termination=old.delete_on_termination)
    return wire.json_response(202)


def add_routes(r: Router) -> None:
    s = "compute"
    base = "/v2.1/servers/{id}/os-volume_attachments"
    r.add(s, "GET", base, list_attachments, "compute:volume_attachment:list")
    r.add(s, "POST", base, attach_volume, "compute:volume_attachment:create")
    r.add(s, "GET", base + "/{volume_id}", get_attachment, "compute:volume_attachment:get")
    r.add(s, "DELETE", base + "/{volume_id}", detach_volume, "compute:volume_attachment:delete")
    r.add(s, "PUT", base + "/{volume_id}", update_attachment, "compute:volume_attachment:update")
