"""The twin's virtual clouds, as state: each cloud is a Keystone domain made from a profile.

``Cloud`` holds one profile's worth of regions, projects, images and flavors; ``RegionState`` holds one
region's objects, split by service (``region.nova``, ``region.neutron``, ``region.octavia``) so each
service owns its own state class (``cloudtwin/services/<service>/models.py``). ``Twin`` (``twin.py``)
holds every cloud with the engines that act on them; nothing here imports those engines.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from cloudtwin.identity.store import SYSTEM, Assignment, Domain, IdentityStore, User, role_id
from cloudtwin.ids import stable_id
from cloudtwin.lifecycles import KindLifecycle, Placement, load_lifecycles
from cloudtwin.profiles import Profile

if TYPE_CHECKING:
    from cloudtwin.twin import Twin

DEFAULT_REGION_ALIAS = "default"     # CB-Spider's twin registration uses Region=default
DEFAULT_DOMAINS = ("default", "Default")
DEFAULT_CLOUD = "default"

# service name -> factory(region) of that service's per-region state; filled by cloudtwin.services
REGION_STATES: dict[str, Callable[["RegionState"], Any]] = {}


@dataclass
class Project:
    """A Keystone project (a tenant): every service's objects carry its id."""

    id: str
    name: str
    cloud: str
    domain_id: str = ""
    description: str = ""
    enabled: bool = True
    parent_id: str | None = None          # the parent project, or None under the domain itself
    is_domain: bool = False
    tags: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Token:
    """A validated token: who, on what scope, with which roles. ``project`` is the scope's project; a
    domain- or system-scoped token (``scope`` "domain" / "system") carries the cloud's first project
    there so that services that need one still have one."""

    value: str
    cloud: "Cloud"
    project: Project
    user: str
    user_id: str
    issued_at: float
    expires_at: float
    roles: tuple[tuple[str, str], ...] = ()       # (id, name), implied roles included
    methods: tuple[str, ...] = ("password",)
    audit_ids: tuple[str, ...] = ()
    user_domain_id: str = ""
    scope: str = "project"                        # "project" | "domain" | "system"
    domain_id: str | None = None                  # the domain of a domain-scoped token
    app_cred_id: str | None = None
    trust_id: str | None = None                   # a trust-scoped token: the trust's roles, on its project
    generation: int = -1                          # the identity store's generation its roles were read at

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires_at

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.roles)

    @property
    def is_admin(self) -> bool:
        """Keystone's ``role:admin``: an admin on any scope is the cloud's admin (OpenStack's defaults)."""
        return "admin" in self.role_names


class RegionState:
    """One region of one cloud: per-service state objects, created by the registered factories."""

    def __init__(self, cloud: "Cloud", name: str, zones: tuple[str, ...]) -> None:
        self.cloud = cloud
        self.name = name
        self.zones = zones
        self.services: dict[str, Any] = {svc: factory(self) for svc, factory in REGION_STATES.items()}
        for hook in list(cloud.twin.region_hooks):   # e.g. the data plane subscribes to the new region
            hook(self)

    def __getattr__(self, service: str) -> Any:
        try:
            return self.__dict__["services"][service]
        except KeyError:
            raise AttributeError(service) from None

    def placement(self, zone: str = "", project: str = "") -> Placement:
        return Placement(self.cloud.name, self.name, zone, project)

    @property
    def twin(self) -> "Twin":
        return self.cloud.twin


