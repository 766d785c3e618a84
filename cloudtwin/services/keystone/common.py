"""What every Keystone handler shares: the caller's cloud and identity store, links, collections,
request-body checks and the JSON shapes of the objects Keystone returns."""

from __future__ import annotations

import re
from typing import Any, Iterable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.clouds import Cloud, Project
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Domain, Group, IdentityStore, Role, User
from cloudtwin.routing import Call

MAX_NAME = 255


def cloud(call: Call) -> Cloud:
    assert call.token is not None
    return call.token.cloud


def store(call: Call) -> IdentityStore:
    return cloud(call).identity


def base(call: Call) -> str:
    return call.request.app["service_url"](call.request, "", "", "identity")  # type: ignore[no-any-return]


def link(call: Call, path: str) -> dict[str, str]:
    return {"self": f"{base(call)}/{path}"}


def collection(call: Call, key: str, items: list[dict[str, Any]], path: str | None = None) -> web.Response:
    query = call.request.query_string
    self_link = f"{base(call)}/{path or key}" + (f"?{query}" if query else "")
    return wire.json_response(200, {key: items, "links": {"self": self_link, "previous": None, "next": None}})


def remember(call: Call, *ids: str) -> None:
    """Index new ids to this cloud, so a login naming only an id (a user id, a project id, an
    application credential id) finds its cloud."""
    for oid in ids:
        call.twin.identity_index[oid] = cloud(call).name


# ---- request bodies
def body(call: Call, envelope: str) -> dict[str, Any]:
    return call.body(envelope)  # type: ignore[no-any-return]


def text(doc: dict[str, Any], key: str, *, required: bool = False, default: str | None = None,
         limit: int = MAX_NAME) -> str | None:
    value = doc.get(key, default)
    if value is None:
        if required:
            raise ApiError(400, f"Invalid input for field '{key}': None is not of type 'string'")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"Invalid input for field '{key}': {value!r} is not of type 'string'")
    if required and not value.strip():
        raise ApiError(400, f"Invalid input for field '{key}': '{value}' is too short")
    if len(value) > limit:
        raise ApiError(400, f"Invalid input for field '{key}': '{value[:40]}...' is too long")
    return value


def flag(doc: dict[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = doc.get(key, default)
    if value is None or isinstance(value, bool):
        return value
    raise ApiError(400, f"Invalid input for field '{key}': {value!r} is not of type 'boolean'")


def tags(doc: dict[str, Any]) -> list[str]:
    value = doc.get("tags", [])
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 and "/" not in t
                                             and "," not in t for t in value) or len(value) > 80:
        raise ApiError(400, "Invalid input for field 'tags': a list of at most 80 strings (1-255 characters, "
                            "no '/' or ',').")
    return list(dict.fromkeys(value))


def query_bool(call: Call, key: str) -> bool | None:
    if key not in call.query:
        return None
    value = call.query[key]
    if value == "":
        return True     # Keystone: a bare ?enabled means true
    got = wire.truthy(value)
    return got if got is not None else False


def names_match(items: Iterable[Any], call: Call, fields: dict[str, str]) -> list[Any]:
    """Keystone's list filters: ``?name=x`` exact, ``?name__contains=x`` and friends (case-insensitive
    ``__icontains``, ``__startswith``, ``__endswith``...)."""
    out = list(items)
    for key, value in call.query.items():
        attr, _, op = key.partition("__")
        if attr not in fields:
            continue
        field_name = fields[attr]

        def ok(item: Any, value: str = value, op: str = op, field_name: str = field_name) -> bool:
            got = item.get(field_name) if isinstance(item, dict) else getattr(item, field_name, None)
            if isinstance(got, bool):
                return got == (wire.truthy(value) is not False)
            got = "" if got is None else str(got)
            if op.startswith("i"):
                got, value, op = got.lower(), value.lower(), op[1:]
            return {"": got == value, "contains": value in got, "startswith": got.startswith(value),
                    "endswith": got.endswith(value), "equals": got == value}.get(op, got == value)
        out = [item for item in out if ok(item)]
    return out


# ---- shapes
def domain_doc(call: Call, d: Domain) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled, "tags": d.tags,
            "options": d.options, "links": link(call, f"domains/{d.id}")}


def project_doc(call: Call, p: Project) -> dict[str, Any]:
    return {**p.extra, "id": p.id, "name": p.name, "domain_id": p.domain_id or None,
            "description": p.description, "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id or None,
            "is_domain": p.is_domain,
            "tags": p.tags, "options": p.options, "links": link(call, f"projects/{p.id}")}


def user_doc(call: Call, u: User) -> dict[str, Any]:
    out = {**u.extra, "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
           "password_expires_at": wire.iso_micro(u.password_expires_at) if u.password_expires_at else None,
           "options": u.options, "links": link(call, f"users/{u.id}")}
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.description is not None:
        out["description"] = u.description
    return out


def group_doc(call: Call, g: Group) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": link(call, f"groups/{g.id}")}


def role_doc(call: Call, r: Role) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "name": r.name, "domain_id": r.domain_id, "options": r.options,
                           "links": link(call, f"roles/{r.id}")}
    if r.description is not None:
        out["description"] = r.description
    return out


def project_of(call: Call, pid: str) -> Project:
    found = cloud(call).projects.get(pid)
    if found is None or found.is_domain:
        raise ApiError(404, f"Could not find project: {pid}.")
    return found


_ID = re.compile(r"^[\w.\-]{1,64}$")


def check_id(value: str, kind: str) -> str:
    if not _ID.match(value):
        raise ApiError(400, f"Invalid {kind} id: {value[:64]!r}")
    return value
