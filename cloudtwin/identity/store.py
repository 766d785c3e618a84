"""One cloud's Keystone: domains, users, groups, roles, role assignments, application credentials,
credentials, the catalog's services, endpoints and regions, and token revocations.

A cloud is a Keystone domain (named after the cloud; the ``default`` cloud's is Keystone's own
``Default``/``default``); domains created through the API live beside it in the same cloud. Projects are
``Cloud.projects`` (every service looks them up there); this store holds everything else. Roles are
resolved here the way Keystone does: direct and group assignments, inherited ones from the domain and
parent projects, then implied roles.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from cryptography.fernet import Fernet

from cloudtwin.errors import ApiError
from cloudtwin.identity.passwords import check_secret, hash_secret
from cloudtwin.ids import stable_id

# Keystone's bootstrap roles and their implications (admin > manager > member > reader)
DEFAULT_ROLES = ("admin", "manager", "member", "reader", "service")
DEFAULT_IMPLIES = {"admin": ("manager",), "manager": ("member",), "member": ("reader",)}
SYSTEM = "all"


def new_id() -> str:
    return uuid.uuid4().hex


def role_id(name: str) -> str:
    """The bootstrap roles' ids are the same in every cloud and every twin process."""
    return stable_id("role", name).replace("-", "")


def not_found(kind: str, key: str) -> ApiError:
    return ApiError(404, f"Could not find {kind}: {key}.")


def conflict(kind: str, attr: str, value: str) -> ApiError:
    return ApiError(409, f"Conflict occurred attempting to store {kind} - Duplicate entry found with "
                              f"{attr} {value}.")


@dataclass
class Domain:
    id: str
    name: str
    description: str = ""
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class User:
    id: str
    name: str
    domain_id: str
    password_hash: str | None = None
    enabled: bool = True
    default_project_id: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)      # email and any other attribute given
    options: dict[str, Any] = field(default_factory=dict)
    password_expires_at: float | None = None
    created_at: float = field(default_factory=time.time)


@dataclass
class Group:
    id: str
    name: str
    domain_id: str
    description: str = ""
    members: set[str] = field(default_factory=set)


@dataclass
class Role:
    id: str
    name: str
    domain_id: str | None = None
    description: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    role_id: str
    actor: str          # "user" | "group"
    actor_id: str
    target: str         # "project" | "domain" | "system"
    target_id: str
    inherited: bool = False


@dataclass
class AppCredential:
    id: str
    name: str
    user_id: str
    project_id: str
    secret_hash: str
    roles: list[str]                      # role ids, a subset of the user's on the project
    description: str | None = None
    expires_at: float | None = None
    unrestricted: bool = False
    access_rules: list[str] = field(default_factory=list)   # access rule ids (store.access_rules)


@dataclass
class AccessRule:
    id: str
    user_id: str
    service: str
    path: str
    method: str


@dataclass
class Trust:
    """OS-TRUST: the trustor lets the trustee act with some of its roles on one project."""

    id: str
    trustor_user_id: str
    trustee_user_id: str
    project_id: str | None
    roles: list[str]                      # role ids
    impersonation: bool = False
    expires_at: float | None = None
    remaining_uses: int | None = None
    allow_redelegation: bool = False


@dataclass
class Credential:
    id: str
    user_id: str
    type: str
    blob_sealed: bytes                    # the blob, encrypted at rest with the store's credential key
    project_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Service:
    id: str
    type: str
    name: str = ""
    description: str = ""
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Endpoint:
    id: str
    service_id: str
    interface: str
    url: str
    region_id: str | None = None
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Region:
    id: str
    description: str = ""
    parent_region_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Revocation:
    """Tokens issued at or before ``issued_before`` whose fields all match the given ones are revoked."""

    issued_before: float
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    audit_id: str | None = None

    def matches(self, user_id: str, project_id: str | None, domain_id: str | None, audit_ids: Iterable[str],
                issued_at: float) -> bool:
        if issued_at > self.issued_before:
            return False
        return ((self.user_id is None or self.user_id == user_id)
                and (self.project_id is None or self.project_id == project_id)
                and (self.domain_id is None or self.domain_id == domain_id)
                and (self.audit_id is None or self.audit_id == next(iter(audit_ids), None)))


