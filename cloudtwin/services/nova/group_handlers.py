"""Nova v2.1 wire format of ``os-server-groups``: 2.13 adds project and user, 2.64 replaces the
``policies`` list with one ``policy`` and its ``rules`` (and drops ``metadata``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.groups import ServerGroup, check_policy
from cloudtwin.services.nova.handlers import invalid, mv, nova_of
from cloudtwin.policy import is_admin


def _doc(call: Call, g: ServerGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"id": g.id, "name": g.name, "members": [m for m in g.members
                                                                   if m in nova_of(call).servers]}
    if mv(call, 2, 64):
        out.update({"policy": g.policy, "rules": dict(g.rules)})
    else:
        out.update({"policies": [g.policy], "metadata": {}})
    if mv(call, 2, 13):
        out.update({"project_id": g.project_id, "user_id": g.user_id})
    return out


async def list_groups(call: Call) -> web.Response:
    groups = sorted(nova_of(call).server_groups.values(), key=lambda g: (g.created_at, g.id))
    all_projects = "all_projects" in call.query and is_admin(call)
    if not all_projects:
        groups = [g for g in groups if g.project_id == call.project_id]
    q = call.query
    try:
        offset = int(q.get("offset", 0))
        limit = int(q["limit"]) if "limit" in q else None
    except ValueError:
        raise invalid("limit", q.get("limit"), "limit and offset are integers") from None
    if offset < 0 or (limit is not None and limit < 1):
        raise invalid("limit", q.get("limit"), "limit >= 1 and offset >= 0")
    groups = groups[offset:offset + limit if limit is not None else None]
    return wire.json_response(200, {"server_groups": [_doc(call, g) for g in groups]})


async def create_group(call: Call) -> web.Response:
    body = call.body("server_group")
    assert call.token is not None
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or name != name.strip():
        raise invalid("name", name, "a string of 1 to 255 characters without leading or trailing spaces")
    if mv(call, 2, 64):
        if set(body) - {"name", "policy", "rules"} or "policy" not in body:
            raise invalid("server_group", body, "'name' and 'policy' (and optional 'rules') are expected")
        policy, rules = body["policy"], check_policy(body["policy"], body.get("rules"))
    else:
        policies = body.get("policies")
        if set(body) - {"name", "policies"} or not isinstance(policies, list) or len(policies) != 1:
            raise invalid("policies", policies, "a list of exactly one policy")
        policy = policies[0]
        allowed = ("affinity", "anti-affinity") + (("soft-affinity", "soft-anti-affinity") if mv(call, 2, 15) else ())
        if policy not in allowed:
            raise invalid("policies", policies, f"{policy!r} is not one of {list(allowed)}")
        rules = {}
    g = nova_of(call).create_server_group(call.project_id, call.token.user_id, name, policy, rules)
    return wire.json_response(200, {"server_group": _doc(call, g)})


def _group(call: Call) -> ServerGroup:
    return nova_of(call).get_server_group(None if is_admin(call) else call.project_id, call.params["id"])


async def get_group(call: Call) -> web.Response:
    return wire.json_response(200, {"server_group": _doc(call, _group(call))})


async def delete_group(call: Call) -> web.Response:
    nova_of(call).delete_server_group(_group(call))
    return wire.json_response(204)


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "GET", "/v2.1/os-server-groups", list_groups, "compute:server_group:list")
    r.add(s, "POST", "/v2.1/os-server-groups", create_group, "compute:server_group:create")
    r.add(s, "GET", "/v2.1/os-server-groups/{id}", get_group, "compute:server_group:get")
    r.add(s, "DELETE", "/v2.1/os-server-groups/{id}", delete_group, "compute:server_group:delete")
