"""The admin API under ``/_twin``: clouds, profiles, faults, scenarios, events, state, reset, snapshots
and, when the twin runs one, the data plane (status, probes, the compiler-break hook, and per VM
``/vms/{server}`` and ``/vms/{server}/exec`` from ``vm_hooks``).

It is how a test drives the twin: "take region RegionOne of cloud-2 down for 30 s", "throttle cloud-3
at 10 creates/s", "what did you inject and which requests did it hit?". Bodies are JSON; errors are
``{"error": {"code", "message"}}``. When the twin has an admin token (required for non-loopback
binds) every call needs ``X-Twin-Admin-Token``.
"""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from cloudtwin import snapshot, wire
from cloudtwin.errors import ApiError
from cloudtwin.profiles import ProfileError
from cloudtwin.routing import Call, Router
from cloudtwin.vm_hooks import vm_exec, vm_info

SCENARIO_DIR = Path(__file__).with_name("scenarios")


def _ok(body: Any, status: int = 200) -> web.Response:
    return wire.json_response(status, body)


def _int(call: Call, name: str, default: int) -> int:
    raw = call.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter '{name}' must be an integer") from None


async def health(call: Call) -> web.Response:
    return _ok({"status": "ok", "clouds": len(call.twin.clouds), "uptime": round(time.time() - call.twin.started_at, 3)})


async def stats(call: Call) -> web.Response:
    twin = call.twin
    dispatcher = call.request.app["dispatcher"]
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _ok({"clouds": len(twin.clouds), "tokens": len(twin.tokens),
                "requests": dict(dispatcher.requests), "server_errors": dispatcher.server_errors,
                "throttled": twin.faults.throttled, "transitions_pending": twin.scheduler.pending(),
                "transitions_applied": twin.scheduler.applied, "events": dict(twin.events.counts),
                "max_rss_mib": round(rss_kib / 1024, 1), "uptime": round(time.time() - twin.started_at, 3)})


async def cluster(call: Call) -> web.Response:
    """``GET /_twin/cluster`` on a twin that is no shard (a shard answers it in ``cloudtwin.fanout``)."""
    raise ApiError(404, "This twin is not a shard of a cluster (start it with --cluster FILE --shard NAME).")


# ---- clouds and profiles
async def list_clouds(call: Call) -> web.Response:
    return _ok({"clouds": [c.summary() for c in call.twin.clouds.values()]})


async def get_cloud(call: Call) -> web.Response:
    cloud = call.twin.clouds.get(call.params["name"])
    if cloud is None:
        raise ApiError(404, f"cloud '{call.params['name']}' not found")
    return _ok({"cloud": cloud.summary()})


