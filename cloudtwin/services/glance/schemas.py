"""Glance v2 JSON schemas (``/v2/schemas/...``): the documents clients such as the openstack CLI read
to know which image attributes exist, plus members, tasks and every metadefs entity."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance.models import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES

_NULL_STR = {"type": ["null", "string"]}
IMAGE_PROPS: dict[str, Any] = {
    "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
    "name": {"type": ["null", "string"], "maxLength": 255},
    "status": {"type": "string", "readOnly": True,
               "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                        "pending_delete", "deactivated"]},
    "visibility": {"type": "string", "enum": list(VISIBILITIES)},
    "protected": {"type": "boolean"}, "os_hidden": {"type": "boolean"},
    "checksum": {**_NULL_STR, "readOnly": True, "maxLength": 32},
    "owner": {**_NULL_STR, "maxLength": 255},
    "size": {"type": ["null", "integer"], "readOnly": True},
    "virtual_size": {"type": ["null", "integer"], "readOnly": True},
    "min_ram": {"type": "integer"}, "min_disk": {"type": "integer"},
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
    "created_at": {"type": "string", "readOnly": True}, "updated_at": {"type": "string", "readOnly": True},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
    "self": {"type": "string", "readOnly": True}, "file": {"type": "string", "readOnly": True},
    "schema": {"type": "string", "readOnly": True}, "direct_url": {"type": "string", "readOnly": True},
    "locations": {"type": "array", "items": {"type": "object"}},
    "stores": {"type": "string", "readOnly": True},
    "os_hash_algo": {**_NULL_STR, "readOnly": True, "maxLength": 64},
    "os_hash_value": {**_NULL_STR, "readOnly": True, "maxLength": 128},
}


def image_schema() -> dict[str, Any]:
    return {"name": "image", "properties": IMAGE_PROPS, "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def _collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"name": name,
            "properties": {name: {"type": "array", "items": item}, "schema": {"type": "string"},
                           "first": {"type": "string"}, "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


MEMBER = {"name": "member", "properties": {
    "created_at": {"type": "string"}, "updated_at": {"type": "string"}, "image_id": {"type": "string"},
    "member_id": {"type": "string"}, "schema": {"type": "string", "readOnly": True},
    "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]}}}
TASK = {"name": "task", "properties": {
    "id": {"type": "string"}, "type": {"type": "string", "enum": ["import", "api_image_import"]},
    "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"]},
    "input": {"type": ["null", "object"]}, "result": {"type": ["null", "object"]},
    "owner": {"type": "string"}, "message": {"type": "string"}, "image_id": {"type": "string"},
    "request_id": {"type": "string"}, "user_id": {"type": "string"},
    "expires_at": {"type": ["null", "string"]}, "created_at": {"type": "string"},
    "updated_at": {"type": "string"}, "self": {"type": "string"}, "schema": {"type": "string"}}}
_PROPERTY = {"name": "property", "properties": {
    "name": {"type": "string", "maxLength": 80}, "title": {"type": "string"},
    "description": {"type": "string"}, "type": {"type": "string", "enum": [
        "array", "boolean", "integer", "number", "object", "string", None]},
    "default": {}, "enum": {"type": "array"}, "readonly": {"type": "boolean"}, "operators": {"type": "array"},
    "minimum": {"type": "number"}, "maximum": {"type": "number"}, "pattern": {"type": "string"},
    "minLength": {"type": "integer"}, "maxLength": {"type": "integer"}, "items": {"type": "object"}},
    "required": ["name", "title", "type"]}
_TAG = {"name": "tag", "properties": {"name": {"type": "string", "maxLength": 255},
                                      "created_at": {"type": "string"}, "updated_at": {"type": "string"}},
        "required": ["name"]}
_RTA = {"name": "resource_type_association", "properties": {
    "name": {"type": "string", "maxLength": 80}, "prefix": {"type": "string", "maxLength": 80},
    "properties_target": {"type": "string", "maxLength": 80},
    "created_at": {"type": "string"}, "updated_at": {"type": "string"}}, "required": ["name"]}
_OBJECT = {"name": "object", "properties": {
    "name": {"type": "string", "maxLength": 80}, "description": {"type": "string"},
    "required": {"type": "array"}, "properties": {"type": "object"}, "schema": {"type": "string"},
    "self": {"type": "string"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"}},
    "required": ["name"]}
_NAMESPACE = {"name": "namespace", "properties": {
    "namespace": {"type": "string", "maxLength": 80}, "display_name": {"type": "string", "maxLength": 80},
    "description": {"type": "string", "maxLength": 500},
    "visibility": {"type": "string", "enum": ["public", "private"]}, "protected": {"type": "boolean"},
    "owner": {"type": "string", "maxLength": 255}, "created_at": {"type": "string"},
    "updated_at": {"type": "string"}, "schema": {"type": "string"}, "self": {"type": "string"},
    "resource_type_associations": {"type": "array", "items": _RTA}, "properties": {"type": "object"},
    "objects": {"type": "array", "items": _OBJECT}, "tags": {"type": "array", "items": _TAG}},
    "required": ["namespace"]}


def _named(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "name": name}


SCHEMAS: dict[str, dict[str, Any]] = {
    "image": image_schema(), "images": _collection("images", image_schema()),
    "member": MEMBER, "members": _collection("members", MEMBER),
    "task": TASK, "tasks": _collection("tasks", TASK),
    "metadefs/namespace": _NAMESPACE, "metadefs/namespaces": _collection("namespaces", _NAMESPACE),
    "metadefs/resource_type": _RTA,
    "metadefs/resource_types": _collection("resource_type_associations", _RTA),
    "metadefs/object": _OBJECT, "metadefs/objects": _collection("objects", _OBJECT),
    "metadefs/property": _PROPERTY, "metadefs/properties": _named("properties", {
        "properties": {"properties": {"type": "object", "additionalProperties": _PROPERTY}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "describedby", "href": "{schema}"}]}),
    "metadefs/tag": _TAG, "metadefs/tags": _collection("tags", _TAG),
}


async def show_schema(call: Call) -> web.Response:
    name = call.params["name"] if "sub" not in call.params else f"{call.params['name']}/{call.params['sub']}"
    doc = SCHEMAS.get(name)
    if doc is None:
        raise ApiError(404, f"Schema {name} not found.")
    return wire.json_response(200, doc)


def add_routes(r: Router) -> None:
    r.add("image", "GET", "/v2/schemas/{name}", show_schema, "image:schema:get")
    r.add("image", "GET", "/v2/schemas/{name}/{sub}", show_schema, "image:schema:get")
