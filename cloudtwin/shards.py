"""This twin as one shard of a cluster: which requests it answers, and which it passes to the owner.

The dispatcher asks ``ShardRole.route`` before it runs a handler:

* ``/{cloud}/{region}/{service}/...``: the cloud's owner answers (the catalog points clients straight
  at it; a client that comes here anyway is served through this shard);
* Keystone: any shard answers a login; the login names its cloud (the user's or the scope's domain,
  or the token it renews), and the owner checks the password and renders the catalog, whose endpoints
  are the owner's own URLs. Calls that carry a token go to the token's cloud's owner;
* ``/_twin``: ``cloudtwin.fanout`` sends each admin call to the right shard or to all of them.

A shard never creates a cloud it does not own (``Twin.owns``), so a stray request cannot split a
cloud over two processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cloudtwin import fanout
from cloudtwin.clouds import DEFAULT_CLOUD, DEFAULT_DOMAINS
from cloudtwin.cluster import ClusterMap, Shard
from cloudtwin.errors import ApiError
from cloudtwin.forward import FORWARDED_BY, LOCAL_ONLY, Peers, ShardDown
from cloudtwin.routing import SERVICE_PATHS, Call

if TYPE_CHECKING:
    from cloudtwin.twin import Twin

TOKEN_ROUTES = {"identity:token:get", "identity:token:check", "identity:token:delete"}   # by X-Subject-Token
LOCAL_IDENTITY = {"identity:version:list", "identity:version:get"}
ANY_SHARD = Shard("*", "", 0, "")     # a login only the shards themselves can place


@dataclass
class ShardRole:
    cluster: ClusterMap
    me: Shard
    peers: Peers
    _domain_ids: dict[str, str] = field(default_factory=dict)

    def owner(self, cloud: str) -> Shard | None:
        return self.cluster.owner(DEFAULT_CLOUD if cloud in DEFAULT_DOMAINS else cloud)

    def owns(self, cloud: str) -> bool:
        owner = self.owner(cloud)
        return owner is not None and owner.name == self.me.name

    def require_owner(self, cloud: str) -> Shard:
        owner = self.owner(cloud)
        if owner is None:
            raise ApiError(404, f"Cloud '{cloud}' is not served by any shard of this cluster "
                                f"({self.cluster.source}: no 'clouds' rule matches it).")
        return owner

    # ---- the dispatcher's question
    async def route(self, call: Call, service: str, cloud: str) -> web.Response | None:
        """The answer of the owning shard(s), or None when this shard answers itself."""
        request = call.request
        if FORWARDED_BY in request.headers or (service == "admin" and LOCAL_ONLY in request.headers):
            return None
        if service == "admin":
            return await fanout.route(self, call)
        if service in SERVICE_PATHS:
            target = self.require_owner(cloud)
        elif service == "identity":
            target = await self._identity_target(call)
            if target is ANY_SHARD:
                return await self._first_to_accept(call)
        else:
            return None
        if target is None or target.name == self.me.name:
            return None
        return await self.forward(call, target)

    async def forward(self, call: Call, target: Shard) -> web.Response:
        try:
            return await self.peers.forward(call.request, target, call.raw_body)
        except ShardDown as exc:
            raise ApiError(exc.status, f"Cloud-Twin {exc}; the clouds it holds are unavailable until it "
                                       "is back (the other shards' clouds are not affected).") from None

    # ---- Keystone
    async def _identity_target(self, call: Call) -> Shard | None:
        op = call.route.operation
        if op in LOCAL_IDENTITY:
            return None
        if op == "identity:token:create":
            await call.read_body()
            kind, value = login_subject(call.body(required=False))
            if kind == "token":
                cloud = self.token_cloud(call.twin, value)
                return self.require_owner(cloud) if cloud else None
            if kind == "domain_id":
                return await self._owner_of_domain_id(value)
            if kind == "any":
                return ANY_SHARD
            return self.require_owner(value or DEFAULT_CLOUD)
        header = "X-Subject-Token" if op in TOKEN_ROUTES else "X-Auth-Token"
        cloud = self.token_cloud(call.twin, call.request.headers.get(header) or "")
        if cloud is None and header == "X-Subject-Token":
            cloud = self.token_cloud(call.twin, call.request.headers.get("X-Auth-Token") or "")
        return self.require_owner(cloud) if cloud else None

    async def _first_to_accept(self, call: Call) -> web.Response:
        """A login that names no cloud (an application credential by id): each shard in turn checks it
        (a login has no side effect when it fails); the first that accepts it answers."""
        last: web.Response | None = None
        for shard in self.cluster.shards.values():
            try:
                answer = await self.peers.send(shard, "POST", call.request.path_qs, headers=call.request.headers,
                                               body=call.raw_body)
            except ShardDown:
                continue
            last = answer.response(shard.name)
            if answer.status not in (401, 404):
                return last
        if last is None:
            raise ApiError(503, "No Cloud-Twin shard answers.")
        return last

    def token_cloud(self, twin: "Twin", value: str) -> str | None:
        """The cloud a token belongs to, read from the token itself: every shard holds the cluster's
        Fernet keys. (Whether it is still valid is for the owner to say.)"""
        if not value:
            return None
        cached = twin.tokens.get(value)
        if cached is not None:
            return cached.cloud.name
        payload = twin.tokens_codec.open(value)
        return payload.cloud if payload is not None else None

    async def _owner_of_domain_id(self, domain_id: str) -> Shard | None:
        """A login that names its domain by id: ids are hashes of cloud names, so ask the shards which
        of their clouds has it (once; the answer is remembered)."""
        if domain_id in DEFAULT_DOMAINS:
            return self.require_owner(DEFAULT_CLOUD)
        if domain_id not in self._domain_ids:
            answers, _ = await self.peers.everywhere("GET", "/_twin/clouds", headers={})
            for name, answer in answers.items():
                if answer.status == 200:
                    for c in (answer.json() or {}).get("clouds", []):
                        self._domain_ids[c["domain_id"]] = c["name"]
        cloud = self._domain_ids.get(domain_id)
        if cloud is None:   # not a known id: a cloud of that name (this twin's rule for unknown domains)
            return self.require_owner(domain_id)
        return self.require_owner(cloud)


def _domain(obj: Any) -> tuple[str, str] | None:
    dom = obj.get("domain") if isinstance(obj, dict) else None
    if not isinstance(dom, dict):
        return None
    if isinstance(dom.get("name"), str) and dom["name"]:
        return "domain", dom["name"]
    if isinstance(dom.get("id"), str) and dom["id"]:
        return "domain_id", dom["id"]
    return None


def login_subject(body: Any) -> tuple[str, str]:
    """What a login names its cloud by: ``("domain", name)``, ``("domain_id", id)``, ``("token", value)``
    or ``("any", "")`` (a user or an application credential by id alone); ``("domain", "")`` when it
    names none (Keystone's default domain). Malformed bodies are left to the handler, which answers
    them with Keystone's own 400."""
    auth = body.get("auth") if isinstance(body, dict) else None
    if not isinstance(auth, dict):
        return "domain", ""
    ident = auth.get("identity") if isinstance(auth.get("identity"), dict) else {}
    methods = ident.get("methods") if isinstance(ident.get("methods"), list) else []
    if "token" in methods and isinstance(ident.get("token"), dict) and isinstance(ident["token"].get("id"), str):
        return "token", ident["token"]["id"]
    anonymous = False     # a user or credential by id alone: only the shard that holds it knows it
    for method in methods:
        section = ident.get(method) if isinstance(method, str) else None
        user = section.get("user") if isinstance(section, dict) else None
        found = _domain(user)
        if found:
            return found
        anonymous = anonymous or (isinstance(user, dict) and "id" in user) or (
            method == "application_credential" and isinstance(section, dict) and "id" in section)
    scope = auth.get("scope")
    found = _domain(scope.get("project")) if isinstance(scope, dict) else None
    if found is None and isinstance(scope, dict) and isinstance(scope.get("domain"), dict):
        found = _domain({"domain": scope["domain"]})
    if found is None and anonymous:
        return "any", ""
    return found or ("domain", "")
