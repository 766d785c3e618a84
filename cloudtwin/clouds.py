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
    image_dir: str | None = None       # Glance image data; None: a temporary directory removed at stop
    image_max_bytes: int = 1024 ** 3   # Glance's image_size_cap: larger uploads get 413
    dataplane: str | None = None       # "netns": servers become network namespaces (root + nftables)
    vm_runtime: str = "machine"        # with a data plane: "machine" (sshd, user-data, cgroups) or "network"
