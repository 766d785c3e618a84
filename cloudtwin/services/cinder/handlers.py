"""Cinder v3 wire format: version documents, volumes and their actions, attachments, volume types,
availability zones, limits, quotas and extensions.

Every project-scoped route is ``/v3/{project_id}/...``, as in Cinder's catalog URL; a project id that
is not the token's is refused as Cinder refuses it. Shapes follow the negotiated microversion
(``call.microversion``): 3.13 ``group_id``, 3.21 ``provider_id``, 3.27 attachments, 3.42 extending an
in-use volume, 3.45 ``count``, 3.48 ``shared_targets``, 3.61 ``cluster_name``, 3.62 the default type,
3.63 ``volume_type_id``, 3.65 ``consumes_quota``.
"""

from __future__ import annotations

import ast
import json
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router
from cloudtwin.services.cinder.models import CinderState
from cloudtwin.services.cinder.resources import Attachment, Volume, VolumeType

MAX_LIMIT = 1000            # Cinder's osapi_max_limit
UPDATED = "2016-02-08T12:20:21Z"
EXTENSIONS = (
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "Expose migration_status as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
    ("OS-SCH-HNT", "Scheduler_hints", "Pass arbitrary key/value pairs to the scheduler."),
)


def _cinder(call: Call) -> CinderState:
    assert call.region is not None
    return call.region.cinder  # type: ignore[no-any-return]


def _mv(call: Call, major: int, minor: int) -> bool:
    return call.microversion >= (major, minor)


def _project(call: Call) -> str:
    """The URL's project id, which must be the token's."""
    pid = call.params.get("project_id", "")
    if pid != call.project_id:
        raise ApiError(400, f"Malformed request URL: URL's project_id '{pid}' doesn't match Context's project_id "
                            f"'{call.project_id}'")
    return pid


