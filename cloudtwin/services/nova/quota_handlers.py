"""Nova v2.1 wire format of limits and quotas: ``/limits``, ``os-quota-sets`` (show, detail, defaults,
update, revert to defaults) and ``os-quota-class-sets``. Quotas are enforced at server, keypair,
server group and metadata time by the model (``NovaState.quota``).

Microversions: 2.36 drops the network proxies' quotas (floating IPs, security groups, fixed IPs),
2.50 drops them from quota classes and adds server groups there, 2.57 drops the injected files quotas.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import invalid, mv, nova_of
from cloudtwin.policy import is_admin

_CORE = ("instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members")
_FILES = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
_NETWORK = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
# the profile names some network quotas after Neutron's resources
_PROFILE_NAME = {"floating_ips": "floatingips"}


def _resources(call: Call, *, classes: bool = False) -> tuple[str, ...]:
    out = _CORE
    if not mv(call, 2, 57):
        out += _FILES
    if not mv(call, 2, 50 if classes else 36):
        out += _NETWORK
    if classes and not mv(call, 2, 50):
        out = tuple(r for r in out if r not in ("server_groups", "server_group_members"))
    return out


def _limit(call: Call, name: str, project_id: str | None, user_id: str | None = None) -> int:
    nova = nova_of(call)
    key = _PROFILE_NAME.get(name, name)
    if user_id is not None and project_id is not None:
        own = nova.user_quota_overrides.get((project_id, user_id), {})
        if key in own:
            return own[key]
    return nova.quota(key, project_id)


def _in_use(call: Call, project_id: str) -> dict[str, int]:
    nova = nova_of(call)
    use = dict(nova.usage(project_id))
    use["server_groups"] = sum(1 for g in nova.server_groups.values() if g.project_id == project_id)
    neutron = nova.region.neutron
    for name, table in (("floating_ips", "floatingips"), ("security_groups", "security_groups")):
        objs = getattr(neutron, table, {})
        use[name] = sum(1 for o in objs.values() if getattr(o, "project_id", None) == project_id)
    return use


def _project_id(call: Call) -> str:
    assert call.cloud is not None
    project = call.params["project"]
    proj = call.cloud.project(project)
    return proj.id if proj is not None else project


async def limits(call: Call) -> web.Response:
    pid = call.query.get("tenant_id") if is_admin(call) and call.query.get("tenant_id") else call.project_id
    use = _in_use(call, pid)
    q = lambda name: _limit(call, name, pid)  # noqa: E731
    absolute: dict[str, Any] = {
        "maxTotalInstances": q("instances"), "maxTotalCores": q("cores"), "maxTotalRAMSize": q("ram"),
        "maxTotalKeypairs": q("key_pairs"), "maxServerMeta": q("metadata_items"), "maxImageMeta": 128,
        "maxServerGroups": q("server_groups"), "maxServerGroupMembers": q("server_group_members"),
        "totalInstancesUsed": use["instances"], "totalCoresUsed": use["cores"], "totalRAMUsed": use["ram"],
        "totalServerGroupsUsed": use["server_groups"],
    }
    if not mv(call, 2, 57):
        absolute.update({"maxPersonality": q("injected_files"), "maxPersonalitySize": q("injected_file_content_bytes")})
    if not mv(call, 2, 36):
        absolute.update({"maxSecurityGroups": q("security_groups"), "maxSecurityGroupRules": q("security_group_rules"),
                         "maxTotalFloatingIps": q("floating_ips"),
                         "totalSecurityGroupsUsed": use["security_groups"],
                         "totalFloatingIpsUsed": use["floating_ips"]})
    return wire.json_response(200, {"limits": {"rate": [], "absolute": absolute}})


async def show_quota(call: Call) -> web.Response:
    pid = _project_id(call)
    if pid != call.project_id and not is_admin(call) and not call.route.pattern.endswith("/defaults"):
        raise ApiError(403, "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.")
    pattern = call.route.pattern
    defaults = pattern.endswith("/defaults")
    detail = pattern.endswith("/detail")
    use = _in_use(call, pid) if detail else {}
    user = call.query.get("user_id") or None
    out: dict[str, Any] = {"id": pid}
    for name in _resources(call):
        limit = _limit(call, name, None if defaults else pid, user)
        out[name] = {"limit": limit, "in_use": use.get(name, 0), "reserved": 0} if detail else limit
    return wire.json_response(200, {"quota_set": out})


def _values(call: Call, body: Any, resources: tuple[str, ...]) -> tuple[dict[str, int], bool]:
    if not isinstance(body, dict):
        raise invalid("quota_set", body, "an object")
    force = body.get("force", False)
    if not isinstance(force, bool):
        force = wire.boolean(force)
        if force is None:
            raise invalid("force", body.get("force"), "not a boolean")
    out: dict[str, int] = {}
    for k, v in body.items():
        if k == "force":
            continue
        if k not in resources:
            raise invalid("quota_set", body, f"Additional properties are not allowed ('{k}' was unexpected)")
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or not -1 <= v <= 2 ** 31 - 1:
            raise invalid(k, v, f"{v!r} is not an integer >= -1")
        out[k] = v
    return out, bool(force)


async def update_quota(call: Call) -> web.Response:
    pid = _project_id(call)
    user = call.query.get("user_id") or None
    values, force = _values(call, call.body("quota_set"), _resources(call))
    use = _in_use(call, pid)
    if not force:
        for name, v in values.items():
            if v >= 0 and name in use and use[name] > v:
                raise ApiError(400, f"Quota limit {v} for {name} must be greater than or equal to already used and "
                                    f"reserved {use[name]}.")
    nova = nova_of(call)
    own = nova.user_quota_overrides.setdefault((pid, user), {}) if user else nova.quota_overrides.setdefault(pid, {})
    for name, v in values.items():
        own[_PROFILE_NAME.get(name, name)] = v
    return wire.json_response(200, {"quota_set": {name: _limit(call, name, pid, user) for name in _resources(call)}})


async def revert_quota(call: Call) -> web.Response:
    pid = _project_id(call)
    nova = nova_of(call)
    user = call.query.get("user_id") or None
    if user:
        nova.user_quota_overrides.pop((pid, user), None)
    else:
        nova.quota_overrides.pop(pid, None)
        for key in [k for k in nova.user_quota_overrides if k[0] == pid]:
            del nova.user_quota_overrides[key]
    return wire.json_response(202)


async def show_quota_class(call: Call) -> web.Response:
    cid = call.params["id"]
    out: dict[str, Any] = {"id": cid}
    for name in _resources(call, classes=True):
        out[name] = _limit(call, name, None)
    return wire.json_response(200, {"quota_class_set": out})


async def update_quota_class(call: Call) -> web.Response:
    cid = call.params["id"]
    if not 1 <= len(cid) <= 255:
        raise invalid("id", cid, "a quota class name of 1 to 255 characters")
    body = call.body("quota_class_set")
    if "force" in body:
        raise invalid("quota_class_set", body, "Additional properties are not allowed ('force' was unexpected)")
    values, _ = _values(call, body, _resources(call, classes=True))
    if cid == "default":       # only the default class applies to projects, as in Nova
        for name, v in values.items():
            nova_of(call).quota_class[_PROFILE_NAME.get(name, name)] = v
    return wire.json_response(200, {"quota_class_set": {name: values.get(name, _limit(call, name, None))
                                                        for name in _resources(call, classes=True)}})


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "GET", "/v2.1/limits", limits, "compute:limits:get")
    r.add(s, "GET", "/v2.1/os-quota-sets/{project}", show_quota, "compute:quota:get")
    r.add(s, "PUT", "/v2.1/os-quota-sets/{project}", update_quota, "compute:quota:update")
    r.add(s, "DELETE", "/v2.1/os-quota-sets/{project}", revert_quota, "compute:quota:delete")
    r.add(s, "GET", "/v2.1/os-quota-sets/{project}/detail", show_quota, "compute:quota:detail")
    r.add(s, "GET", "/v2.1/os-quota-sets/{project}/defaults", show_quota, "compute:quota:defaults")
    r.add(s, "GET", "/v2.1/os-quota-class-sets/{id}", show_quota_class, "compute:quota_class:get")
    r.add(s, "PUT", "/v2.1/os-quota-class-sets/{id}", update_quota_class, "compute:quota_class:update")
