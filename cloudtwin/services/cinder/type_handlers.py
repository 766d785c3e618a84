"""Cinder v3 wire format for volume types (list/show for everyone; create, update, delete, extra specs,
private type access and encryption for admins) and QoS specs (admin)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.policy import is_admin
from cloudtwin.services.cinder.handlers import _cinder, _mv, _project, volume_type_doc
from cloudtwin.services.cinder.resources import QosSpec, VolumeType
from cloudtwin.services.cinder.types import check_specs


def _admin(call: Call) -> None:
    _project(call)
    if not is_admin(call):
        raise ApiError(403, "Policy doesn't allow volume_extension:types_manage to be performed.")


def type_doc(vt: VolumeType, *, qos: bool = True) -> dict[str, Any]:
    """A type; create and update answer without ``qos_specs_id``, as Cinder's do."""
    doc = volume_type_doc(vt)
    doc["qos_specs_id"] = vt.qos_specs_id
    if not qos:
        del doc["qos_specs_id"]
    return doc


def _visible_type(call: Call, ref: str) -> VolumeType:
    c = _cinder(call)
    vt = c.get_type(ref)
    if not vt.is_public and not is_admin(call) and call.project_id not in vt.access:
        raise ApiError(404, f"Volume type {ref} could not be found.")
    return vt


async def list_types(call: Call) -> web.Response:
    _project(call)
    raw = call.query.get("is_public")
    is_public = None if raw is not None and raw.lower() == "none" else wire.truthy(raw) if raw else True
    items = [type_doc(t) for t in _cinder(call).visible_types(call.project_id, is_admin(call), is_public)]
    return wire.json_response(200, {"volume_types": wire.filter_by(items, call.query, ("name",))})


async def get_type(call: Call) -> web.Response:
    _project(call)
    c = _cinder(call)
    ref = call.params["id"]
    if ref == "default":
        if not _mv(call, 3, 62):
            raise ApiError(404, "Volume type default could not be found.")
        return wire.json_response(200, {"volume_type": type_doc(c.find_type(None))})
    return wire.json_response(200, {"volume_type": type_doc(_visible_type(call, ref))})


def _type_body(call: Call) -> dict[str, Any]:
    return call.body("volume_type")  # type: ignore[no-any-return]


async def create_type(call: Call) -> web.Response:
    _admin(call)
    body = _type_body(call)
    is_public = body.get("os-volume-type-access:is_public", body.get("is_public", True))
    parsed = wire.boolean(is_public)
    if parsed is None:
        raise ApiError(400, f"Invalid input received: Invalid value '{is_public}' for is_public.")
    specs = check_specs(body.get("extra_specs") or {})
    vt = _cinder(call).create_type(body.get("name"), body.get("description"), parsed, specs)
    return wire.json_response(200, {"volume_type": type_doc(vt, qos=False)})


async def update_type(call: Call) -> web.Response:
    _admin(call)
    body = _type_body(call)
    vt = _cinder(call).get_type(call.params["id"])
    is_public = body.get("is_public")
    if is_public is not None and wire.boolean(is_public) is None:
        raise ApiError(400, f"Invalid input received: Invalid value '{is_public}' for is_public.")
    _cinder(call).update_type(vt, name=body.get("name"), description=body.get("description", ...),
                              is_public=wire.boolean(is_public) if is_public is not None else None)
    doc = type_doc(vt, qos=False)
    del doc["os-volume-type-access:is_public"]      # Cinder's update view has is_public only
    return wire.json_response(200, {"volume_type": doc})


