"""``/v3/OS-TRUST/trusts``: a trustor delegates some of its roles on a project to a trustee. Trusts
cannot be changed, only made and deleted; the trustor, the trustee and admins may read them. The
trustee logs in on one with ``scope: {"OS-TRUST:trust": {"id": ...}}`` (``auth``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Trust, new_id
from cloudtwin.routing import Call, Router
from cloudtwin.services.keystone import common

BASE = "/v3/OS-TRUST/trusts"


def _doc(call: Call, t: Trust, *, summary: bool = False) -> dict[str, Any]:
    st = common.store(call)
    out: dict[str, Any] = {"id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id,
                           "project_id": t.project_id, "impersonation": t.impersonation,
                           "expires_at": wire.iso_micro(t.expires_at) if t.expires_at else None,
                           "remaining_uses": t.remaining_uses, "allow_redelegation": t.allow_redelegation,
                           "links": common.link(call, f"OS-TRUST/trusts/{t.id}")}
    if not summary:
        out["roles"] = [common.role_doc(call, st.roles[r]) for r in t.roles if r in st.roles]
        out["roles_links"] = {"self": None, "previous": None, "next": None}
    return out


def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid input for field 'expires_at': '{value}' is not a 'date-time'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _trust(call: Call) -> Trust:
    """A trust the caller may see: its trustor, its trustee or an admin (404 for anyone else)."""
    tok = call.token
    assert tok is not None
    found = common.store(call).trusts.get(call.params["id"])
    if found is None or not (tok.is_admin or tok.user_id in (found.trustor_user_id, found.trustee_user_id)):
        raise ApiError(404, f"Could not find trust: {call.params['id']}.")
    return found


async def create(call: Call) -> web.Response:
    doc = common.body(call, "trust")
    tok = call.token
    assert tok is not None
    st = common.store(call)
    trustor = common.text(doc, "trustor_user_id", required=True) or ""
    trustee = common.text(doc, "trustee_user_id", required=True) or ""
    if trustor != tok.user_id:
        raise ApiError(403, "The authenticated user should match the trustor.")
    if trustee not in st.users:
        raise ApiError(404, f"Could not find user: {trustee}.")
    project_id = doc.get("project_id")
    held: dict[str, str] = {}
    if project_id is not None:
        project = common.project_of(call, str(project_id))
        held = dict(call.twin.project_roles(common.cloud(call), trustor, project))
    wanted = doc.get("roles") or []
    if not isinstance(wanted, list):
        raise ApiError(400, "Invalid input for field 'roles': a list")
    roles = []
    for r in wanted:
        key = r.get("id") or r.get("name") if isinstance(r, dict) else None
        rid = key if key in held else next((i for i, n in held.items() if n == key), None)
        if rid is None:
            raise ApiError(403, f"The trustor does not hold role {key} on the project.")
        roles.append(rid)
    uses = doc.get("remaining_uses")
    if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses <= 0):
        raise ApiError(400, "Invalid input for field 'remaining_uses': a positive integer or null")
    expires = _expiry(doc.get("expires_at"))
    t = Trust(new_id(), trustor, trustee, str(project_id) if project_id else None, roles,
              bool(common.flag(doc, "impersonation", False)), expires, uses,
              bool(common.flag(doc, "allow_redelegation", False)))
    st.trusts[t.id] = t
    return wire.json_response(201, {"trust": _doc(call, t)})


async def listing(call: Call) -> web.Response:
    tok = call.token
    assert tok is not None
    q = call.query
    items = list(common.store(call).trusts.values())
    for key in ("trustor_user_id", "trustee_user_id"):
        if key in q:
            if q[key] != tok.user_id and not tok.is_admin:
                raise ApiError(403, "You are not authorized to perform the requested action: identity:list_trusts.")
            items = [t for t in items if getattr(t, key) == q[key]]
    if not tok.is_admin:
        items = [t for t in items if tok.user_id in (t.trustor_user_id, t.trustee_user_id)]
    return common.collection(call, "trusts", [_doc(call, t, summary=True) for t in items], "OS-TRUST/trusts")


async def get(call: Call) -> web.Response:
    return wire.json_response(200, {"trust": _doc(call, _trust(call))})


async def delete(call: Call) -> web.Response:
    t = _trust(call)
    tok = call.token
    assert tok is not None
    if tok.user_id != t.trustor_user_id and not tok.is_admin:
        raise ApiError(403, "Only the trustor or an admin may delete a trust.")
    del common.store(call).trusts[t.id]
    return wire.json_response(204)


async def roles(call: Call) -> web.Response:
    t = _trust(call)
    st = common.store(call)
    return common.collection(call, "roles", [common.role_doc(call, st.roles[r]) for r in t.roles if r in st.roles],
                             f"OS-TRUST/trusts/{t.id}/roles")


async def role(call: Call) -> web.Response:
    t = _trust(call)
    rid = call.params["rid"]
    if rid not in t.roles or rid not in common.store(call).roles:
        raise ApiError(404, f"Could not find role: {rid}.")
    return wire.json_response(200, {"role": common.role_doc(call, common.store(call).roles[rid])})


def add_routes(r: Router) -> None:
    r.add("identity", "GET", BASE, listing, "identity:trust:list")
    r.add("identity", "POST", BASE, create, "identity:trust:create")
    r.add("identity", "GET", BASE + "/{id}", get, "identity:trust:get")
    r.add("identity", "DELETE", BASE + "/{id}", delete, "identity:trust:delete")
    r.add("identity", "GET", BASE + "/{id}/roles", roles, "identity:trust_role:list")
    r.add("identity", "GET", BASE + "/{id}/roles/{rid}", role, "identity:trust_role:get")
