"""``/v3/roles``: roles, implied roles, grants on projects, domains and the system (with OS-INHERIT's
inherited grants), and ``/v3/role_assignments``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import SYSTEM, Assignment, Role, conflict
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.groups import group_of
from cloudtwin.services.keystone.users import user_of


def role_of(call: Call, key: str = "rid") -> Role:
    found = common.store(call).roles.get(call.params[key])
    if found is None:
        raise ApiError(404, f"Could not find role: {call.params[key]}.")
    return found


async def list_roles(call: Call) -> web.Response:
    items = list(common.store(call).roles.values())
    domain = call.query.get("domain_id")
    items = [r for r in items if r.domain_id == domain] if domain else [r for r in items if r.domain_id is None]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "roles", [common.role_doc(call, r) for r in items])


async def create_role(call: Call) -> web.Response:
    doc = common.body(call, "role")
    name = common.text(doc, "name", required=True) or ""
    domain_id = doc.get("domain_id")
    if domain_id is not None:
        common.store(call).domain(str(domain_id))
    r = common.store(call).add_role(name, domain_id, description=common.text(doc, "description"),
                                    options=dict(doc.get("options") or {}))
    return wire.json_response(201, {"role": common.role_doc(call, r)})


async def get_role(call: Call) -> web.Response:
    return wire.json_response(200, {"role": common.role_doc(call, role_of(call))})


async def update_role(call: Call) -> web.Response:
    r = role_of(call)
    doc = common.body(call, "role")
    if "domain_id" in doc and doc["domain_id"] != r.domain_id:
        raise ApiError(400, "Cannot change the domain of a role.")
    if "name" in doc:
        name = common.text(doc, "name", required=True) or ""
        if any(o.name == name and o.domain_id == r.domain_id and o.id != r.id
               for o in common.store(call).roles.values()):
            raise conflict("role", "name", name)
        r.name = name
    if "description" in doc:
        r.description = common.text(doc, "description")
    if isinstance(doc.get("options"), dict):
        r.options.update(doc["options"])
    return wire.json_response(200, {"role": common.role_doc(call, r)})


async def delete_role(call: Call) -> web.Response:
    common.store(call).remove_role(role_of(call).id)
    return wire.json_response(204)


# ---- implied roles
def _ref(call: Call, r: Role) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": common.link(call, f"roles/{r.id}")}


def _inference(call: Call, prior: Role, implied: Role) -> dict[str, Any]:
    return {"role_inference": {"prior_role": _ref(call, prior), "implies": _ref(call, implied)},
            "links": common.link(call, f"roles/{prior.id}/implies/{implied.id}")}


async def add_implied(call: Call) -> web.Response:
    prior, implied = role_of(call, "prior"), role_of(call, "implied")
    st = common.store(call)
    if implied.domain_id is not None and prior.domain_id is None:
        raise ApiError(403, f"{implied.id} is a domain-specific role: a global role cannot imply it.")
    if prior.id == implied.id or prior.id in st.implied_closure([implied.id]):
        raise ApiError(400, f"Implied role {implied.id} would make a loop with {prior.id}.")
    st.implies.setdefault(prior.id, set()).add(implied.id)
    st.changed()
    return wire.json_response(201, _inference(call, prior, implied))


def _implied_pair(call: Call) -> tuple[Role, Role]:
    prior, implied = role_of(call, "prior"), role_of(call, "implied")
    if implied.id not in common.store(call).implies.get(prior.id, set()):
        raise ApiError(404, f"{prior.id} does not imply {implied.id}.")
    return prior, implied


async def get_implied(call: Call) -> web.Response:
    if call.request.method == "HEAD":
        _implied_pair(call)
        return wire.json_response(204)
    return wire.json_response(200, _inference(call, *_implied_pair(call)))


async def delete_implied(call: Call) -> web.Response:
    prior, implied = _implied_pair(call)
    common.store(call).implies[prior.id].discard(implied.id)
    common.store(call).changed()
    return wire.json_response(204)


def _implies_doc(call: Call, prior: Role) -> dict[str, Any]:
    st = common.store(call)
    return {"prior_role": _ref(call, prior),
            "implies": [_ref(call, st.roles[i]) for i in sorted(st.implies.get(prior.id, ())) if i in st.roles]}


async def list_implied(call: Call) -> web.Response:
    prior = role_of(call, "prior")
    return wire.json_response(200, {"role_inference": _implies_doc(call, prior),
                                    "links": common.link(call, f"roles/{prior.id}/implies")})


async def list_inferences(call: Call) -> web.Response:
    st = common.store(call)
    items = [_implies_doc(call, st.roles[p]) for p, implied in st.implies.items() if implied and p in st.roles]
    return wire.json_response(200, {"role_inferences": items, "links": common.link(call, "role_inferences")})


# ---- grants
def _parties(call: Call) -> tuple[str, str, str, str]:
    """``(actor, actor_id, target, target_id)`` a grant URL names
    (``/v3/{projects|domains|system}/.../{users|groups}/.../roles``)."""
    st = common.store(call)
    if "uid" in call.params:
        actor, actor_id = "user", user_of(call).id
    else:
        actor, actor_id = "group", group_of(call).id
    if "pid" in call.params:
        target, target_id = "project", common.project_of(call, call.params["pid"]).id
    elif "did" in call.params:
        target, target_id = "domain", st.domain(call.params["did"]).id
    else:
        target, target_id = "system", SYSTEM
    return actor, actor_id, target, target_id


def _grant(call: Call, *, inherited: bool = False) -> Assignment:
    """The assignment a grant URL with a role names."""
    role = role_of(call)
    return Assignment(role.id, *_parties(call), inherited)


async def put_grant(call: Call) -> web.Response:
    common.store(call).assign(_grant(call, inherited="inherited" in call.route.operation))
    return wire.json_response(204)


async def check_grant(call: Call) -> web.Response:
    a = _grant(call, inherited="inherited" in call.route.operation)
    if a not in common.store(call).assignments:
        raise ApiError(404, f"Could not find role assignment with role: {a.role_id}, {a.actor}: {a.actor_id}, "
                            f"{a.target}: {a.target_id}.")
    return wire.json_response(204)


async def delete_grant(call: Call) -> web.Response:
    common.store(call).unassign(_grant(call, inherited="inherited" in call.route.operation))
    return wire.json_response(204)


async def list_grants(call: Call) -> web.Response:
    """The roles granted to one actor on one target (``.../roles``)."""
    st = common.store(call)
    inherited = "inherited" in call.route.operation
    actor, actor_id, target, target_id = _parties(call)
    roles = [st.roles[a.role_id] for a in st.assignments if a.actor == actor and a.actor_id == actor_id
             and a.target == target and a.target_id == target_id and a.inherited == inherited]
    return common.collection(call, "roles", [common.role_doc(call, r) for r in roles],
                             call.request.path.split("/v3/", 1)[-1])


# ---- /v3/role_assignments
def _assignment_doc(call: Call, a: Assignment, names: bool, via: Assignment | None = None) -> dict[str, Any]:
    st = common.store(call)
    cl = common.cloud(call)
    role = st.roles.get(a.role_id)
    out: dict[str, Any] = {"role": {"id": a.role_id}}
    actor: dict[str, Any] = {"id": a.actor_id}
    if a.target == "system":
        scope: dict[str, Any] = {"system": {"all": True}}
    else:
        scope = {a.target: {"id": a.target_id}}
    if a.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    if names:
        if role is not None:
            out["role"]["name"] = role.name
            if role.domain_id:
                out["role"]["domain"] = _domain_ref(call, role.domain_id)
        obj = st.users.get(a.actor_id) if a.actor == "user" else st.groups.get(a.actor_id)
        if obj is not None:
            actor.update({"name": obj.name, "domain": _domain_ref(call, obj.domain_id)})
        if a.target == "project" and a.target_id in cl.projects:
            p = cl.projects[a.target_id]
            scope["project"].update({"name": p.name, "domain": _domain_ref(call, p.domain_id)})
        elif a.target == "domain" and a.target_id in st.domains:
            scope["domain"]["name"] = st.domains[a.target_id].name
    out[a.actor] = actor
    out["scope"] = scope
    src = via or a
    base = {"project": "projects", "domain": "domains", "system": "system"}[src.target]
    target = f"{base}/{src.target_id}" if src.target != "system" else "system"
    prefix = "OS-INHERIT/" if src.inherited else ""
    suffix = "/inherited_to_projects" if src.inherited else ""
    out["links"] = {"assignment": f"{common.base(call)}/{prefix}{target}/{src.actor}s/{src.actor_id}/roles/"
                                  f"{src.role_id}{suffix}"}
    if via is not None and via.actor == "group":
        out["links"]["membership"] = f"{common.base(call)}/groups/{via.actor_id}/users/{a.actor_id}"
    return out


def _domain_ref(call: Call, did: str) -> dict[str, str]:
    d = common.store(call).domains.get(did)
    return {"id": did, "name": d.name if d else did}


def _effective(call: Call, assignments: list[Assignment]) -> list[tuple[Assignment, Assignment]]:
    """Keystone's ``?effective``: group assignments become one per member, inherited ones one per
    project below their target, and implied roles are added; each with the assignment it came from."""
    st = common.store(call)
    cl = common.cloud(call)
    out: list[tuple[Assignment, Assignment]] = []
    for a in assignments:
        users = sorted(st.groups[a.actor_id].members) if a.actor == "group" and a.actor_id in st.groups \
            else [a.actor_id] if a.actor == "user" else []
        if a.inherited:
            if a.target == "domain":
                targets = [p.id for p in cl.projects.values() if p.domain_id == a.target_id and not p.is_domain]
            else:
                targets = [p.id for p in cl.projects.values() if a.target_id in cl.project_lineage(p)]
            targets_kind = "project"
        else:
            targets, targets_kind = [a.target_id], a.target
        for uid in users:
            for tid in targets:
                for rid, _ in st.role_names([a.role_id]):   # domain-specific roles lend only what they imply
                    out.append((Assignment(rid, "user", uid, targets_kind, tid), a))
    seen: set[Assignment] = set()
    unique = []
    for eff, src in out:
        if eff not in seen:
            seen.add(eff)
            unique.append((eff, src))
    return unique


async def list_assignments(call: Call) -> web.Response:
    st = common.store(call)
    q = call.query
    names = "include_names" in q and common.query_bool(call, "include_names") is not False
    effective = "effective" in q and common.query_bool(call, "effective") is not False
    items = sorted(st.assignments, key=lambda a: (a.target, a.target_id, a.actor, a.actor_id, a.role_id))
    if "scope.OS-INHERIT:inherited_to" in q:
        items = [a for a in items if a.inherited]
    if "group.id" in q:
        if effective:
            raise ApiError(400, "Combining effective and group filter will always result in an empty list.")
        items = [a for a in items if a.actor == "group" and a.actor_id == q["group.id"]]
    pairs = _effective(call, items) if effective else [(a, a) for a in items]
    if "user.id" in q:
        pairs = [(a, s) for a, s in pairs if a.actor == "user" and a.actor_id == q["user.id"]]
    if "role.id" in q:
        pairs = [(a, s) for a, s in pairs if a.role_id == q["role.id"]]
    if "scope.project.id" in q:
        pid = q["scope.project.id"]
        subtree = {pid}
        if "include_subtree" in q:
            cl = common.cloud(call)
            subtree |= {p.id for p in cl.projects.values() if pid in cl.project_lineage(p)}
        pairs = [(a, s) for a, s in pairs if a.target == "project" and a.target_id in subtree]
    if "scope.domain.id" in q:
        pairs = [(a, s) for a, s in pairs if a.target == "domain" and a.target_id == q["scope.domain.id"]]
    if "scope.system" in q:
        pairs = [(a, s) for a, s in pairs if a.target == "system"]
    docs = [_assignment_doc(call, a, names, s if effective else None) for a, s in pairs]
    return common.collection(call, "role_assignments", docs)
