"""``/v3/users``: users, their passwords, their projects and their groups."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import User, conflict
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.auth import user_projects

FIELDS = ("id", "name", "domain_id", "password", "enabled", "default_project_id", "description", "options",
          "links", "password_expires_at")
MAX_PASSWORD = 4096


def user_of(call: Call, uid: str | None = None) -> User:
    uid = uid or call.params["uid"]
    found = common.store(call).users.get(uid)
    if found is None:
        raise ApiError(404, f"Could not find user: {uid}.")
    return found


def _password(doc: dict[str, Any], key: str = "password") -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_PASSWORD:
        raise ApiError(400, f"Invalid input for field '{key}': a string of at most {MAX_PASSWORD} characters")
    return value


async def list_users(call: Call) -> web.Response:
    items = list(common.store(call).users.values())
    if "domain_id" in call.query:
        items = [u for u in items if u.domain_id == call.query["domain_id"]]
    enabled = common.query_bool(call, "enabled")
    if enabled is not None:
        items = [u for u in items if u.enabled == enabled]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "users", [common.user_doc(call, u) for u in items])


async def create_user(call: Call) -> web.Response:
    doc = common.body(call, "user")
    name = common.text(doc, "name", required=True) or ""
    tok = call.token
    assert tok is not None
    st = common.store(call)
    domain_id = str(doc.get("domain_id") or (tok.domain_id if tok.scope == "domain" else None)
                    or tok.project.domain_id or st.own_domain_id)
    st.domain(domain_id)
    default_project = doc.get("default_project_id")
    if default_project is not None and not isinstance(default_project, str):
        raise ApiError(400, "Invalid input for field 'default_project_id': not a string")
    extra = {k: v for k, v in doc.items() if k not in FIELDS}
    if st.user_by_name(name, domain_id) is not None:
        raise conflict("user", "name", name)
    user = st.add_user(name, domain_id, _password(doc), enabled=bool(common.flag(doc, "enabled", True)),
                       default_project_id=default_project, description=common.text(doc, "description"),
                       extra=extra, options=dict(doc.get("options") or {}))
    common.remember(call, user.id)
    return wire.json_response(201, {"user": common.user_doc(call, user)})


async def get_user(call: Call) -> web.Response:
    return wire.json_response(200, {"user": common.user_doc(call, user_of(call))})


async def update_user(call: Call) -> web.Response:
    user = user_of(call)
    doc = common.body(call, "user")
    st = common.store(call)
    if "domain_id" in doc and doc["domain_id"] != user.domain_id:
        raise ApiError(400, "Cannot change the domain of a user.")
    if "name" in doc:
        name = common.text(doc, "name", required=True) or ""
        if name != user.name and st.user_by_name(name, user.domain_id) is not None:
            raise conflict("user", "name", name)
        user.name = name
    if "password" in doc:
        password = _password(doc)
        if password is None:
            raise ApiError(400, "Invalid input for field 'password': None is not of type 'string'")
        st.set_password(user, password)
    if "enabled" in doc:
        user.enabled = bool(common.flag(doc, "enabled"))
        if not user.enabled:
            st.revoke(user_id=user.id)
    if "default_project_id" in doc:
        user.default_project_id = doc["default_project_id"]
    if "description" in doc:
        user.description = common.text(doc, "description")
    if isinstance(doc.get("options"), dict):
        user.options.update(doc["options"])
    user.extra.update({k: v for k, v in doc.items() if k not in FIELDS})
    return wire.json_response(200, {"user": common.user_doc(call, user)})


async def delete_user(call: Call) -> web.Response:
    user = user_of(call)
    common.store(call).remove_actor(user.id)
    return wire.json_response(204)


async def change_password(call: Call) -> web.Response:
    """A user changes their own password: the original one must be right (401 otherwise)."""
    user = user_of(call)
    doc = common.body(call, "user")
    original, new = _password(doc, "original_password"), _password(doc)
    if original is None or new is None:
        raise ApiError(400, "Invalid input: 'original_password' and 'password' are required.")
    if not common.cloud(call).check_password(user, original):
        raise ApiError(401, "The request you have made requires authentication.")
    common.store(call).set_password(user, new)
    return wire.json_response(204)


async def list_user_projects(call: Call) -> web.Response:
    user = user_of(call)
    items = [common.project_doc(call, p) for p in user_projects(call, user.id)]
    return common.collection(call, "projects", items, f"users/{user.id}/projects")


async def list_user_groups(call: Call) -> web.Response:
    user = user_of(call)
    items = [common.group_doc(call, g) for g in common.store(call).user_groups(user.id)]
    return common.collection(call, "groups", items, f"users/{user.id}/groups")
