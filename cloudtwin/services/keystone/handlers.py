"""Keystone v3 wire format. A Keystone domain is one virtual cloud; the scope's project is the tenant.

The documented default login for every cloud is user ``admin``, password ``admin``, project ``admin``
(a profile may set others). With ``auto_projects`` (the default) any project name is created on first
login, which is how CB-Spider's CLOUDTWIN ``MockName`` becomes an isolated tenant.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.clouds import Cloud, Project, Token
from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.routing import SERVICE_PATHS, Call, Router

# service (URL segment) -> the catalog entries (type, name) it is published under. Block storage is
# listed under both of Cinder's current types: clients look up "block-storage" (openstacksdk) or
# "volumev3" (gophercloud, cinderclient), and its URL carries the project id, as Cinder's does.
CATALOG_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "compute": (("compute", "nova"),), "network": (("network", "neutron"),), "image": (("image", "glance"),),
    "load-balancer": (("load-balancer", "octavia"),),
    "volume": (("block-storage", "cinder"), ("volumev3", "cinderv3")),
    "identity": (("identity", "keystone"),)}
PROJECT_IN_URL = {"volume": "/v3/{project_id}"}
UNAUTHORIZED = "The request you have made requires authentication."


def version_doc(call: Call) -> dict[str, Any]:
    base = call.request.app["public_url"] or f"{call.request.scheme}://{call.request.host}"
    return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}


async def versions(call: Call) -> web.Response:
    return wire.json_response(300, {"versions": {"values": [version_doc(call)]}})


async def version(call: Call) -> web.Response:
    return wire.json_response(200, {"version": version_doc(call)})


def catalog(call: Call, cloud: Cloud, project_id: str) -> list[dict[str, Any]]:
    """The service catalog of a token scoped to ``project_id``: every service in every region (plus
    CB-Spider's region alias ``default``), each endpoint on the public, internal and admin interfaces."""
    out = []
    for service in [*SERVICE_PATHS, "identity"]:
        for stype, sname in CATALOG_TYPES[service]:
            endpoints = []
            regions = list(cloud.regions)
            for region in regions + ["default"] * ("default" not in regions):
                target = cloud.profile.default_region if region == "default" else region
                url = call.request.app["service_url"](call.request, cloud.name, target, service)
                url += PROJECT_IN_URL.get(service, "").format(project_id=project_id)
                for iface in ("public", "internal", "admin"):
                    endpoints.append({"id": stable_id("ep", cloud.name, region, stype, iface).replace("-", ""),
                                      "interface": iface, "region": region, "region_id": region, "url": url})
            out.append({"type": stype, "name": sname,
                        "id": stable_id("svc", cloud.name, stype).replace("-", ""), "endpoints": endpoints})
    return out


def token_body(call: Call, tok: Token, methods: list[str]) -> dict[str, Any]:
    cloud = tok.cloud
    domain = {"id": cloud.domain_id, "name": cloud.name}
    return {"token": {
        "methods": methods,
        "user": {"domain": domain, "id": tok.user_id, "name": tok.user, "password_expires_at": None},
        "audit_ids": [stable_id("audit", tok.value)[:22]],
        "expires_at": wire.iso_micro(tok.expires_at),
        "issued_at": wire.iso_micro(tok.issued_at),
        "project": {"domain": domain, "id": tok.project.id, "name": tok.project.name},
        "is_domain": False,
        "roles": [{"id": stable_id("role", "admin").replace("-", ""), "name": "admin"},
                  {"id": stable_id("role", "member").replace("-", ""), "name": "member"},
                  {"id": stable_id("role", "reader").replace("-", ""), "name": "reader"}],
        "catalog": catalog(call, cloud, tok.project.id),
    }}


def _domain_name(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    dom = obj.get("domain")
    if not isinstance(dom, dict):
        return None
    return dom.get("name") or dom.get("id")


def _find_cloud(call: Call, domain: str | None) -> Cloud:
    cloud = call.twin.cloud(domain or "default")
    if cloud is None:
        raise ApiError(401, UNAUTHORIZED)
    if domain and domain != cloud.name and domain == cloud.domain_id:
        return cloud
    return cloud


def _cloud_by_domain(call: Call, domain: str | None) -> Cloud:
    if domain:
        for c in call.twin.clouds.values():
            if c.domain_id == domain:
                return c
    return _find_cloud(call, domain)


def _scope_project(cloud: Cloud, scope: Any) -> Project:
    if scope is None or (isinstance(scope, str) and scope == "unscoped"):
        return cloud.project(cloud.profile.projects[0] if cloud.profile.projects else "admin", create=True)
    if not isinstance(scope, dict):
        raise ApiError(400, "Invalid scope: expecting an object.")
    if "project" not in scope:
        if "domain" in scope or "system" in scope:  # domain/system scope: use the first project
            return cloud.project(cloud.profile.projects[0] if cloud.profile.projects else "admin", create=True)
        raise ApiError(400, "Invalid scope.")
    proj = scope["project"]
    if not isinstance(proj, dict):
        raise ApiError(400, "Invalid scope: project must be an object.")
    key = proj.get("name") or proj.get("id")
    if not isinstance(key, str) or not key:
        raise ApiError(400, "Invalid scope: a project name or id is required.")
    found = cloud.project(key, create=cloud.profile.auto_projects and "name" in proj)
    if found is None:
        raise ApiError(401, f"Could not find project: {key}.")
    return found


async def issue(call: Call) -> web.Response:
    body = call.body("auth")
    ident = body.get("identity")
    if not isinstance(ident, dict) or not isinstance(ident.get("methods"), list):
        raise ApiError(400, "Invalid identity: 'methods' is required.")
    methods = [m for m in ident["methods"] if isinstance(m, str)]
    scope = body.get("scope")
    if "password" in methods:
        user = (ident.get("password") or {}).get("user") if isinstance(ident.get("password"), dict) else None
        if not isinstance(user, dict) or not isinstance(user.get("password"), str):
            raise ApiError(400, "Invalid password credentials: user name and password are required.")
        name = user.get("name") or user.get("id")
        if not isinstance(name, str):
            raise ApiError(400, "Invalid password credentials: user name and password are required.")
        scope_domain = _domain_name(scope.get("project")) if isinstance(scope, dict) else None
        cloud = _cloud_by_domain(call, _domain_name(user) or scope_domain)
        uname = name
        if "id" in user and "name" not in user:
            uname = next((u.name for u in cloud.profile.users
                          if stable_id("user", cloud.name, u.name).replace("-", "") == name), "")
        if not cloud.check_password(uname, user["password"]):
            raise ApiError(401, UNAUTHORIZED)
    elif "token" in methods:
        old = call.twin.token((ident.get("token") or {}).get("id") if isinstance(ident.get("token"), dict) else None)
        if old is None:
            raise ApiError(401, UNAUTHORIZED)
        cloud, uname = old.cloud, old.user
    else:
        raise ApiError(401, "Unsupported authentication method.")
    project = _scope_project(cloud, scope)
    tok = call.twin.issue_token(cloud, project, uname)
    return wire.json_response(201, token_body(call, tok, methods), {"X-Subject-Token": tok.value})


def _subject(call: Call) -> Token:
    tok = call.twin.token(call.request.headers.get("X-Subject-Token"))
    if tok is None:
        raise ApiError(404, "Could not find token.")
    return tok


async def validate(call: Call) -> web.Response:
    tok = _subject(call)
    return wire.json_response(200, token_body(call, tok, ["password"]), {"X-Subject-Token": tok.value})


async def revoke(call: Call) -> web.Response:
    tok = _subject(call)
    call.twin.tokens.pop(tok.value, None)
    return wire.json_response(204)


def _project_doc(call: Call, p: Project) -> dict[str, Any]:
    assert call.token is not None
    return {"id": p.id, "name": p.name, "domain_id": call.token.cloud.domain_id, "enabled": True,
            "is_domain": False, "parent_id": call.token.cloud.domain_id, "description": "", "tags": []}


async def auth_catalog(call: Call) -> web.Response:
    assert call.token is not None
    return wire.json_response(200, {"catalog": catalog(call, call.token.cloud, call.token.project.id)})


async def projects(call: Call) -> web.Response:
    assert call.token is not None
    items = [_project_doc(call, p) for p in call.token.cloud.projects.values()]
    return wire.json_response(200, {"projects": wire.filter_by(items, call.query, ("name", "id"))})


async def project(call: Call) -> web.Response:
    assert call.token is not None
    p = call.token.cloud.project(call.params["id"])
    if p is None:
        raise ApiError(404, f"Could not find project: {call.params['id']}.")
    return wire.json_response(200, {"project": _project_doc(call, p)})


async def regions(call: Call) -> web.Response:
    assert call.token is not None
    return wire.json_response(200, {"regions": [
        {"id": r, "description": "", "parent_region_id": None} for r in call.token.cloud.regions]})


async def domains(call: Call) -> web.Response:
    assert call.token is not None
    c = call.token.cloud
    return wire.json_response(200, {"domains": [{"id": c.domain_id, "name": c.name, "enabled": True,
                                                 "description": f"Cloud-Twin cloud ({c.profile.name})"}]})


# ---- services and endpoints: the catalog's own entries, as Keystone's admin API lists them -----------

# Keystone stores an endpoint's URL as registered; a token's catalog fills the project in, the
# endpoint list does not (Cinder's ``.../v3/$(project_id)s``).
PROJECT_TEMPLATE = "$(project_id)s"


def _registered(call: Call) -> list[dict[str, Any]]:
    """Every service with its endpoints, taken from ``catalog`` so the two views never disagree."""
    assert call.token is not None
    return catalog(call, call.token.cloud, PROJECT_TEMPLATE)


def _identity_url(call: Call) -> str:
    return call.request.app["service_url"](call.request, "", "", "identity")  # type: ignore[no-any-return]


def _service_doc(call: Call, svc: dict[str, Any]) -> dict[str, Any]:
    return {"id": svc["id"], "type": svc["type"], "name": svc["name"], "enabled": True, "description": "",
            "links": {"self": f"{_identity_url(call)}/services/{svc['id']}"}}


def _endpoint_doc(call: Call, svc: dict[str, Any], ep: dict[str, Any]) -> dict[str, Any]:
    return {"id": ep["id"], "service_id": svc["id"], "interface": ep["interface"], "region": ep["region"],
            "region_id": ep["region_id"], "url": ep["url"], "enabled": True,
            "links": {"self": f"{_identity_url(call)}/endpoints/{ep['id']}"}}


def _collection(call: Call, key: str, items: list[dict[str, Any]]) -> web.Response:
    query = call.request.query_string
    link = f"{_identity_url(call)}/{key}" + (f"?{query}" if query else "")
    return wire.json_response(200, {key: items, "links": {"self": link, "previous": None, "next": None}})


async def list_services(call: Call) -> web.Response:
    items = [_service_doc(call, svc) for svc in _registered(call)]
    return _collection(call, "services", wire.filter_by(items, call.query, ("type", "name")))


async def get_service(call: Call) -> web.Response:
    sid = call.params["id"]
    svc = next((s for s in _registered(call) if s["id"] == sid), None)
    if svc is None:
        raise ApiError(404, f"Could not find service: {sid}.")
    return wire.json_response(200, {"service": _service_doc(call, svc)})


async def list_endpoints(call: Call) -> web.Response:
    items = [_endpoint_doc(call, svc, ep) for svc in _registered(call) for ep in svc["endpoints"]]
    return _collection(call, "endpoints",
                       wire.filter_by(items, call.query, ("service_id", "interface", "region_id")))


async def get_endpoint(call: Call) -> web.Response:
    eid = call.params["id"]
    found = next((_endpoint_doc(call, svc, ep) for svc in _registered(call) for ep in svc["endpoints"]
                  if ep["id"] == eid), None)
    if found is None:
        raise ApiError(404, f"Could not find endpoint: {eid}.")
    return wire.json_response(200, {"endpoint": found})


def add_routes(r: Router) -> None:
    s = "identity"
    r.add(s, "GET", "/", versions, "identity:version:list", auth=False)
    r.add(s, "GET", "/v3", version, "identity:version:get", auth=False)
    r.add(s, "POST", "/v3/auth/tokens", issue, "identity:token:create", auth=False)
    r.add(s, "GET", "/v3/auth/tokens", validate, "identity:token:get")
    r.add(s, "DELETE", "/v3/auth/tokens", revoke, "identity:token:delete")
    r.add(s, "GET", "/v3/auth/catalog", auth_catalog, "identity:catalog:get")
    r.add(s, "GET", "/v3/auth/projects", projects, "identity:project:list")
    r.add(s, "GET", "/v3/projects", projects, "identity:project:list")
    r.add(s, "GET", "/v3/projects/{id}", project, "identity:project:get")
    r.add(s, "GET", "/v3/users/{uid}/projects", projects, "identity:project:list")
    r.add(s, "GET", "/v3/regions", regions, "identity:region:list")
    r.add(s, "GET", "/v3/domains", domains, "identity:domain:list")
    r.add(s, "GET", "/v3/services", list_services, "identity:service:list")
    r.add(s, "GET", "/v3/services/{id}", get_service, "identity:service:get")
    r.add(s, "GET", "/v3/endpoints", list_endpoints, "identity:endpoint:list")
    r.add(s, "GET", "/v3/endpoints/{id}", get_endpoint, "identity:endpoint:get")