def _stamp(ts: float | None) -> str | None:
    """Cinder's timestamps: ``2026-12-07T10:00:00.000000`` (microseconds, no zone)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ts)) + f"{int(ts % 1 * 1e6):06d}"


def _invalid(field: str, value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute {field}. Value: {value}. {why}")


# ---- versions ---------------------------------------------------------------------------------------

def _version_doc(call: Call) -> dict[str, Any]:
    assert call.cloud is not None
    return {"id": "v3.0", "status": "CURRENT", "version": call.cloud.profile.volume_max_microversion,
            "min_version": "3.0", "updated": UPDATED,
            "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{call.base_url()}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


async def versions(call: Call) -> web.Response:
    return wire.json_response(300, {"versions": [_version_doc(call)]})


async def version(call: Call) -> web.Response:
    return wire.json_response(200, {"versions": [_version_doc(call)]})


# ---- rendering --------------------------------------------------------------------------------------

class View:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.cinder = _cinder(call)
        self.base = call.base_url()
        self.pid = call.project_id

    def links(self, kind: str, oid: str, project_id: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{self.base}/v3/{project_id}/{kind}/{oid}"},
                {"rel": "bookmark", "href": f"{self.base}/{project_id}/{kind}/{oid}"}]

    def volume_summary(self, v: Volume) -> dict[str, Any]:
        return {"id": v.id, "name": v.name, "links": self.links("volumes", v.id, v.project_id)}

    def volume(self, v: Volume, *, extended: bool = True) -> dict[str, Any]:
        """A volume's detail view; ``extended`` adds what Cinder's extensions add to GETs (the tenant,
        host and migration attributes for admins, the image metadata for everyone)."""
        c = self.cinder
        attached = [{"server_id": a.server_id, "attachment_id": a.id, "attached_at": _stamp(a.attached_at),
                     "host_name": a.host_name, "volume_id": v.id, "device": a.device, "id": v.id}
                    for a in c.attachments_of_volume(v.id) if a.attach_status == "attached"]
        vtype = next((t for t in c.types.values() if t.name == v.volume_type), None)
        out: dict[str, Any] = {
            "id": v.id, "name": v.name, "status": c.status(v), "size": v.size,
            "availability_zone": v.availability_zone, "created_at": _stamp(v.created_at),
            "updated_at": _stamp(v.updated_at), "description": v.description, "volume_type": v.volume_type,
            "snapshot_id": v.snapshot_id, "source_volid": v.source_volid, "metadata": dict(v.metadata),
            "bootable": "true" if v.bootable else "false", "encrypted": v.encrypted, "multiattach": v.multiattach,
            **({"metadata": {**v.metadata, "readonly": str(v.readonly)}} if v.readonly_set else {}),
            "replication_status": None, "consistencygroup_id": None, "migration_status": None,
            "user_id": v.user_id, "attachments": attached, "links": self.links("volumes", v.id, v.project_id),
        }
        if extended:
            out["os-vol-tenant-attr:tenant_id"] = v.project_id
            if is_admin(self.call):
                out["os-vol-host-attr:host"] = v.host
                out["os-vol-mig-status-attr:migstat"] = v.migration_status
                out["os-vol-mig-status-attr:name_id"] = None
            if v.image_metadata:
                out["volume_image_metadata"] = dict(v.image_metadata)
        out["migration_status"] = v.migration_status
        if _mv(self.call, 3, 13):
            out["group_id"] = v.group_id
        if _mv(self.call, 3, 21):
            out["provider_id"] = None
        if _mv(self.call, 3, 48):
            out["service_uuid"] = None
            out["shared_targets"] = False
        if _mv(self.call, 3, 61):
            out["cluster_name"] = None
        if _mv(self.call, 3, 63):
            out["volume_type_id"] = vtype.id if vtype else None
        if _mv(self.call, 3, 65):
            out["consumes_quota"] = True
        return out

    def attachment(self, a: Attachment, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": a.id, "status": a.attach_status, "instance": a.server_id,
                               "volume_id": a.volume_id}
        if detail:
            out.update({"attached_at": _stamp(a.attached_at), "detached_at": None, "attach_mode": a.attach_mode,
                        "connection_info": self.cinder.connection_info(a)})
        return out


def volume_type_doc(vt: VolumeType) -> dict[str, Any]:
    return {"id": vt.id, "name": vt.name, "description": vt.description, "is_public": vt.is_public,
            "os-volume-type-access:is_public": vt.is_public, "extra_specs": dict(vt.extra_specs),
            "qos_specs_id": None}


# ---- volumes: input ---------------------------------------------------------------------------------

def _opt_str(body: dict[str, Any], key: str, *, max_len: int = 255) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _invalid(key, v, f"{v!r} is not of type 'string', 'null'")
    if len(v) > max_len:
        raise _invalid(key, v, f"{v!r} is too long")
    return v


def _size(value: Any, key: str = "size") -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value)     # longer digit strings exceed any size (and int() refuses 4300+ digits)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 2 ** 31 - 1:
        raise _invalid(key, value, f"{value!r} is not a positive integer")
    return value


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255
                                              and len(v) <= 255 for k, v in value.items()):
        raise _invalid("metadata", value, "metadata is a map of strings (keys 1-255, values <= 255 characters)")
    return dict(value)


def _bool(value: Any, key: str) -> bool:
    parsed = wire.boolean(value)
    if parsed is None:
        raise _invalid(key, value, f"{value!r} is not a boolean")
    return parsed


def _image(call: Call, ref: str) -> Any:
    assert call.region is not None
    image = call.region.glance.find(call.project_id, ref.rstrip("/").rsplit("/", 1)[-1])
    if image is None:
        raise ApiError(400, "Invalid input received: Invalid image identifier or unable to access requested image.")
    if image.status != "active":
        raise ApiError(400, f"Invalid input received: Image {image.id} is not active.")
    return image


# ---- volumes ----------------------------------------------------------------------------------------

def _filtered(call: Call) -> list[Volume]:
    c = _cinder(call)
    q = call.query
    pid = _project(call)
    admin = is_admin(call)
    items = c.all_volumes() if wire.truthy(q.get("all_tenants")) and admin else c.volumes_of(pid)
    if admin and "project_id" in q and wire.truthy(q.get("all_tenants")):
        items = [v for v in items if v.project_id == q["project_id"]]
    if "name" in q:
        items = [v for v in items if v.name == q["name"]]
    if "status" in q:
        items = [v for v in items if c.status(v) == q["status"]]
    if "availability_zone" in q:
        items = [v for v in items if v.availability_zone == q["availability_zone"]]
    if "bootable" in q:
        want = wire.truthy(q["bootable"])
        items = [v for v in items if v.bootable is want]
    if "volume_type" in q:
        items = [v for v in items if v.volume_type == q["volume_type"]]
    if "metadata" in q:
        items = [v for v in items if all(v.metadata.get(k) == str(val) for k, val in _query_dict(q["metadata"]).items())]
    return _sorted(items, q)


def _query_dict(text: str) -> dict[str, Any]:
    """Cinder's ``?metadata={'k': 'v'}`` filter (a Python or JSON dict literal)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    raise ApiError(400, f"Invalid input received: Invalid filter metadata={text}")


