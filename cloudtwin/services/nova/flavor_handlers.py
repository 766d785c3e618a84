"""Nova v2.1 wire format of flavor management (admin): create, delete, the 2.55 description update,
``os-extra_specs`` writes and ``os-flavor-access`` for private flavors."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import View, invalid, mv, nova_of
from cloudtwin.services.nova.models import Flavor

_NAME = re.compile(r"^(?! )[^\x00-\x1f]{1,255}(?<! )$")
_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]{1,255}(?<! )$")
_SPEC_KEY = re.compile(r"^[\w.:-]{1,255}$")
INT_MAX = 2 ** 31 - 1


def _int(body: dict[str, Any], key: str, *, minimum: int, required: bool = False, default: int = 0) -> int:
    v = body.get(key)
    if v is None:
        if required:
            raise invalid(key, None, f"'{key}' is a required property")
        return default
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not minimum <= v <= INT_MAX:
        raise invalid(key, v, f"{v!r} is not an integer between {minimum} and {INT_MAX}")
    return v


async def create_flavor(call: Call) -> web.Response:
    body = call.body("flavor")
    allowed = {"name", "ram", "vcpus", "disk", "id", "swap", "OS-FLV-EXT-DATA:ephemeral", "rxtx_factor",
               "os-flavor-access:is_public"} | ({"description"} if mv(call, 2, 55) else set())
    extra = set(body) - allowed
    if extra:
        raise invalid("flavor", body, f"Additional properties are not allowed ({', '.join(sorted(extra))} was unexpected)")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid("name", name, "a name of 1 to 255 printable characters without leading or trailing spaces")
    fid = body.get("id")
    if isinstance(fid, (int, float)) and not isinstance(fid, bool):
        fid = str(fid)
    if fid is not None and (not isinstance(fid, str) or not _ID.match(fid)):
        raise invalid("id", fid, "an id of letters, digits, '.', '_', '-' and spaces")
    rxtx = body.get("rxtx_factor", 1.0)
    if not isinstance(rxtx, (int, float)) or isinstance(rxtx, bool) or not 0 < rxtx <= 3.40282e38:
        raise invalid("rxtx_factor", rxtx, "a positive number")
    public = body.get("os-flavor-access:is_public", True)
    if not isinstance(public, bool):
        public = wire.boolean(public)
        if public is None:
            raise invalid("os-flavor-access:is_public", body["os-flavor-access:is_public"], "not a boolean")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 65535):
        raise invalid("description", description, "a string of at most 65535 characters")
    nova = nova_of(call)
    flavor = nova.create_flavor(
        fid, name=name, ram=_int(body, "ram", minimum=1, required=True),
        vcpus=_int(body, "vcpus", minimum=1, required=True), disk=_int(body, "disk", minimum=0, required=True),
        swap=_int(body, "swap", minimum=0), ephemeral=_int(body, "OS-FLV-EXT-DATA:ephemeral", minimum=0),
        rxtx_factor=float(rxtx), is_public=public, description=description)
    return wire.json_response(200, {"flavor": View(call).flavor(flavor)})


async def update_flavor(call: Call) -> web.Response:
    if not mv(call, 2, 55):
        raise ApiError(405, "The method PUT is not allowed for this resource.")
    body = call.body("flavor")
    if set(body) != {"description"}:
        raise invalid("flavor", body, "'description' is the only property to update")
    description = body["description"]
    if description is not None and (not isinstance(description, str) or len(description) > 65535):
        raise invalid("description", description, "a string of at most 65535 characters")
    f = nova_of(call).get_flavor(call.params["id"])
    f.description = description
    return wire.json_response(200, {"flavor": View(call).flavor(f)})


async def delete_flavor(call: Call) -> web.Response:
    nova_of(call).delete_flavor(call.params["id"])
    return wire.json_response(202)


# ---- extra specs --------------------------------------------------------------------------------------------

def _specs(body: Any) -> dict[str, str]:
    if not isinstance(body, dict) or not body:
        raise invalid("extra_specs", body, "a non-empty object")
    out = {}
    for k, v in body.items():
        if not isinstance(k, str) or not _SPEC_KEY.match(k):
            raise invalid("extra_specs", k, "keys are 1 to 255 of letters, digits, '_', '-', '.', ':'")
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or len(str(v)) > 255:
            raise invalid("extra_specs", v, "values are strings or numbers of at most 255 characters")
        out[k] = str(v)
    return out


async def set_extra_specs(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or "extra_specs" not in body:
        raise invalid("extra_specs", body, "'extra_specs' is a required property")
    specs = _specs(body["extra_specs"])
    f = nova_of(call).get_flavor(call.params["id"])
    f.extra_specs.update(specs)
    return wire.json_response(200, {"extra_specs": specs})


async def put_extra_spec(call: Call) -> web.Response:
    key = call.params["key"]
    body = call.body()
    specs = _specs(body)
    if len(specs) > 1:
        raise ApiError(400, "Request body contains too many items")
    if key not in specs:
        raise ApiError(400, "Request body and URI mismatch")
    f = nova_of(call).get_flavor(call.params["id"])
    f.extra_specs[key] = specs[key]
    return wire.json_response(200, {key: specs[key]})


async def delete_extra_spec(call: Call) -> web.Response:
    f = nova_of(call).get_flavor(call.params["id"])
    key = call.params["key"]
    if key not in f.extra_specs:
        raise ApiError(404, f"Flavor {f.id} has no extra specs with key {key}.")
    del f.extra_specs[key]
    return wire.json_response(200)


# ---- access --------------------------------------------------------------------------------------------------

def _access_doc(f: Flavor) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": f.id, "tenant_id": p} for p in f.access]}


async def list_access(call: Call) -> web.Response:
    f = nova_of(call).get_flavor(call.params["id"])
    if f.is_public:
        raise ApiError(404, "Access list not available for public flavors.")
    return wire.json_response(200, _access_doc(f))


async def flavor_action(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    if name not in ("addTenantAccess", "removeTenantAccess"):
        raise ApiError(400, f"There is no such action: {name}")
    if not isinstance(arg, dict) or not isinstance(arg.get("tenant"), str) or not arg["tenant"]:
        raise invalid("tenant", arg, "'tenant' is a required property")
    f = nova_of(call).get_flavor(call.params["id"])
    project = arg["tenant"]
    if name == "addTenantAccess":
        if f.is_public:
            raise ApiError(409, "Can not add access to a public flavor.")
        if project in f.access:
            raise ApiError(409, f"Flavor access already exists for flavor {f.id} and project {project} combination.")
        f.access.append(project)
    else:
        if project not in f.access:
            raise ApiError(404, f"Flavor access not found for {f.id} / {project} combination.")
        f.access.remove(project)
    return wire.json_response(200, _access_doc(f))


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "POST", "/v2.1/flavors", create_flavor, "compute:flavor:create")
    r.add(s, "PUT", "/v2.1/flavors/{id}", update_flavor, "compute:flavor:update")
    r.add(s, "DELETE", "/v2.1/flavors/{id}", delete_flavor, "compute:flavor:delete")
    r.add(s, "POST", "/v2.1/flavors/{id}/os-extra_specs", set_extra_specs, "compute:flavor_extra_specs:create")
    r.add(s, "PUT", "/v2.1/flavors/{id}/os-extra_specs/{key}", put_extra_spec, "compute:flavor_extra_specs:update")
    r.add(s, "DELETE", "/v2.1/flavors/{id}/os-extra_specs/{key}", delete_extra_spec,
          "compute:flavor_extra_specs:delete")
    r.add(s, "GET", "/v2.1/flavors/{id}/os-flavor-access", list_access, "compute:flavor_access:list")
    r.add(s, "POST", "/v2.1/flavors/{id}/action", flavor_action, "compute:flavor:action")
