"""``/v3/users/{id}/application_credentials`` (and their access rules): a secret that logs in as the
user, on one project, with a subset of the user's roles there."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import AccessRule, AppCredential, new_id
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.users import user_of


def _doc(call: Call, c: AppCredential, secret: str | None = None) -> dict[str, Any]:
    st = common.store(call)
    out = {"id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
           "project_id": c.project_id, "unrestricted": c.unrestricted, "system": None,
           "expires_at": _iso(c.expires_at),
           "roles": [{"id": rid, "name": st.roles[rid].name, "domain_id": st.roles[rid].domain_id}
                     for rid in c.roles if rid in st.roles],
           "access_rules": [_rule_doc(st.access_rules[r]) for r in c.access_rules if r in st.access_rules],
           "links": common.link(call, f"users/{c.user_id}/application_credentials/{c.id}")}
    if secret is not None:
        out["secret"] = secret
    return out


def _iso(ts: float | None) -> str | None:
    """Keystone echoes an expiry as ISO 8601 without a zone (``2026-12-07T07:19:58.352465``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _rule_doc(r: AccessRule) -> dict[str, Any]:
    return {"id": r.id, "service": r.service, "path": r.path, "method": r.method}


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


def _rules(call: Call, user_id: str, value: Any) -> list[str]:
    """The ids of the access rules asked for: an existing rule of the user (by id, or the same service,
    path and method) is reused, as Keystone does; the others are made."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ApiError(400, "Invalid input for field 'access_rules': a list of objects")
    st = common.store(call)
    mine = [r for r in st.access_rules.values() if r.user_id == user_id]
    out = []
    for r in value:
        if r.get("id") and not {"path", "method", "service"} & set(r):
            found = next((x for x in mine if x.id == r["id"]), None)
            if found is None:
                raise ApiError(404, f"Could not find access rule: {r['id']}.")
            out.append(found.id)
            continue
        if not all(isinstance(r.get(k), str) for k in ("path", "method", "service")):
            raise ApiError(400, "Invalid input for field 'access_rules': each rule needs path, method and service")
        same = next((x for x in mine if (x.service, x.path, x.method) == (r["service"], r["path"], r["method"])),
                    None)
        if same is None:
            same = AccessRule(new_id(), user_id, r["service"], r["path"], r["method"])
            st.access_rules[same.id] = same
            mine.append(same)
        out.append(same.id)
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
    st = common.store(call)
    have = dict(call.twin.project_roles(common.cloud(call), user.id, tok.project))   # the roles held now
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
    cred = st.add_app_credential(
        user, tok.project.id, name, secret, roles, description=common.text(doc, "description"),
        expires_at=_expiry(doc.get("expires_at")), unrestricted=bool(common.flag(doc, "unrestricted", False)),
        access_rules=_rules(call, user.id, doc.get("access_rules")))
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


# ---- access rules: kept per user once made; deletable when no credential uses them
def _user_rules(call: Call) -> list[AccessRule]:
    return [r for r in common.store(call).access_rules.values() if r.user_id == call.params["uid"]]


async def list_rules(call: Call) -> web.Response:
    _own(call)
    user_of(call)
    return common.collection(call, "access_rules", [_rule_doc(r) for r in _user_rules(call)],
                             f"users/{call.params['uid']}/access_rules")


def _rule(call: Call) -> AccessRule:
    found = next((r for r in _user_rules(call) if r.id == call.params["rid"]), None)
    if found is None:
        raise ApiError(404, f"Could not find access rule: {call.params['rid']}.")
    return found


async def get_rule(call: Call) -> web.Response:
    _own(call)
    return wire.json_response(200, {"access_rule": _rule_doc(_rule(call))})


async def delete_rule(call: Call) -> web.Response:
    _own(call)
    rule = _rule(call)
    st = common.store(call)
    used = [c for c in st.app_credentials.values() if rule.id in c.access_rules]
    if used:
        raise ApiError(403, f"Access rule {rule.id} is still in use by application credential {used[0].id}.")
    del st.access_rules[rule.id]
    return wire.json_response(204)