_SORT_KEYS = {"created_at": "created_at", "updated_at": "updated_at", "name": "name", "id": "id", "size": "size",
              "status": "state", "availability_zone": "availability_zone"}


def _sorted(items: list[Volume], q: Any) -> list[Volume]:
    spec = q.get("sort") or (f"{q['sort_key']}:{q.get('sort_dir', 'desc')}" if "sort_key" in q else "")
    for part in reversed([p for p in spec.split(",") if p]):
        key, _, direction = part.partition(":")
        attr = _SORT_KEYS.get(key.strip())
        if attr is None:
            raise ApiError(400, f"Invalid input received: Invalid sort key {key.strip()}")
        if direction.strip().lower() not in ("", "asc", "desc"):
            raise ApiError(400, f"Invalid input received: Invalid sort direction {direction}")
        items = sorted(items, key=lambda v: getattr(v, attr) or "", reverse=direction.strip().lower() != "asc")
    return items


def _list(call: Call, detail: bool) -> web.Response:
    view = View(call)
    items = _filtered(call)
    chunk, next_marker = page(call, items)
    render = view.volume if detail else view.volume_summary
    body: dict[str, Any] = {"volumes": [render(v) for v in chunk]}
    if next_marker:
        q = [(k, v) for k, v in call.query.items() if k != "marker"] + [("marker", next_marker)]
        path = "/volumes/detail" if detail else "/volumes"
        body["volumes_links"] = [{"rel": "next", "href": f"{view.base}/v3/{call.project_id}{path}?{urlencode(q)}"}]
    if _mv(call, 3, 45) and wire.truthy(call.query.get("with_count")):
        body["count"] = len(items)
    return wire.json_response(200, body)


async def list_volumes(call: Call) -> web.Response:
    return _list(call, False)


async def list_volumes_detail(call: Call) -> web.Response:
    return _list(call, True)


def page(call: Call, items: list[Any]) -> tuple[list[Any], str | None]:
    """Cinder's paging: an unknown marker is a 404, and a full page links to the next one (which may
    be empty, as Cinder's does)."""
    try:
        chunk, next_marker = wire.page(items, call.query, max_limit=MAX_LIMIT,
                                       marker_error="Marker {marker} could not be found.")
    except ApiError as err:
        raise ApiError(404 if "Marker" in err.message else err.status, err.message) from None
    limit = call.query.get("limit")
    if next_marker is None and chunk and limit and limit.isdigit() and len(chunk) == int(limit):
        next_marker = chunk[-1].id
    return chunk, next_marker


async def no_volume_id(call: Call) -> web.Response:
    """``GET`` or ``DELETE /volumes/``: no volume named, which Cinder answers with 404."""
    if call.request.path.endswith("/"):
        raise ApiError(404, "Volume  could not be found.")
    if call.request.method == "GET":
        return await list_volumes(call)
    raise ApiError(405, f"The method {call.request.method} is not allowed for this resource.")


def _volume_of(call: Call) -> Volume:
    pid = _project(call)
    return _cinder(call).get_volume(None if is_admin(call) else pid, call.params["id"])


async def get_volume(call: Call) -> web.Response:
    return wire.json_response(200, {"volume": View(call).volume(_volume_of(call))})


async def volume_summary(call: Call) -> web.Response:
    items = _filtered(call)
    meta: dict[str, list[str]] = {}
    for v in items:
        for k, val in v.metadata.items():
            meta.setdefault(k, [])
            if val not in meta[k]:
                meta[k].append(val)
    return wire.json_response(200, {"volume-summary": {"total_size": sum(v.size for v in items),
                                                       "total_count": len(items), "metadata": meta}})


