"""The admin API under ``/_twin``: clouds, profiles, faults, scenarios, events, state, reset, snapshots
and, when the twin runs one, the data plane (status, probes, the compiler-break hook, and per VM
``/vms/{server}`` and ``/vms/{server}/exec`` from ``vm_hooks``).

It is how a test drives the twin: "take region RegionOne of cloud-2 down for 30 s", "throttle cloud-3
at 10 creates/s", "what did you inject and which requests did it hit?". Bodies are JSON; errors are
``{"error": {"code", "message"}}``. When the twin has an admin token (required for non-loopback
binds) every call needs ``X-Twin-Admin-Token``.
"""

from __future__ import annotations

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


def add_routes(r: Router) -> None:
    a = "admin"
    for method, pattern, handler in [
        ("GET", "/health", health), ("GET", "/stats", stats), ("GET", "/cluster", cluster),
        ("GET", "/clouds", list_clouds), ("POST", "/clouds", create_cloud),
        ("GET", "/clouds/{name}", get_cloud), ("DELETE", "/clouds/{name}", delete_cloud),
        ("GET", "/profiles", list_profiles), ("POST", "/profiles", create_profile),
        ("GET", "/profiles/{name}", get_profile),
        ("GET", "/faults", list_faults), ("POST", "/faults", add_faults), ("DELETE", "/faults", clear_faults),
        ("GET", "/faults/{id}", get_fault), ("DELETE", "/faults/{id}", delete_fault),
        ("GET", "/scenarios", list_scenarios), ("POST", "/scenarios", run_scenario),
        ("GET", "/events", events), ("GET", "/state", state), ("POST", "/reset", reset),
        ("POST", "/snapshot", save_snapshot), ("POST", "/restore", restore_snapshot),
        ("GET", "/dataplane", dataplane_status), ("POST", "/dataplane/probe", dataplane_probe),
        ("POST", "/dataplane/debug", dataplane_debug),
        ("GET", "/vms/{server}", vm_info), ("POST", "/vms/{server}/exec", vm_exec),
    ]:
        op = f"admin:{pattern.strip('/').split('/')[0]}:{method.lower()}"
        r.add(a, method, pattern, handler, op, auth=False)
