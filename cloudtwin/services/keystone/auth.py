"""``/v3/auth/*``: logins (password, token, application credential), token validation and revocation,
and what a token may be scoped to."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.clouds import Cloud, Project, Token
from cloudtwin.errors import ApiError
from cloudtwin.identity.passwords import check_secret
from cloudtwin.identity.store import SYSTEM, User
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common
from cloudtwin.services.keystone.catalog import catalog

UNAUTHORIZED = "The request you have made requires authentication."


def _unauthorized(message: str = UNAUTHORIZED) -> ApiError:
    return ApiError(401, message)


def _domain_key(obj: Any) -> str | None:
    dom = obj.get("domain") if isinstance(obj, dict) else None
    if not isinstance(dom, dict):
        return None
    key = dom.get("id") or dom.get("name")
    return key if isinstance(key, str) and key else None


def _find_user(call: Call, doc: Any, scope: Any) -> tuple[Cloud, User]:
    """The user a credential names: by id, or by name in a domain (the scope's, else Default)."""
    if not isinstance(doc, dict):
        raise ApiError(400, "Invalid credentials: a user object is required.")
    uid, name = doc.get("id"), doc.get("name")
    if isinstance(uid, str) and uid and not name:
        cloud = call.twin.locate(uid)
        user = cloud.identity.users.get(uid) if cloud else None
        if cloud is None or user is None:
            raise _unauthorized()
        return cloud, user
    if not isinstance(name, str) or not name:
        raise ApiError(400, "Invalid credentials: a user name or id is required.")
    scope_project = scope.get("project") if isinstance(scope, dict) else None
    key = _domain_key(doc) or _domain_key(scope_project) or "default"
    cloud = call.twin.locate(key, domain=True)
    if cloud is None:
        raise _unauthorized()
    domain = cloud.identity.find_domain(key) or cloud.identity.find_domain(cloud.domain_id)
    user = cloud.identity.user_by_name(name, domain.id) if domain else None
    if user is None:
        raise _unauthorized()
    return cloud, user


def _check_enabled(cloud: Cloud, user: User) -> None:
    domain = cloud.identity.domains.get(user.domain_id)
    if not user.enabled or (domain is not None and not domain.enabled):
        raise _unauthorized()


class Login:
    """What an authentication method established: the cloud, the user, and what the token inherits."""

    def __init__(self, cloud: Cloud, user: User, methods: tuple[str, ...]) -> None:
        self.cloud, self.user, self.methods = cloud, user, methods
        self.expires_at: float | None = None
        self.audit_ids: tuple[str, ...] = ()
        self.app_cred: Any = None


def _password(call: Call, ident: dict[str, Any], scope: Any) -> Login:
    pw = ident.get("password")
    user_doc = pw.get("user") if isinstance(pw, dict) else None
    if not isinstance(user_doc, dict) or not isinstance(user_doc.get("password"), str):
        raise ApiError(400, "Invalid password credentials: user name and password are required.")
    cloud, user = _find_user(call, user_doc, scope)
    if not cloud.check_password(user, user_doc["password"]):
        raise _unauthorized()
    _check_enabled(cloud, user)
    return Login(cloud, user, ("password",))


def _token(call: Call, ident: dict[str, Any]) -> Login:
    doc = ident.get("token")
    old = call.twin.token(doc.get("id") if isinstance(doc, dict) else None)
    if old is None:
        raise _unauthorized()
    if old.app_cred_id:
        raise ApiError(403, "Application credentials cannot request a rescope.")
    if old.trust_id:
        raise ApiError(403, "A trust-scoped token cannot be rescoped.")
    user = old.cloud.identity.users.get(old.user_id)
    if user is None:
        raise _unauthorized()
    login = Login(old.cloud, user, tuple(dict.fromkeys([*old.methods, "token"])))
    login.expires_at, login.audit_ids = old.expires_at, old.audit_ids[:1]
    return login


def _app_credential(call: Call, ident: dict[str, Any], scope: Any) -> Login:
    doc = ident.get("application_credential")
    if not isinstance(doc, dict) or not isinstance(doc.get("secret"), str):
        raise ApiError(400, "Invalid application credential: an id (or name and user) and a secret are required.")
    if doc.get("id"):
        cloud = call.twin.locate(str(doc["id"]))
        cred = cloud.identity.app_credentials.get(str(doc["id"])) if cloud else None
    else:
        cloud, user = _find_user(call, doc.get("user"), None)
        cred = next((c for c in cloud.identity.app_credentials.values()
                     if c.name == doc.get("name") and c.user_id == user.id), None)
    if cloud is None or cred is None or not check_secret(doc["secret"], cred.secret_hash):
        raise _unauthorized()
    if cred.expires_at is not None and cred.expires_at <= time.time():
        raise _unauthorized("The application credential has expired.")
    if scope is not None:
        raise ApiError(401, "Application credentials cannot request a scope.")
    user = cloud.identity.user(cred.user_id)
    _check_enabled(cloud, user)
    login = Login(cloud, user, ("application_credential",))
    login.app_cred = cred
    login.expires_at = cred.expires_at
    return login


METHODS = {"password": _password, "application_credential": _app_credential}


def _scope_project(login: Login, doc: Any) -> Project:
    cloud = login.cloud
    if not isinstance(doc, dict):
        raise ApiError(400, "Invalid scope: project must be an object.")
    pid, name = doc.get("id"), doc.get("name")
    if isinstance(pid, str) and pid:
        found = cloud.projects.get(pid)
    elif isinstance(name, str) and name:
        dkey = _domain_key(doc)
        domain = cloud.identity.find_domain(dkey) if dkey else cloud.identity.find_domain(cloud.domain_id)
        if domain is None:
            raise _unauthorized(f"Could not find domain: {dkey}.")
        found = cloud.project(name, domain_id=domain.id, create=(cloud.profile.auto_projects
                                                                 and cloud.is_operator(login.user.id)
                                                                 and domain.id == cloud.domain_id))
    else:
        raise ApiError(400, "Invalid scope: a project name or id is required.")
    if found is None or found.is_domain:
        raise _unauthorized(f"Could not find project: {pid or name}.")
    if not found.enabled:
        raise _unauthorized(f"Project {found.id} is disabled.")
    return found


def _issue(call: Call, login: Login, scope: Any) -> Token:
    cloud, user = login.cloud, login.user
    twin, store = call.twin, cloud.identity
    common_args: dict[str, Any] = {"user_id": user.id, "user_domain_id": user.domain_id, "methods": login.methods,
                                   "expires_at": login.expires_at, "audit_ids": login.audit_ids}
    if login.app_cred is not None:
        cred = login.app_cred
        project = cloud.projects.get(cred.project_id)
        if project is None:
            raise _unauthorized()
        have = {rid for rid, _ in twin.project_roles(cloud, user.id, project)}
        if not set(cred.roles) <= have:
            raise _unauthorized("The user no longer holds the application credential's roles.")
        roles = tuple(store.role_names(cred.roles))
        return twin.issue_token(cloud, project, user.name, roles=roles, app_cred_id=cred.id, **common_args)
    if isinstance(scope, dict) and "OS-TRUST:trust" in scope:
        return _trust_token(call, login, scope["OS-TRUST:trust"], common_args)
    if scope is None and user.default_project_id in cloud.projects:
        project = cloud.projects[user.default_project_id]
        if twin.project_roles(cloud, user.id, project):
            scope = {"project": {"id": project.id}}
    if scope is None or scope == "unscoped":
        return twin.issue_token(cloud, None, user.name, roles=(), scope="unscoped", **common_args)
    if not isinstance(scope, dict):
        raise ApiError(400, "Invalid scope: expecting an object.")
    if "project" in scope:
        project = _scope_project(login, scope["project"])
        roles = twin.project_roles(cloud, user.id, project)
        if not roles:
            raise _unauthorized(f"User {user.id} has no access to project {project.id}")
        return twin.issue_token(cloud, project, user.name, roles=roles, **common_args)
    if "domain" in scope:
        dkey = _domain_key(scope)
        domain = store.find_domain(dkey) if dkey else None
        if domain is None:
            raise _unauthorized(f"Could not find domain: {dkey}.")
        found = store.effective(user.id, "domain", domain.id)
        if not found or not domain.enabled:
            raise _unauthorized(f"User {user.id} has no access to domain {domain.id}")
        roles = tuple(store.role_names(sorted({a.role_id for a in found})))
        return twin.issue_token(cloud, None, user.name, roles=roles, scope="domain",
                                domain=(domain.id, domain.name), **common_args)
    if "system" in scope:
        found = store.effective(user.id, "system", SYSTEM)
        if not found:
            raise _unauthorized(f"User {user.id} has no access to the system")
        roles = tuple(store.role_names(sorted({a.role_id for a in found})))
        return twin.issue_token(cloud, None, user.name, roles=roles, scope="system", **common_args)
    raise ApiError(400, "Invalid scope: expecting project, domain or system.")


def _trust_token(call: Call, login: Login, doc: Any, args: dict[str, Any]) -> Token:
    """A trustee's login on a trust: the trust's roles (those the trustor still holds) on its project,
    as the trustor when the trust impersonates."""
    cloud, store = login.cloud, login.cloud.identity
    trust = store.trusts.get(doc.get("id") if isinstance(doc, dict) else "")
    if trust is None or trust.trustee_user_id != login.user.id:
        raise _unauthorized("Could not find trust.")
    if trust.expires_at is not None and trust.expires_at <= time.time():
        raise _unauthorized("The trust has expired.")
    if trust.remaining_uses is not None:
        if trust.remaining_uses <= 0:
            raise _unauthorized("The trust has no uses left.")
        trust.remaining_uses -= 1
    project = cloud.projects.get(trust.project_id or "")
    trustor = store.users.get(trust.trustor_user_id)
    if project is None or trustor is None or not trustor.enabled:
        raise _unauthorized()
    held = {rid for rid, _ in call.twin.project_roles(cloud, trustor.id, project)}
    if not set(trust.roles) <= held:
        raise _unauthorized("The trustor no longer holds the trust's roles.")
    acting = trustor if trust.impersonation else login.user
    args = {**args, "user_id": acting.id, "user_domain_id": acting.domain_id}
    return call.twin.issue_token(cloud, project, acting.name, roles=tuple(store.role_names(trust.roles)),
                                 trust_id=trust.id, **args)


def token_body(call: Call, tok: Token, *, with_catalog: bool = True) -> dict[str, Any]:
    cloud, store = tok.cloud, tok.cloud.identity
    udom = store.domains.get(tok.user_domain_id)
    body: dict[str, Any] = {
        "methods": list(tok.methods),
        "user": {"domain": {"id": tok.user_domain_id, "name": udom.name if udom else tok.user_domain_id},
                 "id": tok.user_id, "name": tok.user, "password_expires_at": None},
        "audit_ids": list(tok.audit_ids),
        "expires_at": wire.iso_micro(tok.expires_at),
        "issued_at": wire.iso_micro(tok.issued_at),
    }
    if tok.scope == "unscoped":
        return {"token": body}
    if tok.scope == "project":
        pdom = store.domains.get(tok.project.domain_id)
        body["project"] = {"domain": {"id": tok.project.domain_id, "name": pdom.name if pdom else ""},
                           "id": tok.project.id, "name": tok.project.name}
        body["is_domain"] = False
    elif tok.scope == "domain":
        dom = store.domains.get(tok.domain_id or "")
        body["domain"] = {"id": tok.domain_id, "name": dom.name if dom else tok.domain_id}
    else:
        body["system"] = {"all": True}
    body["roles"] = [{"id": rid, "name": name} for rid, name in tok.roles]
    if tok.app_cred_id:
        cred = store.app_credentials.get(tok.app_cred_id)
        body["application_credential"] = {"id": tok.app_cred_id, "name": cred.name if cred else "",
                                          "restricted": not (cred and cred.unrestricted)}
    if tok.trust_id:
        trust = store.trusts.get(tok.trust_id)
        if trust is not None:
            body["OS-TRUST:trust"] = {"id": trust.id, "impersonation": trust.impersonation,
                                      "trustee_user": {"id": trust.trustee_user_id},
                                      "trustor_user": {"id": trust.trustor_user_id}}
    if with_catalog:
        body["catalog"] = catalog(call, cloud, tok.project.id if tok.scope == "project" else None)
    return {"token": body}


async def issue(call: Call) -> web.Response:
    auth = call.body("auth")
    ident = auth.get("identity")
    if not isinstance(ident, dict) or not isinstance(ident.get("methods"), list) or not ident["methods"]:
        raise ApiError(400, "Invalid identity: 'methods' is required.")
    methods = [m for m in ident["methods"] if isinstance(m, str)]
    scope = auth.get("scope")
    if "token" in methods:
        login = _token(call, ident)
    else:
        method = next((m for m in methods if m in METHODS), None)
        if method is None:
            raise _unauthorized("Unsupported authentication method.")
        login = METHODS[method](call, ident, scope)
    tok = _issue(call, login, scope)
    nocatalog = "nocatalog" in call.query
    return wire.json_response(201, token_body(call, tok, with_catalog=not nocatalog), {"X-Subject-Token": tok.value})


def _subject(call: Call) -> Token:
    tok = call.twin.token(call.request.headers.get("X-Subject-Token"))
    if tok is None:
        raise ApiError(404, "Could not find token.")
    return tok


async def validate(call: Call) -> web.Response:
    tok = _subject(call)
    body = token_body(call, tok, with_catalog="nocatalog" not in call.query)
    return wire.json_response(200, body, {"X-Subject-Token": tok.value})


async def check(call: Call) -> web.Response:
    tok = _subject(call)
    return web.Response(status=200, headers={"X-Subject-Token": tok.value})


async def revoke(call: Call) -> web.Response:
    tok = _subject(call)
    tok.cloud.identity.revoke(audit_id=tok.audit_ids[0])
    call.twin.tokens.pop(tok.value, None)
    return wire.json_response(204)


async def auth_catalog(call: Call) -> web.Response:
    tok = call.token
    assert tok is not None
    if tok.scope == "unscoped":
        raise ApiError(403, "A project-scoped token is required to produce a service catalog.")
    return wire.json_response(200, {"catalog": catalog(call, tok.cloud, tok.project.id if tok.scope == "project"
                                                       else None), "links": common.link(call, "auth/catalog")})


def user_projects(call: Call, uid: str) -> list[Project]:
    """The enabled projects on which the user holds a role (directly, by group, or inherited)."""
    cl = common.cloud(call)
    return [p for p in cl.projects.values() if not p.is_domain and p.enabled
            and cl.identity.effective(uid, "project", p.id, cl.project_lineage(p), p.domain_id)]


async def auth_projects(call: Call) -> web.Response:
    assert call.token is not None
    items = [common.project_doc(call, p) for p in user_projects(call, call.token.user_id)]
    return common.collection(call, "projects", items, "auth/projects")


async def auth_domains(call: Call) -> web.Response:
    assert call.token is not None
    st = common.store(call)
    items = [common.domain_doc(call, d) for d in st.domains.values()
             if d.enabled and st.effective(call.token.user_id, "domain", d.id)]
    return common.collection(call, "domains", items, "auth/domains")


async def auth_system(call: Call) -> web.Response:
    assert call.token is not None
    has = bool(common.store(call).effective(call.token.user_id, "system", SYSTEM))
    return wire.json_response(200, {"system": [{"all": True}] if has else [],
                                    "links": common.link(call, "auth/system")})