async def create_volume(call: Call) -> web.Response:
    body = call.body("volume")
    pid = _project(call)
    assert call.token is not None
    c = _cinder(call)
    for key in ("backup_id", "consistencygroup_id"):
        ref = _opt_str(body, key, max_len=64)
        if ref:
            what = {"backup_id": "Backup"}.get(key, "Group")
            raise ApiError(404, f"{what} {ref} could not be found.")
    group_ref = _opt_str(body, "group_id", max_len=64) if _mv(call, 3, 13) else None
    group = c.get_group(None if is_admin(call) else pid, group_ref) if group_ref else None
    if group is not None:
        c.check_volume_joins(group, c.find_type(_opt_str(body, "volume_type")))
    snap_ref = _opt_str(body, "snapshot_id", max_len=64)
    snapshot = c.get_snapshot(None if is_admin(call) else pid, snap_ref) if snap_ref else None
    type_ref = _opt_str(body, "volume_type")
    if type_ref and not is_admin(call):
        vt = c.find_type(type_ref)
        if not vt.is_public and pid not in vt.access:
            raise ApiError(404, f"Volume type with name {type_ref} could not be found.")
    name = _opt_str(body, "name") or _opt_str(body, "display_name")
    description = _opt_str(body, "description")
    if description is None:
        description = _opt_str(body, "display_description")
    image_ref = _opt_str(body, "imageRef", max_len=1024) or _opt_str(body, "image_id", max_len=1024)
    zone = _opt_str(body, "availability_zone")
    if zone:
        call.twin.faults.zone_check(call, zone)
    multiattach = _bool(body["multiattach"], "multiattach") if body.get("multiattach") is not None else False
    v = c.create_volume(pid, call.token.user_id, size=_size(body.get("size")), name=name,
                        description=description, volume_type=_opt_str(body, "volume_type"), zone=zone,
                        metadata=_metadata(body.get("metadata")),
                        image=_image(call, image_ref) if image_ref else None,
                        source_volid=_opt_str(body, "source_volid", max_len=64), multiattach=multiattach,
                        snapshot=snapshot, request_id=call.request_id)
    if group is not None:
        v.group_id = group.id
    return wire.json_response(202, {"volume": View(call).volume(v, extended=False)})


async def update_volume(call: Call) -> web.Response:
    body = call.body("volume")
    v = _volume_of(call)
    allowed = {"name", "description", "display_name", "display_description", "metadata"}
    extra = set(body) - allowed
    if extra:
        raise _invalid("volume", body, f"Additional properties are not allowed ({', '.join(sorted(extra))} "
                                       "were unexpected)")
    name = _opt_str(body, "name") if "name" in body else _opt_str(body, "display_name")
    description: Any = ...
    for key in ("description", "display_description"):
        if key in body:
            description = _opt_str(body, key)
    metadata = _metadata(body["metadata"]) if "metadata" in body else None
    _cinder(call).update_volume(v, name=name, description=description, metadata=metadata)
    return wire.json_response(200, {"volume": View(call).volume(v, extended=False)})


async def delete_volume(call: Call) -> web.Response:
    v = _volume_of(call)
    call.twin.faults.zone_check(call, v.availability_zone)
    force = _mv(call, 3, 23) and bool(wire.truthy(call.query.get("force")))
    cascade = bool(wire.truthy(call.query.get("cascade")))
    _cinder(call).delete_volume(v, force=force, cascade=cascade)
    return wire.json_response(202)


# ---- volume metadata --------------------------------------------------------------------------------

def metadata_call(call: Call, obj: Any) -> web.Response:
    """``/metadata`` of a volume or snapshot: GET shows, POST merges, PUT replaces."""
    method = call.request.method
    if method == "POST":
        obj.metadata = {**obj.metadata, **_metadata(call.body("metadata"))}
        obj.touch()
    elif method == "PUT":
        obj.metadata = _metadata(call.body("metadata", required=False))
        obj.touch()
    return wire.json_response(200, {"metadata": dict(obj.metadata)})


def metadata_item_call(call: Call, obj: Any, what: str) -> web.Response:
    """``/metadata/{key}`` of a volume or snapshot: GET, PUT (the body names the same key), DELETE."""
    key = call.params["key"]
    method = call.request.method
    if method == "PUT":
        meta = call.body("meta")
        if set(meta) != {key}:
            raise ApiError(400, "Request body and URI mismatch")
        obj.metadata = {**obj.metadata, **_metadata(meta)}
        obj.touch()
        return wire.json_response(200, {"meta": {key: obj.metadata[key]}})
    if key not in obj.metadata:
        raise ApiError(404, f"{what} {obj.id} has no metadata with key {key}.")
    if method == "DELETE":
        obj.metadata = {k: val for k, val in obj.metadata.items() if k != key}
        obj.touch()
        return wire.json_response(200)
    return wire.json_response(200, {"meta": {key: obj.metadata[key]}})


