"""Glance v2 wire format for images: the 300 version list at the root (the SDK requires it), bare image
objects, ``{"images": [...], "first", "schema", "next"?}`` lists, JSON-patch updates, tags and the
deactivate/reactivate actions, 201/204 codes and text/plain errors. Data, members, tasks, schemas and
metadefs have modules of their own; ``add_routes`` registers them all."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance import data, member_handlers, metadef_handlers, patch, schemas, task_handlers
from cloudtwin.services.glance.access import is_admin, state
from cloudtwin.services.glance.models import CORE, Image, check_property_key

VERSIONS = ("2.16", "2.15", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8", "2.7", "2.6", "2.5",
            "2.4", "2.3", "2.2", "2.1", "2.0")
MAX_LIMIT = 1000
SORT_KEYS = ("name", "size", "status", "created_at", "updated_at", "id", "min_disk", "min_ram", "owner",
             "visibility", "disk_format", "container_format", "virtual_size")
# list parameters that are not property filters
_LIST_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "created_at",
                "updated_at", "size_min", "size_max"}


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
    if img.status not in ("active", "deactivated") and not img.staged:
        out["size"] = img.size if img.status == "active" else None
    if img.stores and img.status in ("active", "deactivated", "importing"):
        out["stores"] = ",".join(sorted(img.stores))
    if img.import_started:
        out["os_glance_importing_to_stores"] = ",".join(img.importing_to)
        out["os_glance_failed_import"] = ",".join(img.failed_import)
    return out


async def versions(call: Call) -> web.Response:
    base = call.base_url()
    vs = [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
           "links": [{"rel": "self", "href": f"{base}/v2/"}]} for i, v in enumerate(VERSIONS)]
    return wire.json_response(300 if call.route.pattern == "/" else 200, {"versions": vs})


def _operator(value: str) -> tuple[str, str]:
    """``gte:2016-...`` -> (``gte``, ``2016-...``); a value without a known operator is ``eq``."""
    op, sep, rest = value.partition(":")
    if sep and op in ("eq", "neq", "gt", "gte", "lt", "lte", "in"):
        return op, rest
    return "eq", value


def _in_values(value: str) -> list[str]:
    return [v.strip().strip('"') for v in value.split(",")]


def _compare(actual: Any, op: str, want: str) -> bool:
    if op == "in":
        return str(actual) in _in_values(want)
    if op == "eq":
        return str(actual) == want
    if op == "neq":
        return str(actual) != want
    return _ordered(actual, op, want)


def _ordered(actual: Any, op: str, want: str) -> bool:
    if actual is None:
        return False
    try:
        w = int(want)
    except ValueError:
        raise ApiError(400, f"Invalid value {want}: an integer is required.") from None
    return {"gt": actual > w, "gte": actual >= w, "lt": actual < w, "lte": actual <= w}[op]


def _match(img: Image, query: Any) -> bool:
    for key in query:
        if key in _LIST_PARAMS or key in ("visibility", "os_hidden"):
            continue
        for raw in query.getall(key):
            if not _matches_one(img, key, raw):
                return False
    for key in ("created_at", "updated_at"):
        for raw in query.getall(key, []):
            op, want = _operator(raw)
            if not _compare_time(getattr(img, key), op, want):
                return False
    if "size_min" in query and (img.size is None or img.size < _int_param(query, "size_min")):
        return False
    if "size_max" in query and (img.size is None or img.size > _int_param(query, "size_max")):
        return False
    return True


def _matches_one(img: Image, key: str, raw: str) -> bool:
    if key == "tag":
        return raw in img.tags
    if key == "protected":
        want = wire.truthy(raw)
        if want is None:
            raise ApiError(400, f"Invalid value '{raw}' for 'protected': a boolean")
        return img.protected is want
    op, want = _operator(raw)
    if key in ("name", "status", "owner", "disk_format", "container_format", "id", "min_ram", "min_disk",
               "size", "virtual_size"):
        return _compare(getattr(img, key), op, want)
    return _compare(img.properties.get(key), op, want)


def _compare_time(ts: float, op: str, want: str) -> bool:
    import datetime as dt
    try:
        w = dt.datetime.fromisoformat(want.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid time format for {want}.") from None
    if w.tzinfo is None:
        w = w.replace(tzinfo=dt.timezone.utc)
    ref = w.timestamp()
    ts = float(int(ts))
    return {"eq": ts == ref, "neq": ts != ref, "gt": ts > ref, "gte": ts >= ref, "lt": ts < ref,
            "lte": ts <= ref}.get(op, False)


def _int_param(query: Any, key: str) -> int:
    try:
        return int(query[key])
    except ValueError:
        raise ApiError(400, f"Invalid value for '{key}': an integer is required.") from None


def _sort_spec(q: Any) -> list[tuple[str, bool]]:
    """``[(key, descending)]`` from ``sort=k1:asc,k2`` or ``sort_key=..&sort_dir=..`` (not both)."""
    if "sort" in q and ("sort_key" in q or "sort_dir" in q):
        raise ApiError(400, "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'.")
    spec: list[tuple[str, bool]] = []
    if "sort" in q:
        for part in q["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            spec.append((key, _direction(direction or "desc")))
    else:
        keys, dirs = q.getall("sort_key", []), q.getall("sort_dir", [])
        if len(dirs) > max(len(keys), 1):
            raise ApiError(400, "The number of sort_dir values exceeds the number of sort_key values.")
        for i, key in enumerate(keys):
            spec.append((key, _direction(dirs[i] if i < len(dirs) else (dirs[0] if len(dirs) == 1 else "desc"))))
    for key, _ in spec:
        if key not in SORT_KEYS:
            raise ApiError(400, f"Invalid sort key: {key}. It is not in {', '.join(SORT_KEYS)}.")
    return spec + [("created_at", True), ("id", True)]


def _direction(value: str) -> bool:
    if value not in ("asc", "desc"):
        raise ApiError(400, f"Invalid sort direction: {value}")
    return value == "desc"


def _sorted(items: list[Image], spec: list[tuple[str, bool]]) -> list[Image]:
    for key, desc in reversed(spec):
        numeric = key in ("size", "min_disk", "min_ram", "created_at", "updated_at", "virtual_size")
        items.sort(key=lambda i, k=key, n=numeric: (getattr(i, k) is not None,
                                                    getattr(i, k) if getattr(i, k) is not None else (0 if n else "")),
                   reverse=desc)
    return items


def _visibility_filter(items: list[Image], q: Any, pid: str) -> list[Image]:
    vis = q.get("visibility", "").lower()
    if vis and vis not in ("public", "private", "shared", "community", "all"):
        raise ApiError(400, f"Invalid visibility value: {vis}")
    if vis in ("", "shared"):   # Glance hides community images unless asked
        items = [i for i in items if i.visibility != "community" or (not vis and i.owner == pid)]
    if vis and vis != "all":
        items = [i for i in items if i.visibility == vis]
    hidden = wire.truthy(q.get("os_hidden"))
    if "os_hidden" in q and hidden is None:
        raise ApiError(400, f"Invalid value '{q['os_hidden']}' for 'os_hidden': a boolean")
    return [i for i in items if i.os_hidden is bool(hidden)]


async def list_images(call: Call) -> web.Response:
    if call.request.path.endswith("/"):      # GET /v2/images/ : an empty image id
        raise ApiError(404, "No image found with ID ''")
    pid = call.project_id
    q = call.query
    member_status = q.get("member_status", "accepted")
    if member_status not in ("accepted", "pending", "rejected", "all"):
        raise ApiError(400, f"Invalid status value: {member_status}")
    admin = is_admin(call)
    items = state(call).visible(pid, member_status=member_status)
    if admin and q.get("visibility") == "all":
        seen = {i.id for i in items}
        items += [i for i in state(call).visible(pid, admin=True) if i.id not in seen]
    items = _visibility_filter(items, q, pid)
    items = _sorted([i for i in items if _match(i, q)], _sort_spec(q))
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
    return wire.json_response(200, render(state(call).get(call.project_id, call.params["id"],
                                                          admin=is_admin(call))))


def _int_field(body: dict[str, Any], key: str) -> int:
    v = body.get(key, 0)
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool):
        raise ApiError(400, f"Invalid type for '{key}': expected integer")
    return v


def _create_fields(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    for key in body:
        if key not in ("id", "owner"):
            check_property_key(key)
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
    for key in ("visibility", "disk_format", "container_format", "owner"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ApiError(400, f"Invalid value for '{key}': a string")
    owner = body.get("owner")
    if owner is not None and owner != call.project_id and not is_admin(call):
        raise ApiError(403, f"You are not permitted to create images owned by '{owner}'.")
    props = {k: v for k, v in body.items() if k not in CORE}
    for k, v in props.items():
        if not isinstance(v, str):
            raise ApiError(400, f"Invalid value for property '{k}': extra properties are strings")
    return dict(name=name, image_id=image_id, visibility=body.get("visibility") or "shared",
                protected=bool(body.get("protected", False)), os_hidden=bool(body.get("os_hidden", False)),
                min_ram=_int_field(body, "min_ram"), min_disk=_int_field(body, "min_disk"),
                disk_format=body.get("disk_format"), container_format=body.get("container_format"),
                tags=tags, properties=props, owner=owner)


async def create_image(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body: a JSON object is required.")
    img = state(call).create(call.project_id, **_create_fields(call, body))
    return wire.json_response(201, render(img), {"Location": f"{call.base_url()}/v2/images/{img.id}"})


async def update_image(call: Call) -> web.Response:
    admin = is_admin(call)
    st = state(call)
    img = st.owned(call.project_id, call.params["id"], admin=admin)
    if img.builtin:
        raise ApiError(403, "You are not permitted to modify this image.")
    changes = patch.parse(call.request.content_type, call.body())
    patch.apply(st, img, changes, project_id=call.project_id, admin=admin)
    return wire.json_response(200, render(img))


async def delete_image(call: Call) -> web.Response:
    state(call).delete(call.project_id, call.params["id"], admin=is_admin(call))
    return wire.json_response(204)


async def add_tag(call: Call) -> web.Response:
    st = state(call)
    img = st.owned(call.project_id, call.params["id"], admin=is_admin(call))
    st.add_tag(img, call.params["tag"])
    return wire.json_response(204)


async def delete_tag(call: Call) -> web.Response:
    st = state(call)
    img = st.owned(call.project_id, call.params["id"], admin=is_admin(call))
    st.remove_tag(img, call.params["tag"])
    return wire.json_response(204)


async def deactivate(call: Call) -> web.Response:
    st = state(call)
    st.deactivate(st.owned(call.project_id, call.params["id"], admin=is_admin(call), action="deactivate"))
    return wire.json_response(204)


async def reactivate(call: Call) -> web.Response:
    st = state(call)
    st.reactivate(st.owned(call.project_id, call.params["id"], admin=is_admin(call), action="reactivate"))
    return wire.json_response(204)


async def no_image_id(call: Call) -> web.Response:
    """``DELETE /v2/images/`` names no image (404); ``DELETE /v2/images`` is not a method there (405)."""
    if call.request.path.endswith("/"):
        raise ApiError(404, "No image found with ID ''")
    raise ApiError(405, f"The method {call.request.method} is not allowed for this resource.")


def add_routes(r: Router) -> None:
    s = "image"
    r.add(s, "DELETE", "/v2/images", no_image_id, "image:image:delete")
    r.add(s, "PATCH", "/v2/images", no_image_id, "image:image:update")
    r.add(s, "GET", "/", versions, "image:version:list", auth=False)
    r.add(s, "GET", "/versions", versions, "image:version:list", auth=False)
    r.add(s, "GET", "/v2/images", list_images, "image:image:list")
    r.add(s, "POST", "/v2/images", create_image, "image:image:create")
    r.add(s, "GET", "/v2/images/{id}", get_image, "image:image:get")
    r.add(s, "PATCH", "/v2/images/{id}", update_image, "image:image:update")
    r.add(s, "DELETE", "/v2/images/{id}", delete_image, "image:image:delete")
    r.add(s, "PUT", "/v2/images/{id}/tags/{tag}", add_tag, "image:tag:create")
    r.add(s, "DELETE", "/v2/images/{id}/tags/{tag}", delete_tag, "image:tag:delete")
    r.add(s, "POST", "/v2/images/{id}/actions/deactivate", deactivate, "image:image:deactivate")
    r.add(s, "POST", "/v2/images/{id}/actions/reactivate", reactivate, "image:image:reactivate")
    data.add_routes(r)
    member_handlers.add_routes(r)
    task_handlers.add_routes(r)
    schemas.add_routes(r)
    metadef_handlers.add_routes(r)
