"""``/v3/groups``: groups and their members (a group's role assignments apply to every member)."""

from __future__ import annotations

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Group, conflict
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.users import user_of


def group_of(call: Call) -> Group:
    found = common.store(call).groups.get(call.params["gid"])
    if found is None:
        raise ApiError(404, f"Could not find group: {call.params['gid']}.")
    return found


async def list_groups(call: Call) -> web.Response:
    items = list(common.store(call).groups.values())
    if "domain_id" in call.query:
        items = [g for g in items if g.domain_id == call.query["domain_id"]]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "groups", [common.group_doc(call, g) for g in items])


async def create_group(call: Call) -> web.Response:
    doc = common.body(call, "group")
    tok = call.token
    assert tok is not None
    domain_id = str(doc.get("domain_id") or (tok.domain_id if tok.scope == "domain" else None)
                    or tok.project.domain_id)
    g = common.store(call).add_group(common.text(doc, "name", required=True) or "", domain_id,
                                     common.text(doc, "description") or "")
    return wire.json_response(201, {"group": common.group_doc(call, g)})


async def get_group(call: Call) -> web.Response:
    return wire.json_response(200, {"group": common.group_doc(call, group_of(call))})


async def update_group(call: Call) -> web.Response:
    g = group_of(call)
    doc = common.body(call, "group")
    if "domain_id" in doc and doc["domain_id"] != g.domain_id:
        raise ApiError(400, "Cannot change the domain of a group.")
    if "name" in doc:
        name = common.text(doc, "name", required=True) or ""
        if any(o.name == name and o.domain_id == g.domain_id and o.id != g.id
               for o in common.store(call).groups.values()):
            raise conflict("group", "name", name)
        g.name = name
    if "description" in doc:
        g.description = common.text(doc, "description") or ""
    return wire.json_response(200, {"group": common.group_doc(call, g)})


async def delete_group(call: Call) -> web.Response:
    common.store(call).remove_actor(group_of(call).id)
    return wire.json_response(204)


async def list_members(call: Call) -> web.Response:
    g = group_of(call)
    st = common.store(call)
    items = [st.users[uid] for uid in sorted(g.members) if uid in st.users]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "users", [common.user_doc(call, u) for u in items], f"groups/{g.id}/users")


async def add_member(call: Call) -> web.Response:
    g, user = group_of(call), user_of(call)
    g.members.add(user.id)
    common.store(call).changed()
    return wire.json_response(204)


async def check_member(call: Call) -> web.Response:
    g, user = group_of(call), user_of(call)
    if user.id not in g.members:
        raise ApiError(404, f"User '{user.id}' not found in group '{g.id}'.")
    return wire.json_response(204)


async def remove_member(call: Call) -> web.Response:
    g, user = group_of(call), user_of(call)
    if user.id not in g.members:
        raise ApiError(404, f"User '{user.id}' not found in group '{g.id}'.")
    g.members.discard(user.id)
    common.store(call).changed()
    return wire.json_response(204)
