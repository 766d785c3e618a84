"""``PATCH /v2/images/{id}``: Glance's JSON-patch dialects, parsed and applied all-or-nothing.

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 style ``{"op", "path",
"value"}``) and ``application/openstack-images-v2.0-json-patch`` (``{"replace": "/name", "value"}``).
Paths are ``/<attribute>`` (``~0``/``~1`` escapes) or ``/tags`` and ``/tags/<n>`` style list members are
refused as Glance does. The rules follow Glance's image schema: read-only attributes 403, reserved ones
403, wrong types or values 400, removing or replacing a property that does not exist 409, and a core
attribute can be replaced but not removed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.glance.models import (CORE, VISIBILITIES, GlanceState, Image, check_formats,
                                              check_property_key)

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
OPS = ("add", "replace", "remove")
# core attributes a patch may change, with the type each takes
WRITABLE: dict[str, tuple[type, ...]] = {
    "name": (str, type(None)), "visibility": (str,), "protected": (bool,), "os_hidden": (bool,),
    "min_ram": (int,), "min_disk": (int,), "disk_format": (str, type(None)),
    "container_format": (str, type(None)), "tags": (list,), "owner": (str, type(None)),
}


@dataclass(frozen=True)
class Change:
    op: str
    key: str
    value: Any = None


def parse(content_type: str, body: Any) -> list[Change]:
    if content_type not in MEDIA_TYPES:
        raise ApiError(415, f"Unsupported Content-Type '{content_type}'; use one of {', '.join(MEDIA_TYPES)}")
    if not isinstance(body, list):
        raise ApiError(400, "Request body must be a JSON array of operation objects.")
    v21 = content_type == MEDIA_TYPES[0]
    return [_change(item, v21) for item in body]


def _change(item: Any, v21: bool) -> Change:
    if not isinstance(item, dict):
        raise ApiError(400, "Operations must be JSON objects.")
    if v21:
        op, path = item.get("op"), item.get("path")
        if op not in OPS:
            raise ApiError(400, f"Invalid operation: `{op}`: must be one of {', '.join(OPS)}.")
    else:
        ops = [o for o in OPS if o in item]
        if len(ops) != 1:
            raise ApiError(400, "Operation objects must contain exactly one member named \"add\", "
                                "\"remove\", or \"replace\".")
        op, path = ops[0], item[ops[0]]
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise ApiError(400, f"Invalid JSON pointer for this resource: '{path}'")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise ApiError(400, f"Nested paths are not allowed: '{path}'")
    key = parts[0].replace("~1", "/").replace("~0", "~")
    if op != "remove" and "value" not in item:
        raise ApiError(400, f"Operation \"{op}\" requires a member named \"value\".")
    if op == "remove" and "value" in item:
        raise ApiError(400, "Operation \"remove\" must not carry a \"value\".")
    return Change(op, key, item.get("value"))


def apply(state: GlanceState, img: Image, changes: list[Change], *, project_id: str, admin: bool) -> None:
    """Check every change on a copy first, then apply them: a refused patch changes nothing."""
    trial = copy.deepcopy(_view(img))
    for ch in changes:
        _apply_one(trial, ch, project_id=project_id, admin=admin)
    props = {k: v for k, v in trial.items() if k not in CORE}
    check_formats(trial["disk_format"], trial["container_format"])
    if trial["visibility"] not in VISIBILITIES:
        raise ApiError(400, f"Invalid value '{trial['visibility']}' for parameter 'visibility'")
    if trial["min_ram"] < 0 or trial["min_disk"] < 0:
        raise ApiError(400, "Cannot set min_ram or min_disk to a negative value.")
    if trial["name"] is not None and len(trial["name"]) > 255:
        raise ApiError(400, "Invalid value for 'name': at most 255 characters")
    tags = list(dict.fromkeys(trial["tags"]))
    state.check_quotas(tags, props)
    if trial["visibility"] != "shared" and img.visibility == "shared":
        img.members.clear()      # Glance drops members with the sharing
    img.name = trial["name"] or ""
    for key in ("visibility", "protected", "os_hidden", "min_ram", "min_disk", "disk_format",
                "container_format"):
        setattr(img, key, trial[key])
    if trial["owner"] and trial["owner"] != img.owner:
        img.owner = img.project_id = trial["owner"]
    img.tags = tags
    kept = {k: v for k, v in img.properties.items() if k.startswith("os_glance_")}
    img.properties = {**props, **kept}
    img.touch()


def _view(img: Image) -> dict[str, Any]:
    out = dict(img.properties)
    out.update({"name": img.name or None, "visibility": img.visibility, "protected": img.protected,
                "os_hidden": img.os_hidden, "min_ram": img.min_ram, "min_disk": img.min_disk,
                "disk_format": img.disk_format, "container_format": img.container_format,
                "tags": list(img.tags), "owner": img.owner})
    return out


def _apply_one(doc: dict[str, Any], ch: Change, *, project_id: str, admin: bool) -> None:
    key = ch.key
    if key in ("locations", "direct_url"):
        raise ApiError(403, "It's not allowed to update locations if locations are invisible.")
    check_property_key(key)
    if key in WRITABLE:
        if ch.op == "remove":
            raise ApiError(403, f"Properties {key} must not be removed: it is a core attribute.")
        value = ch.value
        if not isinstance(value, WRITABLE[key]) or (isinstance(value, bool) and bool not in WRITABLE[key]):
            raise ApiError(400, f"Invalid value for '{key}': Provided object does not match schema 'image'")
        if key == "tags" and not all(isinstance(t, str) for t in value):
            raise ApiError(400, "Invalid value for 'tags': a list of strings")
        if key == "owner" and value != project_id and not admin:
            raise ApiError(403, "Owner can't be updated by non admin.")
        doc[key] = value
        return
    if key in CORE:
        raise ApiError(403, f"Attribute '{key}' is read-only.")
    if ch.op == "remove":
        if key not in doc:
            raise ApiError(409, f"Property {key} does not exist.")
        del doc[key]
        return
    if ch.op == "replace" and key not in doc:
        raise ApiError(409, f"Property {key} does not exist.")
    if not isinstance(ch.value, str):
        raise ApiError(400, f"Invalid value for property '{key}': extra properties are strings")
    if len(key) > 255:
        raise ApiError(400, f"Invalid property name '{key[:32]}...': at most 255 characters")
    doc[key] = ch.value