async def delete_type(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    c.delete_type(c.get_type(call.params["id"]))
    return wire.json_response(202)


# ---- extra specs
async def list_specs(call: Call) -> web.Response:
    _project(call)
    return wire.json_response(200, {"extra_specs": dict(_visible_type(call, call.params["id"]).extra_specs)})


async def create_specs(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    body = call.body()
    if not isinstance(body, dict) or "extra_specs" not in body:
        raise ApiError(400, "Invalid input received: 'extra_specs' is required.")
    specs = check_specs(body["extra_specs"])
    if not specs:
        raise ApiError(400, "Invalid input received: extra_specs must not be empty.")
    if _cinder(call).type_in_use(vt) and any(k == "volume_backend_name" for k in specs):
        raise ApiError(400, "Invalid input received: volume_backend_name cannot change on a type in use.")
    vt.extra_specs.update(specs)
    return wire.json_response(200, {"extra_specs": specs})


async def show_spec(call: Call) -> web.Response:
    _project(call)
    vt = _visible_type(call, call.params["id"])
    key = call.params["key"]
    if key not in vt.extra_specs:
        raise ApiError(404, f"Volume Type {vt.id} has no extra specs with key {key}.")
    return wire.json_response(200, {key: vt.extra_specs[key]})


def one_key_body(call: Call) -> dict[str, Any]:
    """The body of a ``PUT .../{key}`` of specs: one key, the URL's (Cinder's checks and messages)."""
    body = call.body()
    if not isinstance(body, dict) or not body:
        raise ApiError(400, "Invalid input received: the body must be a one-key object.")
    if len(body) > 1:
        raise ApiError(400, "Request body contains too many items.")
    if call.params["key"] not in body:
        raise ApiError(400, "Request body and URI mismatch")
    return body


async def update_spec(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    key = call.params["key"]
    specs = check_specs(one_key_body(call))
    vt.extra_specs.update(specs)
    return wire.json_response(200, specs)


async def delete_spec(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    key = call.params["key"]
    if key not in vt.extra_specs:
        raise ApiError(404, f"Volume Type {vt.id} has no extra specs with key {key}.")
    del vt.extra_specs[key]
    return wire.json_response(202)


# ---- access
async def type_action(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise ApiError(400, f"There is no such action: {name}")
    project = arg.get("project") if isinstance(arg, dict) else None
    if not isinstance(project, str) or not project:
        raise ApiError(400, "Invalid input received: 'project' is required.")
    if name == "addProjectAccess":
        _cinder(call).add_access(vt, project)
    else:
        _cinder(call).remove_access(vt, project)
    return wire.json_response(202)


async def list_access(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    if vt.is_public:
        raise ApiError(404, f"Volume type access not found for {vt.id}: the type is public.")
    return wire.json_response(200, {"volume_type_access": [{"volume_type_id": vt.id, "project_id": p}
                                                           for p in vt.access]})


# ---- encryption
def _encryption_doc(vt: VolumeType) -> dict[str, Any]:
    enc = vt.encryption or {}
    return {"volume_type_id": vt.id, "encryption_id": vt.id, "provider": enc.get("provider"),
            "cipher": enc.get("cipher"), "key_size": enc.get("key_size"),
            "control_location": enc.get("control_location"), "deleted": False,
            "created_at": enc.get("created_at"), "updated_at": enc.get("updated_at"), "deleted_at": None}


async def show_encryption(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    if vt.encryption is None:
        return wire.json_response(200, {})
    return wire.json_response(200, _encryption_doc(vt))


async def show_encryption_key(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    key = call.params["key"]
    if vt.encryption is None or key not in ("provider", "cipher", "key_size", "control_location"):
        raise ApiError(404, f"Volume type encryption for type {vt.id} has no key {key}.")
    return wire.json_response(200, {key: vt.encryption.get(key)})


def _encryption_body(call: Call) -> dict[str, Any]:
    body = call.body("encryption")
    allowed = {"provider", "cipher", "key_size", "control_location"}
    if set(body) - allowed:
        raise ApiError(400, f"Invalid input received: unknown encryption keys {sorted(set(body) - allowed)}")
    return body  # type: ignore[no-any-return]


async def create_encryption(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    _cinder(call).set_encryption(vt, _encryption_body(call), create=True)
    doc = _encryption_doc(vt)
    return wire.json_response(200, {"encryption": {k: doc[k] for k in (
        "volume_type_id", "encryption_id", "provider", "cipher", "key_size", "control_location")}})


async def update_encryption(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    body = _encryption_body(call)
    _cinder(call).set_encryption(vt, body, create=False)
    return wire.json_response(200, {"encryption": body})


async def delete_encryption(call: Call) -> web.Response:
    _admin(call)
    vt = _cinder(call).get_type(call.params["id"])
    _cinder(call).delete_encryption(vt)
    return wire.json_response(202)


# ---- QoS specs
def qos_doc(call: Call, q: QosSpec) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs)}


def _qos_links(call: Call, q: QosSpec) -> list[dict[str, str]]:
    base = call.base_url()
    return [{"rel": "self", "href": f"{base}/v3/{call.project_id}/qos-specs/{q.id}"},
            {"rel": "bookmark", "href": f"{base}/{call.project_id}/qos-specs/{q.id}"}]


async def list_qos(call: Call) -> web.Response:
    _admin(call)
    items = sorted(_cinder(call).qos_specs.values(), key=lambda q: q.created_at)
    return wire.json_response(200, {"qos_specs": [qos_doc(call, q) for q in items]})


async def create_qos(call: Call) -> web.Response:
    _admin(call)
    body = dict(call.body("qos_specs"))
    name = body.pop("name", None)
    consumer = body.pop("consumer", "back-end")
    specs = check_specs(body, "qos_specs")
    q = _cinder(call).create_qos(name, consumer, specs)
    return wire.json_response(200, {"qos_specs": qos_doc(call, q), "links": _qos_links(call, q)})


async def show_qos(call: Call) -> web.Response:
    _admin(call)
    q = _cinder(call).get_qos(call.params["id"])
    return wire.json_response(200, {"qos_specs": qos_doc(call, q), "links": _qos_links(call, q)})


async def update_qos(call: Call) -> web.Response:
    _admin(call)
    q = _cinder(call).get_qos(call.params["id"])
    body = dict(call.body("qos_specs"))
    if "consumer" in body:
        consumer = body.pop("consumer")
        if consumer not in ("front-end", "back-end", "both"):
            raise ApiError(400, "Invalid input received: consumer must be front-end, back-end or both.")
        q.consumer = consumer
    specs = check_specs(body, "qos_specs")
    q.specs.update(specs)
    q.touch()
    return wire.json_response(200, {"qos_specs": {**specs, **({"consumer": q.consumer} if "consumer" in
                                                               call.body("qos_specs") else {})}})


async def delete_qos_keys(call: Call) -> web.Response:
    _admin(call)
    q = _cinder(call).get_qos(call.params["id"])
    body = call.body()
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ApiError(400, "Invalid input received: 'keys' is a list of strings.")
    missing = [k for k in keys if k not in q.specs]
    if missing:
        raise ApiError(404, f"QoS spec {q.id} has no key {missing[0]}.")
    for k in keys:
        del q.specs[k]
    return wire.json_response(202)


async def delete_qos(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    c.delete_qos(c.get_qos(call.params["id"]), force=bool(wire.truthy(call.query.get("force"))))
    return wire.json_response(202)


async def qos_associations(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    q = c.get_qos(call.params["id"])
    return wire.json_response(200, {"qos_associations": [
        {"association_type": "volume_type", "name": t.name, "id": t.id} for t in c.qos_associations(q)]})


def _vol_type_param(call: Call) -> VolumeType:
    ref = call.query.get("vol_type_id")
    if not ref:
        raise ApiError(400, "Invalid input received: vol_type_id is required.")
    return _cinder(call).get_type(ref)


async def associate_qos(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    q = c.get_qos(call.params["id"])
    c.associate_qos(q, _vol_type_param(call))
    return wire.json_response(202)


async def disassociate_qos(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    q = c.get_qos(call.params["id"])
    c.disassociate_qos(q, _vol_type_param(call))
    return wire.json_response(202)


async def disassociate_all_qos(call: Call) -> web.Response:
    _admin(call)
    c = _cinder(call)
    c.disassociate_qos(c.get_qos(call.params["id"]))
    return wire.json_response(202)


def add_routes(r: Router) -> None:
    s, p = "volume", "/v3/{project_id}"
    t = f"{p}/types/{{id}}"
    table = [
        ("GET", f"{p}/types", list_types, "volume_type:list"), ("POST", f"{p}/types", create_type, "volume_type:create"),
        ("GET", t, get_type, "volume_type:get"), ("PUT", t, update_type, "volume_type:update"),
        ("DELETE", t, delete_type, "volume_type:delete"),
        ("GET", f"{t}/extra_specs", list_specs, "volume_type:get"),
        ("POST", f"{t}/extra_specs", create_specs, "volume_type:update"),
        ("GET", f"{t}/extra_specs/{{key}}", show_spec, "volume_type:get"),
        ("PUT", f"{t}/extra_specs/{{key}}", update_spec, "volume_type:update"),
        ("DELETE", f"{t}/extra_specs/{{key}}", delete_spec, "volume_type:update"),
        ("POST", f"{t}/action", type_action, "volume_type:update"),
        ("GET", f"{t}/os-volume-type-access", list_access, "volume_type:get"),
        ("GET", f"{t}/encryption", show_encryption, "volume_type:get"),
        ("GET", f"{t}/encryption/{{key}}", show_encryption_key, "volume_type:get"),
        ("POST", f"{t}/encryption", create_encryption, "volume_type:update"),
        ("PUT", f"{t}/encryption/{{key}}", update_encryption, "volume_type:update"),
        ("DELETE", f"{t}/encryption/{{key}}", delete_encryption, "volume_type:update"),
        ("GET", f"{p}/qos-specs", list_qos, "qos:list"), ("POST", f"{p}/qos-specs", create_qos, "qos:create"),
        ("GET", f"{p}/qos-specs/{{id}}", show_qos, "qos:get"),
        ("PUT", f"{p}/qos-specs/{{id}}", update_qos, "qos:update"),
        ("DELETE", f"{p}/qos-specs/{{id}}", delete_qos, "qos:delete"),
        ("PUT", f"{p}/qos-specs/{{id}}/delete_keys", delete_qos_keys, "qos:update"),
        ("GET", f"{p}/qos-specs/{{id}}/associations", qos_associations, "qos:get"),
        ("GET", f"{p}/qos-specs/{{id}}/associate", associate_qos, "qos:update"),
        ("GET", f"{p}/qos-specs/{{id}}/disassociate", disassociate_qos, "qos:update"),
        ("GET", f"{p}/qos-specs/{{id}}/disassociate_all", disassociate_all_qos, "qos:update"),
    ]
    for method, path, handler, op in table:
        r.add(s, method, path, handler, f"volume:{op}")
