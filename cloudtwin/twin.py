"""The twin: every virtual cloud of one Cloud-Twin process, and the engines that act on them.

``clouds`` holds the state (clouds, regions, projects, tokens' data); this module assembles it with the
services that fill each region (``cloudtwin.services``), the stage scheduler, the fault engine, the event
log and, when asked for, the data plane. State never imports these engines; they are wired here.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import secrets
import time
from typing import Any, Callable

from cloudtwin import services
from cloudtwin.clouds import DEFAULT_CLOUD, DEFAULT_DOMAINS, Cloud, Project, RegionState, Token, TwinConfig
from cloudtwin.errors import ApiError
from cloudtwin.events import EventLog
from cloudtwin.faults import FaultEngine
from cloudtwin.identity.fernet import KeyRepository, Payload, TokenCodec, audit_id
from cloudtwin.identity.store import SYSTEM
from cloudtwin.ids import stable_id
from cloudtwin.profiles import PUBLIC_RANGE, ProfileCatalog, ProfileError
from cloudtwin.services.glance.store import ImageStore
from cloudtwin.stages import Scheduler

class Twin:
    """Every virtual cloud of one Cloud-Twin process."""

    def __init__(self, config: TwinConfig | None = None) -> None:
        services.register()           # the per-region state of every service, before any cloud exists
        self.config = config or TwinConfig()
        # A given seed replays ids, delays and failures exactly; without one every start draws its own,
        # so a twin restarted without its state never hands out an id a client may still hold.
        self.seed = self.config.seed if self.config.seed is not None else secrets.randbits(31)
        self.profiles = ProfileCatalog(self.config.profile_dirs)
        self.profiles.get(self.config.default_profile)  # fail early on a bad default
        for rule in self.config.cloud_rules:
            self.profiles.get(rule.profile)
        self.events = EventLog()
        self.faults = FaultEngine(self)
        self.scheduler = Scheduler(seed=self.seed, time_scale=self.config.time_scale,
                                   hook=self.faults.transition_hook)
        self.region_hooks: list[Callable[[RegionState], None]] = []   # called with every new RegionState
        # each returns ranges taken outside this twin (the data plane: what the host already routes, e.g.
        # another twin's public ranges), which 'auto' public ranges avoid
        self.public_range_hooks: list[Callable[[], list[str]]] = []
        self.dataplane: Any = None         # cloudtwin.dataplane.manager.DataPlane while one runs
        self.image_store = ImageStore(self.config.image_dir, self.config.image_max_bytes)
        self.shard: Any = None             # cloudtwin.shards.ShardRole when this twin is one shard of a cluster
        self.clouds: dict[str, Cloud] = {}
        self.identity_index: dict[str, str] = {}   # domain/user/project/app-credential id or domain name -> cloud
        self.removed: dict[str, float] = {}   # cloud name -> when it was removed (its tokens die with it)
        # Fernet keys: a repository shared by several twin processes makes their tokens valid in each
        self.keys = KeyRepository(self.config.keystone_key_repo)
        self.tokens_codec = TokenCodec(self.keys)
        self.tokens: dict[str, Token] = {}    # tokens this process issued or validated (a cache)
        self.started_at = time.time()

    # ---- clouds
    def profile_for(self, name: str) -> str:
        for rule in self.config.cloud_rules:
            if fnmatch.fnmatchcase(name, rule.match):
                return rule.profile
        return self.config.default_profile

    def cloud(self, name: str, *, create: bool | None = None) -> Cloud | None:
        if name in DEFAULT_DOMAINS:
            name = DEFAULT_CLOUD
        found = self.clouds.get(name)
        if found is not None:
            return found
        if not (self.config.auto_create if create is None else create) or not self.owns(name):
            return None
        return self.add_cloud(name, self.profile_for(name))

    def owns(self, name: str) -> bool:
        """A shard holds only the clouds the cluster file gives it; a lone twin holds any."""
        return self.shard is None or self.shard.owns(name)

    def add_cloud(self, name: str, profile: str) -> Cloud:
        if not name or len(name) > 64 or "/" in name:
            raise ProfileError(f"invalid cloud name '{name}' (1-64 characters, no '/')")
        if name in self.clouds:
            raise ProfileError(f"cloud '{name}' already exists")
        if not self.owns(name):
            raise ProfileError(f"cloud '{name}' belongs to another shard of the cluster")
        if len(self.clouds) >= self.config.max_clouds:
            raise ProfileError(f"this twin already holds {len(self.clouds)} clouds (max_clouds)")
        cloud = Cloud(self, name, self.profiles.get(profile))
        self.clouds[name] = cloud
        self.index_cloud(cloud)
        self.events.record("cloud.created", cloud=name, detail={"profile": profile})
        return cloud

    def index_cloud(self, cloud: Cloud) -> None:
        """Index the cloud's domains, users, projects and application credentials (``locate``)."""
        store = cloud.identity
        for key in [*store.domains, *(d.name for d in store.domains.values()), *store.users, *cloud.projects,
                    *store.app_credentials]:
            self.identity_index[key] = cloud.name

    def locate(self, key: str | None, *, domain: bool = False) -> Cloud | None:
        """The cloud holding a domain (id or name), user, project or application credential id. With
        ``domain``, a domain name nobody holds is a cloud of that name (made on first login unless
        auto-create is off)."""
        if not key:
            return None
        name = self.identity_index.get(key)
        if name is not None and name in self.clouds:
            return self.clouds[name]
        return self.cloud(key) if domain else None

    def remove_cloud(self, name: str) -> None:
        cloud = self.clouds.pop(name)
        self.removed[name] = time.time()
        cloud.reset()
        self.tokens = {k: t for k, t in self.tokens.items() if t.cloud is not cloud}

    def reset(self, cloud: str | None = None) -> None:
        targets = [self.clouds[cloud]] if cloud else list(self.clouds.values())
        for c in targets:
            c.reset()
        self.events.record("twin.reset", cloud=cloud)

    def allocate_public_cidr(self) -> str:
        """The first /24 of the public test range that no region of any cloud uses yet: every region's
        floating IPs are distinct, so the host can route to all of them at once."""

        used: set[str] = set()
        taken = [ipaddress.ip_network(n) for hook in self.public_range_hooks for n in hook()]
        for cloud in self.clouds.values():
            for region in cloud.regions.values():
                neutron = region.services.get("neutron")
                sn = neutron.subnets.get(neutron.public_subnet_id) if neutron and neutron.public_subnet_id else None
                if sn is not None:
                    used.add(sn.cidr)
        for net in ipaddress.ip_network(PUBLIC_RANGE).subnets(new_prefix=24):
            if str(net) not in used and not any(net.overlaps(t) for t in taken):
                return str(net)
        raise ProfileError(f"every /24 of {PUBLIC_RANGE} is in use: at most 512 regions get 'auto' public ranges")

    # ---- running
    def start(self) -> None:
        self.scheduler.start()
        self.faults.start()
        if self.config.dataplane and self.dataplane is None:
            from cloudtwin.dataplane.manager import DataPlane

            self.dataplane = DataPlane(self)
            self.dataplane.start()

    async def stop(self) -> None:
        await self.faults.stop()
        await self.scheduler.stop()
        if self.dataplane is not None:
            dataplane, self.dataplane = self.dataplane, None
            await dataplane.stop()
        self.image_store.close()

    def admin_guard(self, request: Any) -> None:
        """The admin API needs ``X-Twin-Admin-Token`` when the twin was given one."""

        want = self.config.admin_token
        if want and not secrets.compare_digest(request.headers.get("X-Twin-Admin-Token", ""), want):
            raise ApiError(401, "The admin API needs the X-Twin-Admin-Token header.")

    # ---- tokens
    def issue_token(self, cloud: Cloud, project: Project | None, user: str, *, user_id: str | None = None,
                    user_domain_id: str | None = None, roles: tuple[tuple[str, str], ...] | None = None,
                    methods: tuple[str, ...] = ("password",), scope: str = "project",
                    domain: tuple[str, str] | None = None, app_cred_id: str | None = None,
                    trust_id: str | None = None,
                    expires_at: float | None = None, audit_ids: tuple[str, ...] = ()) -> Token:
        """Seal a Fernet token (``fernet.Payload``). ``roles`` default to the user's effective roles on
        the project."""
        now = time.time()
        if len(self.tokens) > 50_000:  # drop expired tokens from the cache now and then
            self.tokens = {k: t for k, t in self.tokens.items() if not t.expired(now)}
        uid = user_id or stable_id("user", cloud.name, user).replace("-", "")
        if roles is None:
            roles = self.project_roles(cloud, uid, project) if project is not None else ()
        expiry = now + cloud.profile.token_ttl
        payload = Payload(
            cloud=cloud.name, user_id=uid, user_name=user, user_domain_id=user_domain_id or cloud.domain_id,
            methods=methods, roles=tuple(roles), issued_at=now,
            expires_at=min(expiry, expires_at) if expires_at else expiry,
            audit_ids=(audit_id(), *audit_ids[:1]),
            project_id=project.id if scope == "project" and project else None,
            project_name=project.name if scope == "project" and project else None,
            project_domain_id=project.domain_id if scope == "project" and project else None,
            domain_id=domain[0] if domain else None, domain_name=domain[1] if domain else None,
            system=scope == "system", app_cred_id=app_cred_id, trust_id=trust_id)
        value = self.tokens_codec.seal(payload)
        tok = self._token_of(cloud, value, payload)
        tok.generation = cloud.identity.generation
        self.tokens[value] = tok
        return tok

    def project_roles(self, cloud: Cloud, user_id: str, project: Project) -> tuple[tuple[str, str], ...]:
        """The user's effective roles on a project, implied roles included."""
        store = cloud.identity
        found = store.effective(user_id, "project", project.id, cloud.project_lineage(project), project.domain_id)
        return tuple(store.role_names(sorted({a.role_id for a in found})))

    def _token_of(self, cloud: Cloud, value: str, p: Payload) -> Token:
        if p.project_id:
            project = cloud.adopt_project(p.project_id, p.project_name or p.project_id,
                                          p.project_domain_id or cloud.domain_id)
        else:
            project = cloud.project(cloud.profile.projects[0] if cloud.profile.projects else "admin", create=True)
        scope = "project" if p.project_id else "system" if p.system else "domain" if p.domain_id else "unscoped"
        return Token(value, cloud, project, p.user_name, p.user_id, p.issued_at, p.expires_at, p.roles,
                     p.methods, p.audit_ids, p.user_domain_id, scope, p.domain_id, p.app_cred_id,
                     p.trust_id)

    def token(self, value: str | None) -> Token | None:
        """The valid token ``value`` is, or None: sealed with one of our keys, not expired, not
        revoked, of a cloud that still exists."""
        if not value:
            return None
        tok = self.tokens.get(value)
        if tok is None:
            payload = self.tokens_codec.open(value)
            if payload is None:
                return None
            if payload.issued_at <= self.removed.get(payload.cloud, 0.0):
                return None     # its cloud was removed after it was issued
            cloud = self.cloud(payload.cloud)   # another process's cloud is made here on first use
            if cloud is None:
                return None
            tok = self._token_of(cloud, value, payload)
            self.tokens[value] = tok
        if tok.expired() or self.clouds.get(tok.cloud.name) is not tok.cloud:
            return None
        store = tok.cloud.identity
        if store.revocations and store.revoked(tok.user_id, tok.project.id if tok.scope == "project" else None,
                                               tok.domain_id, list(tok.audit_ids), tok.issued_at):
            self.tokens.pop(value, None)
            return None
        if tok.generation != store.generation and not self._reread_roles(tok):
            self.tokens.pop(value, None)
            return None
        return tok

    def _reread_roles(self, tok: Token) -> bool:
        """Keystone's rule: a token's roles are the user's roles now. A user this process knows gets its
        roles read again after any change of assignments (False: none left, the token is void); one made
        by another process keeps the roles its token carries."""
        store = tok.cloud.identity
        tok.generation = store.generation
        if tok.user_id not in store.users or tok.scope == "unscoped":
            return True
        if tok.scope == "project":
            roles = self.project_roles(tok.cloud, tok.user_id, tok.project)
        else:
            target, tid = ("system", SYSTEM) if tok.scope == "system" else ("domain", tok.domain_id or "")
            roles = tuple(store.role_names(sorted({a.role_id for a in store.effective(tok.user_id, target, tid)})))
        if tok.trust_id:
            trust = store.trusts.get(tok.trust_id)
            if trust is None:
                return False
            held = {rid for rid, _ in self.project_roles(tok.cloud, trust.trustor_user_id, tok.project)}
            if not set(trust.roles) <= held:
                return False
            allowed = set(store.implied_closure(trust.roles))
            tok.roles = tuple(r for r in store.role_names(trust.roles) if r[0] in allowed)
            return bool(tok.roles)
        if tok.app_cred_id:
            cred = store.app_credentials.get(tok.app_cred_id)
            allowed = set(store.implied_closure(cred.roles)) if cred else set()
            if cred is None or not set(cred.roles) <= {rid for rid, _ in roles}:
                return False
            roles = tuple(r for r in roles if r[0] in allowed)
        tok.roles = roles
        return bool(roles)

    def forget_tokens(self) -> None:
        """Every token issued so far stops validating (new in-memory keys), as after a restart."""
        self.tokens.clear()
        self.keys.replace()
        self.tokens_codec.refresh()