class IdentityStore:
    """Keystone's tables for one cloud (see the module docstring)."""

    def __init__(self, own_domain: Domain, token_ttl: float = 86400.0) -> None:
        self.own_domain_id = own_domain.id
        self.token_ttl = token_ttl    # a revocation older than this can match no live token
        self.domains: dict[str, Domain] = {own_domain.id: own_domain}
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.roles: dict[str, Role] = {}
        self.implies: dict[str, set[str]] = {}
        self.assignments: set[Assignment] = set()
        self.app_credentials: dict[str, AppCredential] = {}
        self.access_rules: dict[str, AccessRule] = {}
        self.trusts: dict[str, Trust] = {}
        self.credentials: dict[str, Credential] = {}
        self.services: dict[str, Service] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.regions: dict[str, Region] = {}
        # plain records kept as given: "policy" (blob, type), "consumer" (OAuth1), "endpoint_group" (filters)
        self.records: dict[str, dict[str, dict[str, Any]]] = {"policy": {}, "consumer": {}, "endpoint_group": {}}
        self.hidden: set[str] = set()          # built-in catalog entries deleted through the API
        self.overrides: dict[str, dict[str, Any]] = {}   # and the fields changed on them
        self.revocations: list[Revocation] = []
        self.generation = 0     # bumped by every change of who holds which role (tokens re-read roles)
        self._sealer = Fernet(Fernet.generate_key())
        for name in DEFAULT_ROLES:
            self.roles[role_id(name)] = Role(role_id(name), name)
        for prior, implied in DEFAULT_IMPLIES.items():
            self.implies[role_id(prior)] = {role_id(i) for i in implied}

    # ---- domains
    def domain(self, key: str) -> Domain:
        found = self.domains.get(key) or next((d for d in self.domains.values() if d.name == key), None)
        if found is None:
            raise not_found("domain", key)
        return found

    def find_domain(self, key: str) -> Domain | None:
        try:
            return self.domain(key)
        except ApiError:
            return None

    def add_domain(self, name: str, *, domain_id: str | None = None, **attrs: Any) -> Domain:
        if any(d.name == name for d in self.domains.values()):
            raise conflict("domain", "name", name)
        d = Domain(domain_id or new_id(), name, **attrs)
        self.domains[d.id] = d
        return d

    def remove_domain(self, did: str) -> None:
        d = self.domain(did)
        if d.id == self.own_domain_id:
            raise ApiError(403, "The cloud's own domain cannot be deleted.")
        if d.enabled:
            raise ApiError(403, "Cannot delete a domain that is enabled, please disable it first.")
        del self.domains[d.id]
        for table in (self.users, self.groups):
            for key in [k for k, v in table.items() if v.domain_id == d.id]:
                self.remove_actor(key)
        for r in [r for r in self.roles.values() if r.domain_id == d.id]:
            self.remove_role(r.id)
        self.drop_assignments(target_id=d.id)
        self.revoke(domain_id=d.id)

    # ---- users
    def user(self, uid: str) -> User:
        found = self.users.get(uid)
        if found is None:
            raise not_found("user", uid)
        return found

    def user_by_name(self, name: str, domain_id: str) -> User | None:
        return next((u for u in self.users.values() if u.name == name and u.domain_id == domain_id), None)

    def add_user(self, name: str, domain_id: str, password: str | None, *, user_id: str | None = None,
                 **attrs: Any) -> User:
        self.domain(domain_id)
        if self.user_by_name(name, domain_id) is not None:
            raise conflict("user", "name", name)
        u = User(user_id or new_id(), name, domain_id, hash_secret(password) if password else None, **attrs)
        self.users[u.id] = u
        return u

    def set_password(self, user: User, password: str) -> None:
        user.password_hash = hash_secret(password)
        self.revoke(user_id=user.id)

    def check_password(self, user: User, password: str) -> bool:
        return user.password_hash is not None and check_secret(password, user.password_hash)

    def remove_actor(self, actor_id: str) -> None:
        """Delete a user or a group with its memberships, assignments and (a user's) credentials."""
        if actor_id in self.users:
            del self.users[actor_id]
            for g in self.groups.values():
                g.members.discard(actor_id)
            for key in [k for k, t in self.trusts.items() if actor_id in (t.trustor_user_id, t.trustee_user_id)]:
                del self.trusts[key]
            for table in (self.app_credentials, self.credentials, self.access_rules):
                for key in [k for k, v in table.items() if v.user_id == actor_id]:
                    del table[key]
            self.revoke(user_id=actor_id)
        elif actor_id in self.groups:
            for uid in self.groups.pop(actor_id).members:
                self.revoke(user_id=uid)
        self.drop_assignments(actor_id=actor_id)

    # ---- groups
    def group(self, gid: str) -> Group:
        found = self.groups.get(gid)
        if found is None:
            raise not_found("group", gid)
        return found

    def add_group(self, name: str, domain_id: str, description: str = "") -> Group:
        self.domain(domain_id)
        if any(g.name == name and g.domain_id == domain_id for g in self.groups.values()):
            raise conflict("group", "name", name)
        g = Group(new_id(), name, domain_id, description)
        self.groups[g.id] = g
        return g

    def user_groups(self, uid: str) -> list[Group]:
        return [g for g in self.groups.values() if uid in g.members]

    # ---- roles
    def role(self, key: str) -> Role:
        found = self.roles.get(key) or next((r for r in self.roles.values()
                                             if r.name == key and r.domain_id is None), None)
        if found is None:
            raise not_found("role", key)
        return found

    def add_role(self, name: str, domain_id: str | None = None, **attrs: Any) -> Role:
        if any(r.name == name and r.domain_id == domain_id for r in self.roles.values()):
            raise conflict("role", "name", name)
        r = Role(new_id(), name, domain_id, **attrs)
        self.roles[r.id] = r
        return r

    def remove_role(self, rid: str) -> None:
        role = self.role(rid)
        del self.roles[role.id]
        self.implies.pop(role.id, None)
        for implied in self.implies.values():
            implied.discard(role.id)
        self.changed()
        for a in [a for a in self.assignments if a.role_id == role.id]:
            self.unassign(a)

    def implied_closure(self, role_ids: Iterable[str]) -> list[str]:
        """The roles and every role they imply, transitively, in a stable order."""
        out: list[str] = []
        todo = list(role_ids)
        while todo:
            rid = todo.pop(0)
            if rid in out or rid not in self.roles:
                continue
            out.append(rid)
            todo.extend(sorted(self.implies.get(rid, ())))
        return out

    # ---- assignments
    def assign(self, a: Assignment) -> None:
        self.role(a.role_id)
        self.assignments.add(a)
        self.changed()

    def unassign(self, a: Assignment) -> None:
        if a not in self.assignments:
            raise ApiError(404, f"Could not find role assignment with role: {a.role_id}, "
                                     f"{a.actor}: {a.actor_id}, {a.target}: {a.target_id}.")
        self.assignments.discard(a)
        self.changed()

    def drop_assignments(self, *, actor_id: str | None = None, target_id: str | None = None) -> None:
        self.assignments = {a for a in self.assignments
                            if not ((actor_id and a.actor_id == actor_id) or (target_id and a.target_id == target_id))}
        self.changed()

    def effective(self, uid: str, target: str, target_id: str, lineage: list[str] | None = None,
                  domain_id: str | None = None) -> list[Assignment]:
        """The user's assignments that apply on a target, group ones expanded to the user (Keystone's
        ``effective``): direct ones, and for a project the ones inherited from its domain and parents
        (``lineage``: the parent project ids)."""
        actors = {("user", uid)} | {("group", g.id) for g in self.user_groups(uid)}
        out = []
        for a in self.assignments:
            if (a.actor, a.actor_id) not in actors:
                continue
            direct = a.target == target and a.target_id == target_id and not a.inherited
            inherited = a.inherited and target == "project" and (
                (a.target == "domain" and a.target_id == domain_id)
                or (a.target == "project" and a.target_id in (lineage or [])))
            if direct or inherited:
                out.append(Assignment(a.role_id, "user", uid, target, target_id))
        return out

    def role_names(self, role_ids: Iterable[str]) -> list[tuple[str, str]]:
        """``(id, name)`` of the roles and the roles they imply; domain-specific roles only lend the
        global roles they imply (Keystone leaves them out of tokens)."""
        return [(rid, self.roles[rid].name) for rid in self.implied_closure(role_ids)
                if self.roles[rid].domain_id is None]

    # ---- application credentials and credentials
    def add_app_credential(self, user: User, project_id: str, name: str, secret: str, roles: list[str],
                           **attrs: Any) -> AppCredential:
        if any(c.name == name and c.user_id == user.id for c in self.app_credentials.values()):
            raise conflict("application_credential", "name", name)
        c = AppCredential(new_id(), name, user.id, project_id, hash_secret(secret), roles, **attrs)
        self.app_credentials[c.id] = c
        return c

    def app_credential(self, cid: str, user_id: str | None = None) -> AppCredential:
        found = self.app_credentials.get(cid)
        if found is None or (user_id is not None and found.user_id != user_id):
            raise ApiError(404, f"Could not find Application Credential: {cid}.")
        return found

    def seal(self, blob: str) -> bytes:
        return self._sealer.encrypt(blob.encode())

    def unseal(self, sealed: bytes) -> str:
        return self._sealer.decrypt(sealed).decode()

    def changed(self) -> None:
        """Role assignments, group memberships or implications changed: tokens re-read their roles."""
        self.generation += 1

    # ---- revocations
    def revoke(self, **fields: str | None) -> None:
        now = time.time()
        if self.revocations and self.revocations[0].issued_before < now - self.token_ttl:
            self.revocations = [r for r in self.revocations if r.issued_before >= now - self.token_ttl]
        self.revocations.append(Revocation(now, **fields))

    def revoked(self, user_id: str, project_id: str | None, domain_id: str | None, audit_ids: list[str],
                issued_at: float) -> bool:
        return any(r.matches(user_id, project_id, domain_id, audit_ids, issued_at) for r in self.revocations)
