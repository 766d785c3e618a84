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
