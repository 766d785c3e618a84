"""Glance v2 metadefs wire format: ``/v2/metadefs/namespaces`` and their properties, objects, tags and
resource type associations, plus ``/v2/metadefs/resource_types``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance.access import is_admin, state
from cloudtwin.services.glance.metadefs import Entry, MetadefState, Namespace

PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def _defs(call: Call) -> MetadefState:
    return state(call).metadefs


def _ns(call: Call, *, write: bool = False) -> Namespace:
    defs, name = _defs(call), call.params["ns"]
    if write:
        return defs.writable(name, call.project_id, is_admin(call))
    return defs.get(name, call.project_id, is_admin(call))


def _obj(call: Call) -> dict[str, Any]:
    body = call.body()
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _times(e: Entry | Namespace) -> dict[str, Any]:
    return {"created_at": wire.iso(e.created_at), "updated_at": wire.iso(e.updated_at)}


def render_property(e: Entry) -> dict[str, Any]:
    return {"name": e.name, **e.doc}


def render_object(ns: Namespace, e: Entry) -> dict[str, Any]:
    return {"name": e.name, "required": [], "properties": {}, **e.doc, **_times(e),
            "schema": "/v2/schemas/metadefs/object",
            "self": f"/v2/metadefs/namespaces/{ns.namespace}/objects/{e.name}"}


def render_tag(e: Entry) -> dict[str, Any]:
    return {"name": e.name, **_times(e)}


def render_assoc(e: Entry) -> dict[str, Any]:
    return {"name": e.name, **e.doc, **_times(e)}


def render_namespace(ns: Namespace, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": ns.namespace, "display_name": ns.display_name,
                           "description": ns.description, "visibility": ns.visibility,
                           "protected": ns.protected, "owner": ns.owner, **_times(ns),
                           "schema": "/v2/schemas/metadefs/namespace",
                           "self": f"/v2/metadefs/namespaces/{ns.namespace}"}
    if ns.associations:
        out["resource_type_associations"] = [render_assoc(e) for e in ns.associations.values()]
    if full:
        if ns.properties:
            out["properties"] = {e.name: {k: v for k, v in render_property(e).items() if k != "name"}
                                 for e in ns.properties.values()}
        if ns.objects:
            out["objects"] = [render_object(ns, e) for e in ns.objects.values()]
        if ns.tags:
            out["tags"] = [render_tag(e) for e in ns.tags.values()]
    return out


# ---- namespaces
async def list_namespaces(call: Call) -> web.Response:
    q = call.query
    items = _defs(call).visible(call.project_id, is_admin(call))
    if "visibility" in q:
        items = [n for n in items if n.visibility == q["visibility"]]
    if "resource_types" in q:
        want = set(q["resource_types"].split(","))
        items = [n for n in items if want & set(n.associations)]
    page, marker = wire.page(items, q, key="namespace", max_limit=1000,
                             marker_error="Invalid marker {marker}")
    body: dict[str, Any] = {"namespaces": [render_namespace(n, full=False) for n in page],
                            "first": "/v2/metadefs/namespaces", "schema": "/v2/schemas/metadefs/namespaces"}
    if marker:
        body["next"] = f"/v2/metadefs/namespaces?marker={marker}"
    return wire.json_response(200, body)


async def create_namespace(call: Call) -> web.Response:
    ns = _defs(call).create(_obj(call), call.project_id)
    return wire.json_response(201, render_namespace(ns))


async def show_namespace(call: Call) -> web.Response:
    return wire.json_response(200, render_namespace(_ns(call)))


async def update_namespace(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    _defs(call).update(ns, _obj(call))
    return wire.json_response(200, render_namespace(ns))


async def delete_namespace(call: Call) -> web.Response:
    _defs(call).delete(_ns(call, write=True))
    return wire.json_response(204)


# ---- properties
def _property_doc(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("title"), str):
        raise ApiError(400, "A property needs a string 'title'.")
    if body.get("type") not in PROPERTY_TYPES:
        raise ApiError(400, f"A property needs a 'type', one of {', '.join(PROPERTY_TYPES)}.")
    return body


async def list_properties(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, {"properties": {e.name: {k: v for k, v in render_property(e).items()
                                                             if k != "name"} for e in ns.properties.values()}})


async def create_property(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    body = _property_doc(_obj(call))
    e = _defs(call).put_entry(ns.properties, body.get("name"), body, create=True)
    return wire.json_response(201, render_property(e))


async def show_property(call: Call) -> web.Response:
    ns = _ns(call)
    name = call.params["name"]
    prefix = ""
    rtype = call.query.get("resource_type")
    if rtype and rtype in ns.associations:
        prefix = ns.associations[rtype].doc.get("prefix", "") or ""
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    return wire.json_response(200, render_property(_defs(call).entry(ns.properties, name, "property", ns)))


async def update_property(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    old = call.params["name"]
    _defs(call).entry(ns.properties, old, "property", ns)
    body = _property_doc(_obj(call))
    e = _defs(call).put_entry(ns.properties, body.get("name", old), body, create=False, old=old)
    return wire.json_response(200, render_property(e))


async def delete_property(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    _defs(call).entry(ns.properties, call.params["name"], "property", ns)
    del ns.properties[call.params["name"]]
    return wire.json_response(204)


# ---- objects
async def list_objects(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, {"objects": [render_object(ns, e) for e in ns.objects.values()],
                                    "schema": "/v2/schemas/metadefs/objects"})


async def create_object(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    body = _obj(call)
    e = _defs(call).put_entry(ns.objects, body.get("name"), body, create=True)
    return wire.json_response(201, render_object(ns, e))


async def show_object(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, render_object(ns, _defs(call).entry(ns.objects, call.params["name"],
                                                                       "object", ns)))


async def update_object(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    old = call.params["name"]
    _defs(call).entry(ns.objects, old, "object", ns)
    body = _obj(call)
    e = _defs(call).put_entry(ns.objects, body.get("name", old), body, create=False, old=old)
    return wire.json_response(200, render_object(ns, e))


async def delete_object(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    _defs(call).entry(ns.objects, call.params["name"], "object", ns)
    del ns.objects[call.params["name"]]
    return wire.json_response(204)


# ---- tags
async def list_tags(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, {"tags": [render_tag(e) for e in ns.tags.values()]})


async def create_tags(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    tags = _obj(call).get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise ApiError(400, "'tags' must be a list of objects with a 'name'.")
    names = [t.get("name") for t in tags]
    if len(set(map(str, names))) != len(names):
        raise ApiError(409, "Duplicate tag names in the request.")
    if call.request.headers.get("X-Openstack-Append", "").lower() != "true":
        ns.tags.clear()
    for name in names:
        _defs(call).put_entry(ns.tags, name, {}, create=True)
    return wire.json_response(201, {"tags": [{"name": n} for n in names]})


async def delete_tags(call: Call) -> web.Response:
    _ns(call, write=True).tags.clear()
    return wire.json_response(204)


async def create_tag(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    e = _defs(call).put_entry(ns.tags, call.params["name"], {}, create=True)
    return wire.json_response(201, render_tag(e))


async def show_tag(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, render_tag(_defs(call).entry(ns.tags, call.params["name"], "tag", ns)))


async def update_tag(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    old = call.params["name"]
    _defs(call).entry(ns.tags, old, "tag", ns)
    e = _defs(call).put_entry(ns.tags, _obj(call).get("name"), {}, create=False, old=old)
    return wire.json_response(200, render_tag(e))


async def delete_tag(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    _defs(call).entry(ns.tags, call.params["name"], "tag", ns)
    del ns.tags[call.params["name"]]
    return wire.json_response(204)


# ---- resource types
async def list_resource_types(call: Call) -> web.Response:
    rts = _defs(call).resource_types
    return wire.json_response(200, {"resource_types": [
        {"name": n, "created_at": wire.iso(ts), "updated_at": wire.iso(ts)} for n, ts in sorted(rts.items())]})


async def list_associations(call: Call) -> web.Response:
    ns = _ns(call)
    return wire.json_response(200, {"resource_type_associations": [render_assoc(e)
                                                                   for e in ns.associations.values()]})


async def create_association(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    return wire.json_response(201, render_assoc(_defs(call).associate(ns, _obj(call))))


async def delete_association(call: Call) -> web.Response:
    ns = _ns(call, write=True)
    _defs(call).entry(ns.associations, call.params["name"], "resource_type", ns)
    del ns.associations[call.params["name"]]
    return wire.json_response(204)


def add_routes(r: Router) -> None:
    s, base = "image", "/v2/metadefs/namespaces"
    table = [
        ("GET", base, list_namespaces, "namespace:list"), ("POST", base, create_namespace, "namespace:create"),
        ("GET", base + "/{ns}", show_namespace, "namespace:get"),
        ("PUT", base + "/{ns}", update_namespace, "namespace:update"),
        ("DELETE", base + "/{ns}", delete_namespace, "namespace:delete"),
        ("GET", base + "/{ns}/properties", list_properties, "property:list"),
        ("POST", base + "/{ns}/properties", create_property, "property:create"),
        ("GET", base + "/{ns}/properties/{name}", show_property, "property:get"),
        ("PUT", base + "/{ns}/properties/{name}", update_property, "property:update"),
        ("DELETE", base + "/{ns}/properties/{name}", delete_property, "property:delete"),
        ("GET", base + "/{ns}/objects", list_objects, "object:list"),
        ("POST", base + "/{ns}/objects", create_object, "object:create"),
        ("GET", base + "/{ns}/objects/{name}", show_object, "object:get"),
        ("PUT", base + "/{ns}/objects/{name}", update_object, "object:update"),
        ("DELETE", base + "/{ns}/objects/{name}", delete_object, "object:delete"),
        ("GET", base + "/{ns}/tags", list_tags, "tag:list"),
        ("POST", base + "/{ns}/tags", create_tags, "tag:create"),
        ("DELETE", base + "/{ns}/tags", delete_tags, "tag:delete"),
        ("GET", base + "/{ns}/tags/{name}", show_tag, "tag:get"),
        ("POST", base + "/{ns}/tags/{name}", create_tag, "tag:create"),
        ("PUT", base + "/{ns}/tags/{name}", update_tag, "tag:update"),
        ("DELETE", base + "/{ns}/tags/{name}", delete_tag, "tag:delete"),
        ("GET", "/v2/metadefs/resource_types", list_resource_types, "resource_type:list"),
        ("GET", base + "/{ns}/resource_types", list_associations, "resource_type:list"),
        ("POST", base + "/{ns}/resource_types", create_association, "resource_type:create"),
        ("DELETE", base + "/{ns}/resource_types/{name}", delete_association, "resource_type:delete"),
    ]
    for method, path, handler, op in table:
        r.add(s, method, path, handler, f"image:metadef_{op}")
