"""``/v3/users/{id}/application_credentials`` (and their access rules): a secret that logs in as the
user, on one project, with a subset of the user's roles there."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import AppCredential, new_id
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.users import user_of


def _doc(call: Call, c: AppCredential, secret: str | None = None) -> dict[str, Any]:
    st = common.store(call)
    out = {"id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
           "project_id": c.project_id, "unrestricted": c.unrestricted, "system": None,
           "expires_at": wire.iso_micro(c.expires_at) if c.expires_at else None,
           "roles": [{"id": rid, "name": st.roles[rid].name, "domain_id": st.roles[rid].domain_id}
                     for rid in c.roles if rid in st.roles],
           "access_rules": c.access_rules,
           "links": common.link(call, f"users/{c.user_id}/application_credentials/{c.id}")}
    if secret is not None:
        out["secret"] = secret
    return out


def _own(call: Call) -> None:
    """Only the user may manage their application credentials with a token of their own."""
    tok = call.token
    assert tok is not None
    if tok.user_id != call.params["uid"] and not tok.is_admin:
        raise ApiError(403, "You are not authorized to perform the requested action: "
                            "identity:create_application_credential.")


def _expiry(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "Invalid input for field 'expires_at': not a date-time string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid input for field 'expires_at': '{value}' is not a 'date-time'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _rules(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ApiError(400, "Invalid input for field 'access_rules': a list of objects")
    out = []
    for r in value:
        if not all(isinstance(r.get(k), str) for k in ("path", "method", "service")):
            raise ApiError(400, "Invalid input for field 'access_rules': each rule needs path, method and service")
        out.append({"id": r.get("id") or new_id(), "path": r["path"], "method": r["method"],
                    "service": r["service"]})
    return out


async def create(call: Call) -> web.Response:
    _own(call)
    user = user_of(call)
    tok = call.token
    assert tok is not None
    if tok.app_cred_id:
        cred = common.store(call).app_credentials.get(tok.app_cred_id)
        if cred is None or not cred.unrestricted:
            raise ApiError(403, "Using method 'application_credential' is not allowed for managing additional "
                                "application credentials.")
    if tok.scope != "project":
        raise ApiError(400, "An application credential needs a project-scoped token.")
    doc = common.body(call, "application_credential")
    name = common.text(doc, "name", required=True) or ""
    have = dict(tok.roles)
    wanted = doc.get("roles")
    if wanted is None:
        roles = [rid for rid in have]
    else:
        if not isinstance(wanted, list):
            raise ApiError(400, "Invalid input for field 'roles': a list")
        roles = []
        for r in wanted:
            rid = r.get("id") if isinstance(r, dict) else None
            if rid is None and isinstance(r, dict):
                rid = next((i for i, n in have.items() if n == r.get("name")), None)
            if rid not in have:
                raise ApiError(404, f"Could not find role: {r.get('id') or r.get('name') if isinstance(r, dict) else r}.")
            roles.append(rid)
    secret = doc.get("secret") or secrets.token_urlsafe(64)
    if not isinstance(secret, str):
        raise ApiError(400, "Invalid input for field 'secret': a string")
    cred = common.store(call).add_app_credential(
        user, tok.project.id, name, secret, roles, description=common.text(doc, "description"),
        expires_at=_expiry(doc.get("expires_at")), unrestricted=bool(common.flag(doc, "unrestricted", False)),
        access_rules=_rules(doc.get("access_rules")))
    common.remember(call, cred.id)
    return wire.json_response(201, {"application_credential": _doc(call, cred, secret)})


async def list_all(call: Call) -> web.Response:
    _own(call)
    user = user_of(call)
    items = [c for c in common.store(call).app_credentials.values() if c.user_id == user.id]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "application_credentials", [_doc(call, c) for c in items],
                             f"users/{user.id}/application_credentials")


async def get(call: Call) -> web.Response:
    _own(call)
    cred = common.store(call).app_credential(call.params["cid"], call.params["uid"])
    return wire.json_response(200, {"application_credential": _doc(call, cred)})


async def delete(call: Call) -> web.Response:
    _own(call)
    st = common.store(call)
    cred = st.app_credential(call.params["cid"], call.params["uid"])
    del st.app_credentials[cred.id]
    return wire.json_response(204)


# ---- access rules: the union of the user's application credentials' rules
def _user_rules(call: Call) -> list[dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for c in common.store(call).app_credentials.values():
        if c.user_id == call.params["uid"]:
            for r in c.access_rules:
                rules.setdefault(r["id"], r)
    return list(rules.values())


async def list_rules(call: Call) -> web.Response:
    _own(call)
    user_of(call)
    return common.collection(call, "access_rules", _user_rules(call), f"users/{call.params['uid']}/access_rules")


async def get_rule(call: Call) -> web.Response:
    _own(call)
    found = next((r for r in _user_rules(call) if r["id"] == call.params["rid"]), None)
    if found is None:
        raise ApiError(404, f"Could not find access rule: {call.params['rid']}.")
    return wire.json_response(200, {"access_rule": found})


async def delete_rule(call: Call) -> web.Response:
    _own(call)
    rid = call.params["rid"]
    creds = [c for c in common.store(call).app_credentials.values() if c.user_id == call.params["uid"]]
    if not any(r["id"] == rid for c in creds for r in c.access_rules):
        raise ApiError(404, f"Could not find access rule: {rid}.")
    if any(r["id"] == rid for c in creds for r in c.access_rules):
        used = [c for c in creds if any(r["id"] == rid for r in c.access_rules)]
        if used:
            raise ApiError(403, f"Access rule {rid} is still in use by application credential {used[0].id}.")
    return wire.json_response(204)