class Cloud:
    def __init__(self, twin: "Twin", name: str, profile: Profile) -> None:
        self.twin = twin
        self.name = name
        self.profile = profile
        self.domain_id = "default" if name == DEFAULT_CLOUD else stable_id("domain", name).replace("-", "")
        self.created_at = time.time()
        self.identity = IdentityStore(Domain(self.domain_id, "Default" if name == DEFAULT_CLOUD else name,
                                             description=f"Cloud-Twin cloud {name} ({profile.name})"),
                                      token_ttl=profile.token_ttl)
        for u in profile.users:   # the profile's users are the cloud's operators: admin of the system
            user = self.identity.add_user(u.name, self.domain_id, None,   # checked against the profile
                                          user_id=self.operator_id(u.name))
            self.identity.assign(Assignment(role_id("admin"), "user", user.id, "system", SYSTEM))
            self.identity.assign(Assignment(role_id("admin"), "user", user.id, "domain", self.domain_id))
        self.lifecycles: dict[str, KindLifecycle] = load_lifecycles(profile.stages)
        self._ids = 0
        self._rng = random.Random(f"{twin.seed}/{name}")
        self.projects: dict[str, Project] = {}
        for p in profile.projects:
            self.project(p, create=True)
        if self.projects:   # an unscoped login of an operator lands in the first project, as before
            first = next(iter(self.projects.values())).id
            for user in self.identity.users.values():
                user.default_project_id = first
        self.regions: dict[str, RegionState] = {r.name: RegionState(self, r.name, r.zones) for r in profile.regions}

    # ---- identity
    def new_id(self) -> str:
        """A random UUID4 drawn from the cloud's seeded generator (replays give the same ids)."""
        self._ids += 1
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def skip_ids(self, n: int) -> None:
        """Advance the id generator past ``n`` ids (a restored snapshot never re-issues one)."""
        for _ in range(max(0, n - self._ids)):
            self._rng.getrandbits(128)
        self._ids = max(self._ids, n)

    def project(self, key: str, *, create: bool = False, domain_id: str | None = None) -> Project | None:
        """A project by id, or by name (in ``domain_id``, else the cloud's own domain first). With
        ``create`` an unknown name becomes a project of the cloud's domain whose admins are the
        profile's users (how a login's project, e.g. CB-Spider's MockName, comes to exist)."""
        found = self.projects.get(key)
        if found is not None:
            return found
        named = [p for p in self.projects.values() if p.name == key and not p.is_domain
                 and (domain_id is None or p.domain_id == domain_id)]
        named.sort(key=lambda p: p.domain_id != self.domain_id)
        if named:
            return named[0]
        if not create or (domain_id not in (None, self.domain_id)):
            return None
        proj = self.add_project(Project(stable_id("project", self.name, key).replace("-", ""), key, self.name,
                                        self.domain_id))
        for u in self.profile.users:
            uid = self.operator_id(u.name)
            if uid in self.identity.users:
                self.identity.assign(Assignment(role_id("admin"), "user", uid, "project", proj.id))
        return proj

    def operator_id(self, name: str) -> str:
        """The id of a profile user (the same in every twin process)."""
        return stable_id("user", self.name, name).replace("-", "")

    def is_operator(self, user_id: str) -> bool:
        return any(self.operator_id(u.name) == user_id for u in self.profile.users)

    def check_password(self, user: "User", password: str) -> bool:
        """A profile user's password is the profile's until changed through the API; any other
        user's is checked against its stored hash."""
        if user.password_hash is None and user.domain_id == self.domain_id:
            return any(u.name == user.name and secrets.compare_digest(u.password, password)
                       for u in self.profile.users)
        return self.identity.check_password(user, password)

    def add_project(self, proj: Project) -> Project:
        self.projects[proj.id] = proj
        self.twin.identity_index[proj.id] = self.name
        return proj

    def adopt_project(self, pid: str, name: str, domain_id: str) -> Project:
        """A project another twin process made (its token names it): known here from now on."""
        found = self.projects.get(pid)
        if found is not None:
            return found
        if pid == stable_id("project", self.name, name).replace("-", ""):   # a login's project: made alike
            return self.project(name, create=True)  # type: ignore[return-value]
        return self.add_project(Project(pid, name, self.name, domain_id))

    def project_lineage(self, proj: Project) -> list[str]:
        """The ids of a project's parents, nearest first."""
        out: list[str] = []
        parent = proj.parent_id
        while parent and parent in self.projects and parent not in out:
            out.append(parent)
            parent = self.projects[parent].parent_id
        return out

    # ---- regions
    def region(self, name: str) -> RegionState | None:
        if name == DEFAULT_REGION_ALIAS and name not in self.regions:
            return self.regions[self.profile.default_region]
        return self.regions.get(name)

    def region_names(self) -> list[str]:
        return list(self.regions)

    def reset(self) -> None:
        """Drop every object (projects stay); pending transitions are discarded."""
        for region in self.regions.values():
            for state in region.services.values():
                for obj in getattr(state, "all_objects", lambda: [])():
                    obj.removed = True
        self.regions = {r.name: RegionState(self, r.name, r.zones) for r in self.profile.regions}

    def summary(self) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        for rname, region in self.regions.items():
            c: dict[str, int] = {}
            for svc, state in region.services.items():
                c.update(getattr(state, "counts", lambda: {})())
            counts[rname] = c
        return {"name": self.name, "profile": self.profile.name, "domain_id": self.domain_id,
                "regions": {r: list(s.zones) for r, s in self.regions.items()},
                "projects": sorted(p.name for p in self.projects.values()), "objects": counts}


@dataclass
class CloudRule:
    """``match`` (a glob over domain names) -> profile; the first matching rule wins."""

    match: str
    profile: str


@dataclass
class TwinConfig:
    seed: int | None = None            # None: a fresh random seed (ids never repeat across restarts)
    time_scale: float = 1.0
    default_profile: str = "openstack"
    cloud_rules: list[CloudRule] = field(default_factory=list)
    auto_create: bool = True           # a login to an unknown domain creates the cloud (default profile)
    profile_dirs: list[str] = field(default_factory=list)
    max_clouds: int = 10_000
    admin_token: str | None = None     # required on /_twin/* when set (non-loopback binds)
    state_file: str | None = None      # snapshot restored at start and written at stop
    image_dir: str | None = None       # Glance image data; None: a temporary directory removed at stop
    image_max_bytes: int = 1024 ** 3   # Glance's image_size_cap: larger uploads get 413
    keystone_key_repo: str | None = None   # Fernet key directory shared by twin processes (None: keys in memory)
    dataplane: str | None = None       # "netns": servers become network namespaces (root + nftables)
    vm_runtime: str = "machine"        # with a data plane: "machine" (sshd, user-data, cgroups) or "network"
