"""Glance v2 wire format: the 300 version list at the root (the SDK requires it), bare image objects,
``{"images": [...], "first", "schema", "next"?}`` lists, 201/204 codes and text/plain errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance.models import RESERVED, GlanceState, Image

VERSIONS = ("2.16", "2.15", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8", "2.7", "2.6", "2.5", "2.4",
            "2.3", "2.2", "2.1", "2.0")
MAX_LIMIT = 1000
# list parameters that are not property filters
_LIST_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "created_at",
                "updated_at", "size_min", "size_max"}


def _state(call: Call) -> GlanceState:
    assert call.region is not None
    return call.region.glance  # type: ignore[no-any-return]


def render(img: Image) -> dict[str, Any]:
    out: dict[str, Any] = dict(img.properties)
    out.update({
        "id": img.id, "name": img.name or None, "status": img.status, "visibility": img.visibility,
        "protected": img.protected, "os_hidden": img.os_hidden, "checksum": img.checksum,
        "os_hash_algo": "sha512" if img.os_hash_value else None, "os_hash_value": img.os_hash_value,
        "owner": img.owner, "size": img.size, "virtual_size": img.virtual_size, "min_ram": img.min_ram,
        "min_disk": img.min_disk, "disk_format": img.disk_format, "container_format": img.container_format,
        "created_at": wire.iso(img.created_at), "updated_at": wire.iso(img.updated_at),
        "tags": list(img.tags), "self": f"/v2/images/{img.id}", "file": f"/v2/images/{img.id}/file",
        "schema": "/v2/schemas/image",
    })
    if img.status == "active":
        out.setdefault("stores", "file")
    return out


async def versions(call: Call) -> web.Response:
    base = call.base_url()
    vs = [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
           "links": [{"rel": "self", "href": f"{base}/v2/"}]} for i, v in enumerate(VERSIONS)]
    return wire.json_response(300 if call.route.pattern == "/" else 200, {"versions": vs})


def _match(img: Image, query: Any, project_id: str) -> bool:
    for key in query:
        if key in _LIST_PARAMS:
            continue
        values = query.getall(key)
        if key == "name":
            if img.name not in values:
                return False
        elif key == "status":
            if img.status not in [v.lower() for v in values]:
                return False
        elif key == "visibility":
            v = values[-1].lower()
            if v == "all":
                continue
            if img.visibility != v:
                return False
        elif key == "owner":
            if img.owner not in values:
                return False
        elif key == "tag":
            if any(t not in img.tags for t in values):
                return False
        elif key in ("protected", "os_hidden"):
            want = wire.truthy(values[-1])
            if want is not None and getattr(img, key) is not want:
                return False
        elif key in ("disk_format", "container_format", "id"):
            if getattr(img, key) not in values:
                return False
        elif key in ("min_ram", "min_disk"):
            if str(getattr(img, key)) not in values:
                return False
        else:  # free-form property: exact match
            if str(img.properties.get(key)) not in values:
                return False
    return True


async def list_images(call: Call) -> web.Response:
    pid = call.project_id
    q = call.query
    items = _state(call).visible(pid)
    vis = q.get("visibility", "").lower()
    if vis not in ("community", "all"):  # Glance hides community images unless asked
        items = [i for i in items if i.visibility != "community" or i.owner == pid]
    if wire.truthy(q.get("os_hidden")) is not True:
        items = [i for i in items if not i.os_hidden]
    items = [i for i in items if _match(i, q, pid)]
    sort_key = q.get("sort_key")
    if sort_key in ("name", "size", "status", "created_at", "updated_at", "id", "min_disk", "min_ram"):
        reverse = q.get("sort_dir", "desc").lower() != "asc"
        numeric = sort_key in ("size", "min_disk", "min_ram", "created_at", "updated_at")

        def key(i: Image) -> tuple[Any, ...]:
            v = getattr(i, sort_key)
            return (v is not None, v if v is not None else (0 if numeric else ""), i.id)

        items.sort(key=key, reverse=reverse)
    page, next_marker = wire.page(items, q, max_limit=MAX_LIMIT,
                                  marker_error="Invalid marker. Image {marker} could not be found.")
    body: dict[str, Any] = {"images": [render(i) for i in page], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if next_marker is not None:
        params = [(k, v) for k, v in q.items() if k != "marker"]
        params.append(("marker", next_marker))
        body["next"] = "/v2/images?" + urlencode(params)
    return wire.json_response(200, body)


async def get_image(call: Call) -> web.Response:
    return wire.json_response(200, render(_state(call).get(call.project_id, call.params["id"])))


def _int_field(body: dict[str, Any], key: str) -> int:
    v = body.get(key, 0)
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool):
        raise ApiError(400, f"Invalid type for '{key}': expected integer")
    return v


async def create_image(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body: a JSON object is required.")
    bad = sorted(k for k in body if k in RESERVED and k != "id")
    if bad:
        raise ApiError(403, f"Attribute '{bad[0]}' is read-only.")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise ApiError(400, "Invalid value for 'name': a string of at most 255 characters")
    image_id = body.get("id")
    if image_id is not None and not isinstance(image_id, str):
        raise ApiError(400, "Invalid value for 'id'")
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, "Invalid value for 'tags': a list of strings")
    for key in ("protected", "os_hidden"):
        if key in body and not isinstance(body[key], bool):
            raise ApiError(400, f"Invalid value for '{key}': a boolean")
    visibility = body.get("visibility", "shared")
    if not isinstance(visibility, str):
        raise ApiError(400, "Invalid value for 'visibility'")
    known = {"name", "id", "tags", "protected", "os_hidden", "visibility", "min_ram", "min_disk",
             "disk_format", "container_format"}
    props = {k: v for k, v in body.items() if k not in known}
    for k, v in props.items():
        if not isinstance(v, str):
            raise ApiError(400, f"Invalid value for property '{k}': extra properties are strings")
    img = _state(call).create(
        call.project_id, name=name, image_id=image_id, visibility=visibility,
        protected=bool(body.get("protected", False)), os_hidden=bool(body.get("os_hidden", False)),
        min_ram=_int_field(body, "min_ram"), min_disk=_int_field(body, "min_disk"),
        disk_format=body.get("disk_format"), container_format=body.get("container_format"), tags=tags,
        properties=props)
    return wire.json_response(201, render(img), {"Location": f"{call.base_url()}/v2/images/{img.id}"})


async def delete_image(call: Call) -> web.Response:
    _state(call).delete(call.project_id, call.params["id"])
    return wire.json_response(204)


_IMAGE_SCHEMA_PROPS = {
    "id": {"type": "string"}, "name": {"type": ["null", "string"], "maxLength": 255},
    "status": {"type": "string", "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                                          "importing", "pending_delete", "deactivated"]},
    "visibility": {"type": "string", "enum": list(("community", "public", "private", "shared"))},
    "protected": {"type": "boolean"}, "os_hidden": {"type": "boolean"},
    "checksum": {"type": ["null", "string"]}, "owner": {"type": ["null", "string"]},
    "size": {"type": ["null", "integer"]}, "virtual_size": {"type": ["null", "integer"]},
    "min_ram": {"type": "integer"}, "min_disk": {"type": "integer"},
    "container_format": {"type": ["null", "string"]}, "disk_format": {"type": ["null", "string"]},
    "created_at": {"type": "string"}, "updated_at": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
    "self": {"type": "string"}, "file": {"type": "string"}, "schema": {"type": "string"},
    "os_hash_algo": {"type": ["null", "string"]}, "os_hash_value": {"type": ["null", "string"]},
}


def _image_schema() -> dict[str, Any]:
    return {"name": "image", "properties": _IMAGE_SCHEMA_PROPS, "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


async def image_schema(call: Call) -> web.Response:
    return wire.json_response(200, _image_schema())


async def images_schema(call: Call) -> web.Response:
    return wire.json_response(200, {
        "name": "images",
        "properties": {"images": {"type": "array", "items": _image_schema()}, "schema": {"type": "string"},
                       "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}]})


def add_routes(r: Router) -> None:
    s = "image"
    r.add(s, "GET", "/", versions, "image:version:list", auth=False)
    r.add(s, "GET", "/versions", versions, "image:version:list", auth=False)
    r.add(s, "GET", "/v2/images", list_images, "image:image:list")
    r.add(s, "POST", "/v2/images", create_image, "image:image:create")
    r.add(s, "GET", "/v2/images/{id}", get_image, "image:image:get")
    r.add(s, "DELETE", "/v2/images/{id}", delete_image, "image:image:delete")
    r.add(s, "GET", "/v2/schemas/image", image_schema, "image:schema:get")
    r.add(s, "GET", "/v2/schemas/images", images_schema, "image:schema:get")
