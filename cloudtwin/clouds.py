"""The twin and its virtual clouds: each cloud is a Keystone domain made from a profile.

``Twin`` holds every cloud, the tokens, the stage scheduler, the fault engine and the event log.
``Cloud`` holds one profile's worth of regions, projects, images and flavors; ``RegionState`` holds one
region's objects, split by service (``region.nova``, ``region.neutron``, ``region.octavia``) so each
service owns its own state class (``cloudtwin/services/<service>/models.py``).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from cloudtwin.events import EventLog
from cloudtwin.profiles import Profile, ProfileCatalog, ProfileError
from cloudtwin.stages import KindLifecycle, Placement, Scheduler, load_lifecycles

DEFAULT_REGION_ALIAS = "default"     # CB-Spider's twin registration uses Region=default
DEFAULT_DOMAINS = ("default", "Default")
DEFAULT_CLOUD = "default"

# service name -> factory(region) of that service's per-region state; filled by cloudtwin.services
REGION_STATES: dict[str, Callable[["RegionState"], Any]] = {}


def stable_id(*parts: str) -> str:
    """A UUID that depends only on ``parts`` (image ids, project ids survive restarts and resets)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cloudtwin:" + "/".join(parts)))


@dataclass
class Project:
    id: str
    name: str
    cloud: str


@dataclass
class Token:
    value: str
    cloud: "Cloud"
    project: Project
    user: str
    user_id: str
    issued_at: float
    expires_at: float

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires_at


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
        self.domain_id = stable_id("domain", name).replace("-", "")
        self.created_at = time.time()
        self.lifecycles: dict[str, KindLifecycle] = load_lifecycles(profile.stages)
        self._ids = 0
        self._rng = random.Random(f"{twin.seed}/{name}")
        self.projects: dict[str, Project] = {}
        for p in profile.projects:
            self.project(p, create=True)
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

    def project(self, name: str, *, create: bool = False) -> Project | None:
        proj = self.projects.get(name)
        if proj is None:
            for p in self.projects.values():
                if p.id == name:
                    return p
            if not create:
                return None
            proj = Project(stable_id("project", self.name, name).replace("-", ""), name, self.name)
            self.projects[name] = proj
        return proj

    def check_password(self, user: str, password: str) -> bool:
        return any(u.name == user and secrets.compare_digest(u.password, password) for u in self.profile.users)

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
                "projects": sorted(self.projects), "objects": counts}


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
    dataplane: str | None = None       # "netns": servers become network namespaces (root + nftables)
    vm_runtime: str = "machine"        # with a data plane: "machine" (sshd, user-data, cgroups) or "network"


class Twin:
    """Every virtual cloud of one Cloud-Twin process."""

    def __init__(self, config: TwinConfig | None = None) -> None:
        from cloudtwin import services  # noqa: F401  (registers the per-region state factories)
        from cloudtwin.faults import FaultEngine

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
        self.clouds: dict[str, Cloud] = {}
        self.tokens: dict[str, Token] = {}
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
        if not (self.config.auto_create if create is None else create):
            return None
        return self.add_cloud(name, self.profile_for(name))

    def add_cloud(self, name: str, profile: str) -> Cloud:
        if not name or len(name) > 64 or "/" in name:
            raise ProfileError(f"invalid cloud name '{name}' (1-64 characters, no '/')")
        if name in self.clouds:
            raise ProfileError(f"cloud '{name}' already exists")
        if len(self.clouds) >= self.config.max_clouds:
            raise ProfileError(f"this twin already holds {len(self.clouds)} clouds (max_clouds)")
        cloud = Cloud(self, name, self.profiles.get(profile))
        self.clouds[name] = cloud
        self.events.record("cloud.created", cloud=name, detail={"profile": profile})
        return cloud

    def remove_cloud(self, name: str) -> None:
        cloud = self.clouds.pop(name)
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
        from cloudtwin.profiles import PUBLIC_RANGE

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

    def admin_guard(self, request: Any) -> None:
        """The admin API needs ``X-Twin-Admin-Token`` when the twin was given one."""
        from cloudtwin.errors import ApiError

        want = self.config.admin_token
        if want and not secrets.compare_digest(request.headers.get("X-Twin-Admin-Token", ""), want):
            raise ApiError(401, "The admin API needs the X-Twin-Admin-Token header.")

    # ---- tokens
    def issue_token(self, cloud: Cloud, project: Project, user: str) -> Token:
        now = time.time()
        if len(self.tokens) > 50_000:  # drop expired tokens now and then
            self.tokens = {k: t for k, t in self.tokens.items() if not t.expired(now)}
        tok = Token("gAAAA" + secrets.token_urlsafe(48), cloud, project, user,
                    stable_id("user", cloud.name, user).replace("-", ""), now, now + cloud.profile.token_ttl)
        self.tokens[tok.value] = tok
        return tok

    def token(self, value: str | None) -> Token | None:
        if not value:
            return None
        tok = self.tokens.get(value)
        if tok is None or tok.expired() or self.clouds.get(tok.cloud.name) is not tok.cloud:
            return None
        return tok
