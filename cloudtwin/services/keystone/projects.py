"""``/v3/projects``: projects (the tenants every service's objects belong to) and their tags."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.clouds import Project
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Domain, conflict, new_id
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.domains import add_domain, change_domain, delete_domain

FIELDS = ("id", "name", "domain_id", "description", "enabled", "parent_id", "is_domain", "tags", "options",
          "links")


def _default_domain(call: Call) -> str:
    tok = call.token
    assert tok is not None
    if tok.scope == "domain" and tok.domain_id:
        return tok.domain_id
    return tok.project.domain_id or tok.cloud.domain_id


def _check_name(call: Call, name: str, domain_id: str, skip: str | None = None) -> None:
    if any(p.name == name and p.domain_id == domain_id and p.id != skip and not p.is_domain
           for p in common.cloud(call).projects.values()):
        raise conflict("project", "name", name)


def _has_tags(p: Project, wanted: str, any_of: bool) -> bool:
    tags = [t for t in wanted.split(",") if t]
    return any(t in p.tags for t in tags) if any_of else all(t in p.tags for t in tags)


def filtered(call: Call, projects: list[Project]) -> list[Project]:
    q = call.query
    out = [p for p in projects if not p.is_domain]
    for key in ("domain_id", "parent_id"):
        if key in q:
            out = [p for p in out if (p.parent_id or p.domain_id if key == "parent_id" else p.domain_id) == q[key]]
    enabled = common.query_bool(call, "enabled")
    if enabled is not None:
        out = [p for p in out if p.enabled == enabled]
    if "tags" in q:
        out = [p for p in out if _has_tags(p, q["tags"], False)]
    if "tags-any" in q:
        out = [p for p in out if _has_tags(p, q["tags-any"], True)]
    if "not-tags" in q:
        out = [p for p in out if not _has_tags(p, q["not-tags"], False)]
    if "not-tags-any" in q:
        out = [p for p in out if not _has_tags(p, q["not-tags-any"], True)]
    return common.names_match(out, call, {"name": "name"})


def as_project(call: Call, d: Domain) -> Project:
    """A domain seen through the project API (Keystone's domains are projects with ``is_domain``)."""
    return Project(d.id, d.name, common.cloud(call).name, "", d.description, d.enabled, None, True, d.tags,
                   d.options)


def lookup(call: Call, pid: str) -> Project:
    """A project, or a domain acting as one."""
    d = common.store(call).domains.get(pid)
    return as_project(call, d) if d is not None else common.project_of(call, pid)


async def list_projects(call: Call) -> web.Response:
    if common.query_bool(call, "is_domain"):
        items = [as_project(call, d) for d in common.store(call).domains.values()]
        items = common.names_match(items, call, {"name": "name"})
    else:
        items = filtered(call, list(common.cloud(call).projects.values()))
    return common.collection(call, "projects", [common.project_doc(call, p) for p in items])


async def create_project(call: Call) -> web.Response:
    doc = common.body(call, "project")
    name = common.text(doc, "name", required=True, limit=64) or ""
    cl = common.cloud(call)
    if common.flag(doc, "is_domain", False):
        d = add_domain(call, name, doc)
        return wire.json_response(201, {"project": common.project_doc(call, as_project(call, d))})
    parent_id = doc.get("parent_id")
    domain_id = doc.get("domain_id")
    if parent_id is not None:
        parent = common.project_of(call, str(parent_id))
        if domain_id is not None and domain_id != parent.domain_id:
            raise ApiError(400, "Cannot create project, the parent and the project must be in the same domain.")
        domain_id = parent.domain_id
    domain_id = str(domain_id or _default_domain(call))
    domain = cl.identity.domain(domain_id)
    _check_name(call, name, domain.id)
    extra = {k: v for k, v in doc.items() if k not in FIELDS}
    proj = Project(new_id(), name, cl.name, domain.id, common.text(doc, "description") or "",
                   bool(common.flag(doc, "enabled", True)), str(parent_id) if parent_id else None, False,
                   common.tags(doc), dict(doc.get("options") or {}), extra)
    cl.add_project(proj)
    return wire.json_response(201, {"project": common.project_doc(call, proj)})


def _subtree(call: Call, proj: Project) -> list[Project]:
    cl = common.cloud(call)
    return [p for p in cl.projects.values() if proj.id in cl.project_lineage(p)]


async def get_project(call: Call) -> web.Response:
    proj = lookup(call, call.params["id"])
    doc = common.project_doc(call, proj)
    cl = common.cloud(call)
    if "parents_as_list" in call.query:
        doc["parents"] = [{"project": common.project_doc(call, cl.projects[pid])}
                          for pid in cl.project_lineage(proj)]
    if "subtree_as_list" in call.query:
        doc["subtree"] = [{"project": common.project_doc(call, p)} for p in _subtree(call, proj)]
    if "parents_as_ids" in call.query:
        doc["parents"] = _nest(cl.project_lineage(proj))
    if "subtree_as_ids" in call.query:
        doc["subtree"] = {p.id: None for p in _subtree(call, proj) if p.parent_id == proj.id} or None
    return wire.json_response(200, {"project": doc})


def _nest(ids: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    for pid in reversed(ids):
        out = {pid: out}
    return out


async def update_project(call: Call) -> web.Response:
    if call.params["id"] in common.store(call).domains:
        d = change_domain(call, common.store(call).domains[call.params["id"]], common.body(call, "project"))
        return wire.json_response(200, {"project": common.project_doc(call, as_project(call, d))})
    proj = common.project_of(call, call.params["id"])
    doc = common.body(call, "project")
    if "domain_id" in doc and doc["domain_id"] != proj.domain_id:
        raise ApiError(400, "Cannot update the domain_id of a project.")
    if "parent_id" in doc and doc["parent_id"] != proj.parent_id:
        raise ApiError(403, "Update of `parent_id` is not allowed.")
    if "is_domain" in doc and doc["is_domain"] != proj.is_domain:
        raise ApiError(400, "Update of `is_domain` is not allowed.")
    if "name" in doc:
        name = common.text(doc, "name", required=True, limit=64) or ""
        _check_name(call, name, proj.domain_id, skip=proj.id)
        proj.name = name
    if "description" in doc:
        proj.description = common.text(doc, "description") or ""
    if "enabled" in doc:
        proj.enabled = bool(common.flag(doc, "enabled"))
        if not proj.enabled:
            common.store(call).revoke(project_id=proj.id)
    if "tags" in doc:
        proj.tags = common.tags(doc)
    if "options" in doc and isinstance(doc["options"], dict):
        proj.options.update(doc["options"])
    proj.extra.update({k: v for k, v in doc.items() if k not in FIELDS})
    return wire.json_response(200, {"project": common.project_doc(call, proj)})


async def delete_project(call: Call) -> web.Response:
    if call.params["id"] in common.store(call).domains:
        return await delete_domain(call)
    proj = common.project_of(call, call.params["id"])
    cl = common.cloud(call)
    if any(p.parent_id == proj.id for p in cl.projects.values()):
        raise ApiError(403, f"Cannot delete the project {proj.id} since it is not a leaf in the hierarchy. "
                            "Use the cascade option if you want to delete a whole subtree.")
    del cl.projects[proj.id]
    cl.identity.drop_assignments(target_id=proj.id)
    cl.identity.revoke(project_id=proj.id)
    for cred in [c for c in cl.identity.app_credentials.values() if c.project_id == proj.id]:
        del cl.identity.app_credentials[cred.id]
    return wire.json_response(204)


# ---- tags
async def list_tags(call: Call) -> web.Response:
    return wire.json_response(200, {"tags": common.project_of(call, call.params["id"]).tags})


async def replace_tags(call: Call) -> web.Response:
    proj = common.project_of(call, call.params["id"])
    doc = call.body()
    if not isinstance(doc, dict):
        raise ApiError(400, "Invalid input: a body {'tags': [...]} is required.")
    proj.tags = common.tags(doc)
    return wire.json_response(200, {"tags": proj.tags, "links": common.link(call, f"projects/{proj.id}/tags")})


async def clear_tags(call: Call) -> web.Response:
    common.project_of(call, call.params["id"]).tags = []
    return wire.json_response(204)


async def check_tag(call: Call) -> web.Response:
    proj = common.project_of(call, call.params["id"])
    if call.params["tag"] not in proj.tags:
        raise ApiError(404, f"Could not find project tag: {call.params['tag']}.")
    return wire.json_response(204)


async def add_tag(call: Call) -> web.Response:
    proj = common.project_of(call, call.params["id"])
    tag = call.params["tag"]
    proj.tags = common.tags({"tags": [*proj.tags, tag]})
    return wire.json_response(201, headers={"Location": f"{common.base(call)}/projects/{proj.id}/tags/{tag}"})


async def delete_tag(call: Call) -> web.Response:
    proj = common.project_of(call, call.params["id"])
    if call.params["tag"] not in proj.tags:
        raise ApiError(404, f"Could not find project tag: {call.params['tag']}.")
    proj.tags.remove(call.params["tag"])
    return wire.json_response(204)