async def volume_metadata(call: Call) -> web.Response:
    return metadata_call(call, _volume_of(call))


async def volume_metadata_item(call: Call) -> web.Response:
    return metadata_item_call(call, _volume_of(call), "Volume")


# ---- volume actions ---------------------------------------------------------------------------------

def _arg_dict(name: str, arg: Any) -> dict[str, Any]:
    if arg is None:
        return {}
    if not isinstance(arg, dict):
        raise _invalid(name, arg, f"{arg!r} is not of type 'object', 'null'")
    return arg


async def volume_action(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, raw), = body.items()
    handler = _ACTIONS.get(name)
    if handler is None:
        raise ApiError(400, f"There is no such action: {name}")
    v = _volume_of(call)
    c = _cinder(call)
    arg = _arg_dict(name, raw)
    if name in ("os-extend", "os-attach", "os-force_delete"):
        call.twin.faults.zone_check(call, v.availability_zone)
    result = handler(call, c, v, arg)
    if result is not None:
        return wire.json_response(202 if name == "os-volume_upload_image" else 200, result)
    return wire.json_response(200 if name in ("os-set_bootable", "os-unset_image_metadata") else 202)


def _extend(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    new_size = _size(arg.get("new_size"), "new_size")
    if new_size is None:
        raise _invalid("os-extend", arg, "'new_size' is a required property")
    c.extend_volume(v, new_size, in_use_allowed=_mv(call, 3, 42))


def _reset_status(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    status = arg.get("status")
    if not isinstance(status, str):
        raise _invalid("os-reset_status", arg, "'status' is a required property")
    c.reset_status(v, status)


def _set_bootable(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    if "bootable" not in arg:
        raise _invalid("os-set_bootable", arg, "'bootable' is a required property")
    c.set_bootable(v, _bool(arg["bootable"], "bootable"))


def _readonly(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    if "readonly" not in arg:
        raise _invalid("os-update_readonly_flag", arg, "'readonly' is a required property")
    c.set_readonly(v, _bool(arg["readonly"], "readonly"))


def _attach(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    server = arg.get("instance_uuid")
    host = arg.get("host_name")
    if not isinstance(server, str) and not isinstance(host, str):
        raise ApiError(400, "Invalid request to attach volume to an invalid target")
    mountpoint = arg.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise ApiError(400, "Must specify 'mountpoint'")
    mode = arg.get("mode", "rw")
    c.attach_legacy(v, server if isinstance(server, str) else None, mountpoint, str(mode))


def _detach(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    att = arg.get("attachment_id")
    if att is not None and not isinstance(att, str):
        raise _invalid("attachment_id", att, "not of type 'string'")
    c.detach_legacy(v, att)


def _initialize_connection(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(arg.get("connector"), dict):
        raise ApiError(400, "Must specify 'connector'")
    probe = Attachment(id=v.id, project_id=v.project_id, volume_id=v.id, connector=arg["connector"],
                       attach_mode="ro" if v.readonly else "rw")
    return {"connection_info": c.connection_info(probe)}


def _force_delete(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    if not is_admin(call):
        raise ApiError(403, "Policy doesn't allow volume_extension:volume_admin_actions:force_delete to be "
                            "performed.")
    c.delete_volume(v, force=True)


def _set_image_metadata(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> dict[str, Any]:
    meta = _metadata(arg.get("metadata"))
    if not meta:
        raise _invalid("metadata", arg.get("metadata"), "'metadata' is a required property")
    v.image_metadata = {**v.image_metadata, **meta}
    v.touch()
    return {"metadata": {k: str(val) for k, val in v.image_metadata.items()}}


def _unset_image_metadata(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    key = arg.get("key")
    if not isinstance(key, str) or not key:
        raise _invalid("key", key, "'key' is a required property")
    if key not in v.image_metadata:
        raise ApiError(404, f"Glance metadata for volume {v.id} with key {key} could not be found.")
    del v.image_metadata[key]
    v.touch()


def _show_image_metadata(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {k: str(val) for k, val in v.image_metadata.items()}}


def _retype(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> None:
    new_type = arg.get("new_type")
    if not isinstance(new_type, str) or not new_type:
        raise _invalid("new_type", new_type, "'new_type' is a required property")
    policy = arg.get("migration_policy", "never")
    if policy not in ("never", "on-demand"):
        raise _invalid("migration_policy", policy, "must be 'never' or 'on-demand'")
    c.retype_volume(v, c.find_type(new_type), policy)


def _upload_image(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> dict[str, Any]:
    """os-volume_upload_image: a Glance image of the volume's bytes, made through Glance's model."""
    from cloudtwin.services.cinder.upload import upload_to_image
    return {"os-volume_upload_image": upload_to_image(call, c, v, arg)}


_ACTIONS: dict[str, Any] = {
    "os-extend": _extend,
    "os-reset_status": _reset_status,
    "os-set_bootable": _set_bootable,
    "os-update_readonly_flag": _readonly,
    "os-attach": _attach,
    "os-detach": _detach,
    "os-reserve": lambda call, c, v, arg: c.reserve(v),
    "os-unreserve": lambda call, c, v, arg: c.unreserve(v),
    "os-begin_detaching": lambda call, c, v, arg: c.begin_detaching(v),
    "os-roll_detaching": lambda call, c, v, arg: c.roll_detaching(v),
    "os-initialize_connection": _initialize_connection,
    "os-terminate_connection": lambda call, c, v, arg: None,
    "os-force_delete": _force_delete,
    "os-unmanage": lambda call, c, v, arg: c.unmanage_volume(v),
    "os-force_detach": lambda call, c, v, arg: c.force_detach(v, arg.get("attachment_id")),
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
    "os-retype": _retype,
    "os-volume_upload_image": _upload_image,
}


# ---- attachments (3.27+) ----------------------------------------------------------------------------

def _need_attachments_api(call: Call) -> None:
    if not _mv(call, 3, 27):
        raise ApiError(404, "The resource could not be found.")


async def list_attachments(call: Call) -> web.Response:
    _need_attachments_api(call)
    view = View(call)
    items = _cinder(call).attachments_of_project(_project(call))
    q = call.query
    if "volume_id" in q:
        items = [a for a in items if a.volume_id == q["volume_id"]]
    if "instance_id" in q:
        items = [a for a in items if a.server_id == q["instance_id"]]
    if "status" in q:
        items = [a for a in items if a.attach_status == q["status"]]
    chunk, _ = wire.page(items, q, max_limit=MAX_LIMIT, marker_error="Marker {marker} could not be found.")
    detail = call.route.pattern.endswith("/detail")
    return wire.json_response(200, {"attachments": [view.attachment(a, detail=detail) for a in chunk]})


async def get_attachment(call: Call) -> web.Response:
    _need_attachments_api(call)
    a = _cinder(call).get_attachment(_project(call), call.params["id"])
    return wire.json_response(200, {"attachment": View(call).attachment(a)})


async def create_attachment(call: Call) -> web.Response:
    _need_attachments_api(call)
    body = call.body("attachment")
    pid = _project(call)
    c = _cinder(call)
    vid = body.get("volume_uuid")
    if not isinstance(vid, str):
        raise _invalid("attachment", body, "'volume_uuid' is a required property")
    server = body.get("instance_uuid")
    if server is not None and not isinstance(server, str):
        raise _invalid("instance_uuid", server, "not of type 'string', 'null'")
    connector = body.get("connector")
    if connector is not None and not isinstance(connector, dict):
        raise _invalid("connector", connector, "not of type 'object', 'null'")
    mode = body.get("mode", "rw") if _mv(call, 3, 54) else "rw"
    if not isinstance(mode, str):
        raise _invalid("mode", mode, "not of type 'string'")
    v = c.get_volume(pid, vid)
    a = c.create_attachment(v, server, connector, mode)
    return wire.json_response(200, {"attachment": View(call).attachment(a)})


async def update_attachment(call: Call) -> web.Response:
    _need_attachments_api(call)
    body = call.body("attachment")
    c = _cinder(call)
    a = c.get_attachment(_project(call), call.params["id"])
    connector = body.get("connector")
    if not isinstance(connector, dict):
        raise _invalid("attachment", body, "'connector' is a required property")
    c.connect_attachment(a, connector)
    return wire.json_response(200, {"attachment": View(call).attachment(a)})


async def attachment_action(call: Call) -> web.Response:
    _need_attachments_api(call)
    body = call.body()
    c = _cinder(call)
    a = c.get_attachment(_project(call), call.params["id"])
    if not _mv(call, 3, 44) or not isinstance(body, dict) or set(body) != {"os-complete"}:
        raise ApiError(400, f"There is no such action: {', '.join(body) if isinstance(body, dict) else body}")
    c.complete_attachment(a)
    return wire.json_response(204)


async def delete_attachment(call: Call) -> web.Response:
    _need_attachments_api(call)
    c = _cinder(call)
    a = c.get_attachment(_project(call), call.params["id"])
    c.delete_attachment(a)
    return wire.json_response(200, {"attachments": []})


# ---- volume types, zones, limits, quotas, extensions ------------------------------------------------


async def availability_zones(call: Call) -> web.Response:
    _project(call)
    assert call.region is not None
    out = []
    for z in call.region.zones:
        try:
            call.twin.faults.zone_check(call, z)
            ok = True
        except ApiError:
            ok = False
        out.append({"zoneName": z, "zoneState": {"available": ok}})
    return wire.json_response(200, {"availabilityZoneInfo": out})


async def extensions(call: Call) -> web.Response:
    _project(call)
    return wire.json_response(200, {"extensions": [
        {"alias": alias, "name": name, "description": text, "updated": "2013-01-01T00:00:00+00:00",
         "namespace": f"https://docs.openstack.org/volume/ext/{alias}/api/v1", "links": []}
        for alias, name, text in EXTENSIONS]})


# ---- routes -----------------------------------------------------------------------------------------

def add_routes(r: Router) -> None:
    s = "volume"
    p = "/v3/{project_id}"
    r.add(s, "GET", "/", versions, "volume:version:list", auth=False)
    r.add(s, "GET", "/v3", version, "volume:version:get", auth=False)
    r.add(s, "GET", f"{p}/volumes", no_volume_id, "volume:volume:list")
    r.add(s, "DELETE", f"{p}/volumes", no_volume_id, "volume:volume:delete")
    r.add(s, "PUT", f"{p}/volumes", no_volume_id, "volume:volume:update")
    r.add(s, "GET", f"{p}/volumes/detail", list_volumes_detail, "volume:volume:list")
    r.add(s, "GET", f"{p}/volumes/summary", volume_summary, "volume:volume:summary")
    r.add(s, "POST", f"{p}/volumes", create_volume, "volume:volume:create")
    r.add(s, "GET", f"{p}/volumes/{{id}}", get_volume, "volume:volume:get")
    r.add(s, "PUT", f"{p}/volumes/{{id}}", update_volume, "volume:volume:update")
    r.add(s, "DELETE", f"{p}/volumes/{{id}}", delete_volume, "volume:volume:delete")
    r.add(s, "POST", f"{p}/volumes/{{id}}/action", volume_action, "volume:volume:action")
    r.add(s, "GET", f"{p}/volumes/{{id}}/metadata", volume_metadata, "volume:volume_metadata:list")
    r.add(s, "POST", f"{p}/volumes/{{id}}/metadata", volume_metadata, "volume:volume_metadata:update")
    r.add(s, "PUT", f"{p}/volumes/{{id}}/metadata", volume_metadata, "volume:volume_metadata:update")
    r.add(s, "GET", f"{p}/volumes/{{id}}/metadata/{{key}}", volume_metadata_item, "volume:volume_metadata:get")
    r.add(s, "PUT", f"{p}/volumes/{{id}}/metadata/{{key}}", volume_metadata_item, "volume:volume_metadata:update")
    r.add(s, "DELETE", f"{p}/volumes/{{id}}/metadata/{{key}}", volume_metadata_item,
          "volume:volume_metadata:delete")
    r.add(s, "GET", f"{p}/attachments", list_attachments, "volume:attachment:list")
    r.add(s, "GET", f"{p}/attachments/detail", list_attachments, "volume:attachment:list")
    r.add(s, "POST", f"{p}/attachments", create_attachment, "volume:attachment:create")
    r.add(s, "GET", f"{p}/attachments/{{id}}", get_attachment, "volume:attachment:get")
    r.add(s, "PUT", f"{p}/attachments/{{id}}", update_attachment, "volume:attachment:update")
    r.add(s, "DELETE", f"{p}/attachments/{{id}}", delete_attachment, "volume:attachment:delete")
    r.add(s, "POST", f"{p}/attachments/{{id}}/action", attachment_action, "volume:attachment:action")
    r.add(s, "GET", f"{p}/os-availability-zone", availability_zones, "volume:availability_zone:list")
    r.add(s, "GET", f"{p}/extensions", extensions, "volume:extension:list")