async def create_cloud(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ApiError(400, "body: {\"name\": \"cloud-9\", \"profile\": \"openstack\"}")
    try:
        cloud = call.twin.add_cloud(body["name"], str(body.get("profile") or call.twin.profile_for(body["name"])))
    except ProfileError as exc:
        raise ApiError(409 if "already exists" in str(exc) else 400, str(exc)) from None
    return _ok({"cloud": cloud.summary()}, 201)


async def delete_cloud(call: Call) -> web.Response:
    if call.params["name"] not in call.twin.clouds:
        raise ApiError(404, f"cloud '{call.params['name']}' not found")
    call.twin.remove_cloud(call.params["name"])
    return wire.json_response(204)


async def list_profiles(call: Call) -> web.Response:
    cat = call.twin.profiles
    return _ok({"profiles": [cat.get(n).summary() for n in cat.names()]})


async def get_profile(call: Call) -> web.Response:
    try:
        return _ok({"profile": call.twin.profiles.get(call.params["name"]).summary()})
    except ProfileError as exc:
        raise ApiError(404, str(exc)) from None


async def create_profile(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ApiError(400, "a profile document with a 'name' (and usually 'extends')")
    try:
        prof = call.twin.profiles.add(body["name"], body)
    except ProfileError as exc:
        raise ApiError(400, str(exc)) from None
    return _ok({"profile": prof.summary()}, 201)


# ---- faults and scenarios
async def list_faults(call: Call) -> web.Response:
    return _ok({"faults": call.twin.faults.public()})


async def add_faults(call: Call) -> web.Response:
    body = call.body()
    docs = body.get("faults") if isinstance(body, dict) and "faults" in body else body
    many = isinstance(docs, list)
    try:
        rules = call.twin.faults.add_many(docs if many else [docs])
    except ValueError as exc:
        raise ApiError(400, f"invalid fault: {exc}") from None
    now = time.time()
    if many:
        return _ok({"faults": [r.public(now) for r in rules]}, 201)
    return _ok({"fault": rules[0].public(now)}, 201)


async def get_fault(call: Call) -> web.Response:
    rule = call.twin.faults.get(call.params["id"])
    if rule is None:
        raise ApiError(404, f"fault '{call.params['id']}' not found")
    return _ok({"fault": rule.public(time.time())})


async def delete_fault(call: Call) -> web.Response:
    if not call.twin.faults.remove(call.params["id"]):
        raise ApiError(404, f"fault '{call.params['id']}' not found")
    return wire.json_response(204)


async def clear_faults(call: Call) -> web.Response:
    return _ok({"removed": call.twin.faults.clear()})


def load_scenario(doc: Any, source: str) -> list[Any]:
    """A scenario: ``{name, description, faults: [...]}``; windows are relative to when it is loaded."""
    if not isinstance(doc, dict) or not isinstance(doc.get("faults"), list):
        raise ValueError(f"{source}: a scenario is a mapping with a 'faults' list")
    return doc["faults"]


def shipped_scenarios() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.y*ml"))}


async def list_scenarios(call: Call) -> web.Response:
    out = []
    for name, path in shipped_scenarios().items():
        doc = yaml.safe_load(path.read_text()) or {}
        out.append({"name": name, "description": doc.get("description", ""), "faults": len(doc.get("faults", []))})
    return _ok({"scenarios": out})


async def run_scenario(call: Call) -> web.Response:
    body = call.body()
    if isinstance(body, dict) and isinstance(body.get("name"), str) and "faults" not in body:
        path = shipped_scenarios().get(body["name"])
        if path is None:
            raise ApiError(404, f"scenario '{body['name']}' not found (known: {', '.join(shipped_scenarios())})")
        body = yaml.safe_load(path.read_text())
        source = str(path)
    else:
        source = "request"
    try:
        docs = load_scenario(body, source)
        rules = call.twin.faults.add_many(docs, source=f"scenario:{body.get('name', 'unnamed')}")
    except ValueError as exc:
        raise ApiError(400, f"invalid scenario: {exc}") from None
    now = time.time()
    return _ok({"scenario": body.get("name", ""), "faults": [r.public(now) for r in rules]}, 201)


# ---- events, state, reset, snapshots
async def events(call: Call) -> web.Response:
    kinds = [k for k in call.query.getall("kind", []) if k]
    out = call.twin.events.query(since=_int(call, "since", 0), kinds=kinds, rule=call.query.get("rule"),
                                 cloud=call.query.get("cloud"), limit=_int(call, "limit", 1000))
    return _ok({"events": out, "last_seq": call.twin.events.last_seq()})


async def state(call: Call) -> web.Response:
    name = call.query.get("cloud")
    clouds = call.twin.clouds
    if name is not None:
        if name not in clouds:
            raise ApiError(404, f"cloud '{name}' not found")
        return _ok({"clouds": [clouds[name].summary()]})
    return _ok({"clouds": [c.summary() for c in clouds.values()],
                "faults": len(call.twin.faults.rules), "transitions_pending": call.twin.scheduler.pending()})


async def reset(call: Call) -> web.Response:
    """Drop objects (all clouds or ``?cloud=``); ``?faults=false`` keeps the fault rules."""
    name = call.query.get("cloud")
    if name is not None and name not in call.twin.clouds:
        raise ApiError(404, f"cloud '{name}' not found")
    call.twin.reset(name)
    removed = 0
    if wire.truthy(call.query.get("faults")) is not False and name is None:
        removed = call.twin.faults.clear()
    return _ok({"reset": name or "all", "faults_removed": removed})


def _path(call: Call) -> str:
    body = call.body(required=False) or {}
    path = body.get("path") if isinstance(body, dict) else None
    path = path or call.twin.config.state_file
    if not isinstance(path, str) or not path:
        raise ApiError(400, "give {\"path\": \"/some/file.json\"} (or start the twin with --state FILE)")
    return path


async def save_snapshot(call: Call) -> web.Response:
    try:
        return _ok(snapshot.save(call.twin, _path(call)), 201)
    except OSError as exc:
        raise ApiError(400, f"could not write the snapshot: {exc.strerror or exc}") from None


async def restore_snapshot(call: Call) -> web.Response:
    try:
        return _ok(snapshot.load(call.twin, _path(call)))
    except snapshot.SnapshotError as exc:
        raise ApiError(400, str(exc)) from None


# ---- the data plane (``--dataplane netns``; cloudtwin/dataplane)
def _dataplane(call: Call) -> Any:
    dp = call.twin.dataplane
    if dp is None:
        raise ApiError(409, "The data plane is off: start the twin with --dataplane netns (needs root and nftables).")
    return dp


async def dataplane_status(call: Call) -> web.Response:
    dp = call.twin.dataplane
    if dp is None:
        return _ok({"enabled": False, "prefix": None, "vms": 0, "clients": []})
    await dp.settled(5.0)       # read-your-writes: what was changed before this call is in the kernel
    return _ok(dp.status())


async def dataplane_probe(call: Call) -> web.Response:
    """``{"timeout_ms": 300, "probes": [{"id", "from": "client"|"vm", "vm_ip", "cloud", "region", "to",
    "proto": "tcp"|"udp"|"icmp", "port"}]}`` -> ``{"results": [{"id", "ok", "latency_ms", "detail"}]}``."""
    from cloudtwin.dataplane.manager import DataPlaneError

    dp = _dataplane(call)
    try:
        return _ok(await dp.probe(call.body()))
    except DataPlaneError as exc:
        raise ApiError(400, str(exc)) from None


async def dataplane_debug(call: Call) -> web.Response:
    """``{"break": "stateful" | "cidr" | null}``: compile every firewall with a deliberate bug (or none)."""
    from cloudtwin.dataplane.manager import DataPlaneError

    dp = _dataplane(call)
    body = call.body()
    if not isinstance(body, dict) or "break" not in body:
        raise ApiError(400, 'body: {"break": "stateful" | "cidr" | null}')
    try:
        return _ok(await dp.set_break(body["break"]))
    except DataPlaneError as exc:
        raise ApiError(400, str(exc)) from None


# ---- the route table and its description
_OBJ: dict[str, Any] = {"type": "object"}
_CLOUD = {"type": "object", "required": ["name", "profile", "regions", "projects", "objects"],
          "properties": {"name": {"type": "string"}, "profile": {"type": "string"}, "domain_id": {"type": "string"},
                         "regions": _OBJ, "projects": {"type": "array", "items": {"type": "string"}},
                         "objects": _OBJ}}
_FAULT = {"type": "object", "required": ["id", "kind", "match", "active"],
          "properties": {"id": {"type": "string"}, "kind": {"type": "string"}, "match": _OBJ,
                         "active": {"type": "boolean"}}}
_FAULTS = {"type": "array", "items": _FAULT}


def _wrap(key: str, schema: dict) -> dict:
    return {"type": "object", "required": [key], "properties": {key: schema}}


# (method, pattern, handler, status, answer schema, takes a JSON body, query parameters, error statuses)
ROUTES: list[tuple[str, str, Any, int, dict | None, bool, tuple[str, ...], tuple[int, ...]]] = [
    ("GET", "/health", health, 200, {"type": "object", "required": ["status", "clouds", "uptime"],
                                     "properties": {"status": {"const": "ok"}, "clouds": {"type": "integer"},
                                                    "uptime": {"type": "number"}}}, False, (), ()),
    ("GET", "/stats", stats, 200, _OBJ, False, (), ()),
    ("GET", "/cluster", cluster, 200, _OBJ, False, (), (404,)),
    ("GET", "/clouds", list_clouds, 200, _wrap("clouds", {"type": "array", "items": _CLOUD}), False, (), ()),
    ("POST", "/clouds", create_cloud, 201, _wrap("cloud", _CLOUD), True, (), (400, 409)),
    ("GET", "/clouds/{name}", get_cloud, 200, _wrap("cloud", _CLOUD), False, (), (404,)),
    ("DELETE", "/clouds/{name}", delete_cloud, 204, None, False, (), (404,)),
    ("GET", "/profiles", list_profiles, 200, _wrap("profiles", {"type": "array", "items": _OBJ}), False, (), ()),
    ("POST", "/profiles", create_profile, 201, _wrap("profile", _OBJ), True, (), (400,)),
    ("GET", "/profiles/{name}", get_profile, 200, _wrap("profile", _OBJ), False, (), (404,)),
    ("GET", "/faults", list_faults, 200, _wrap("faults", _FAULTS), False, (), ()),
    ("POST", "/faults", add_faults, 201, {"anyOf": [_wrap("fault", _FAULT), _wrap("faults", _FAULTS)]}, True, (),
     (400,)),
    ("DELETE", "/faults", clear_faults, 200, _wrap("removed", {"type": "integer"}), False, (), ()),
    ("GET", "/faults/{id}", get_fault, 200, _wrap("fault", _FAULT), False, (), (404,)),
    ("DELETE", "/faults/{id}", delete_fault, 204, None, False, (), (404,)),
    ("GET", "/scenarios", list_scenarios, 200, _wrap("scenarios", {"type": "array", "items": _OBJ}), False, (), ()),
    ("POST", "/scenarios", run_scenario, 201, {"type": "object", "required": ["scenario", "faults"],
                                               "properties": {"faults": _FAULTS}}, True, (), (400, 404)),
    ("GET", "/events", events, 200, {"type": "object", "required": ["events", "last_seq"],
                                     "properties": {"events": {"type": "array"}, "last_seq": {"type": "integer"}}},
     False, ("since", "kind", "rule", "cloud", "limit"), (400,)),
    ("GET", "/state", state, 200, _wrap("clouds", {"type": "array", "items": _CLOUD}), False, ("cloud",), (404,)),
    ("POST", "/reset", reset, 200, {"type": "object", "required": ["reset", "faults_removed"]}, False,
     ("cloud", "faults"), (404,)),
    ("POST", "/snapshot", save_snapshot, 201, _OBJ, True, (), (400,)),
    ("POST", "/restore", restore_snapshot, 200, _OBJ, True, (), (400,)),
    ("GET", "/dataplane", dataplane_status, 200, _OBJ, False, (), ()),
    ("POST", "/dataplane/probe", dataplane_probe, 200, _OBJ, True, (), (400, 409)),
    ("POST", "/dataplane/debug", dataplane_debug, 200, _OBJ, True, (), (400, 409)),
    ("GET", "/vms/{server}", vm_info, 200, _OBJ, False, (), (404, 409)),
    ("POST", "/vms/{server}/exec", vm_exec, 200, _OBJ, True, (), (400, 404, 409)),
]
_QUERY_SCHEMA = {"since": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 0},
                 "faults": {"type": "string", "enum": ["true", "false"]}}


async def openapi_json(call: Call) -> web.Response:
    """This admin API's OpenAPI 3.1 description, written from the routes the router holds."""
    return _ok(describe(call.request.app["dispatcher"].router))


def describe(router: Router) -> dict[str, Any]:
    docs = {(method, pattern): rest for method, pattern, *rest in ROUTES}
    error = {"$ref": "#/components/schemas/Error"}
    paths: dict[str, dict] = {}
    for route in router.routes("admin"):
        if (route.method, route.pattern) not in docs:
            continue  # the description's own route
        _handler, status, answer, has_body, query, errs = docs[(route.method, route.pattern)]
        op: dict[str, Any] = {"operationId": route.method.lower() + re.sub(r"\W+", "_", route.pattern),
                              "description": (_handler.__doc__ or "").strip() or route.operation}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"\{(\w+)\}", route.pattern)]
        params += [{"name": n, "in": "query", "required": False, "schema": _QUERY_SCHEMA.get(n, {"type": "string"})}
                   for n in query]
        op["parameters"] = params
        if has_body:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _OBJ}}}
        ok: dict[str, Any] = {"description": "Success."}
        if answer is not None:
            ok["content"] = {"application/json": {"schema": answer}}
        responses = {str(status): ok}
        for code in sorted(set(errs) | {401} | ({413} if has_body else set())):
            responses[str(code)] = {"description": "Error.", "content": {"application/json": {"schema": error}}}
        op["responses"] = responses
        paths.setdefault("/_twin" + route.pattern, {})[route.method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "Cloud-Twin admin API", "version": "1",
                     "description": "Faults, scenarios, events, state and snapshots of a running Cloud-Twin. "
                                    "When the twin has an admin token, every call needs X-Twin-Admin-Token."},
            "servers": [{"url": "/"}], "paths": paths,
            "security": [{}, {"adminToken": []}],
            "components": {"securitySchemes": {"adminToken": {"type": "apiKey", "in": "header",
                                                              "name": "X-Twin-Admin-Token"}},
                           "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                               "error": {"type": "object", "required": ["code", "message"],
                                         "properties": {"code": {"type": "integer"},
                                                        "message": {"type": "string"}}}}}}}}


def add_routes(r: Router) -> None:
    for method, pattern, handler, *_ in ROUTES:
        r.add("admin", method, pattern, handler, f"admin:{pattern.strip('/').split('/')[0]}:{method.lower()}",
              auth=False)
    r.add("admin", "GET", "/openapi.json", openapi_json, "admin:openapi:get", auth=False)
