"""Cloud profiles: the data file a virtual cloud is made from.

A profile says what a cloud looks like and how it behaves: regions and zones, images, flavors, quotas,
default security-group rules, the Nova microversion it advertises, per-operation latency, rate limits,
error style and lifecycle timings. Profiles live in YAML (``cloudtwin/profiles/*.yaml`` plus any
directory the user adds); ``extends: other`` inherits and deep-merges, so a user profile can be three
lines. Every problem is reported with the file and the field.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BUILTIN_DIR = Path(__file__).with_name("profiles")
NEUTRON_QUOTAS = ("networks", "subnets", "ports", "security_groups", "security_group_rules", "floatingips")
NOVA_QUOTAS = ("instances", "cores", "ram", "key_pairs")
OCTAVIA_QUOTAS = ("load_balancers", "listeners", "pools", "members", "health_monitors")


AUTO_PUBLIC_CIDR = "auto"     # each region gets its own /24 of PUBLIC_RANGE
PUBLIC_RANGE = "198.18.0.0/15"  # RFC 2544's benchmarking range: never real public address space


class ProfileError(ValueError):
    """A profile file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Region:
    name: str
    zones: tuple[str, ...]


@dataclass(frozen=True)
class User:
    name: str
    password: str


@dataclass(frozen=True)
class LatencySpec:
    operation: str       # fnmatch glob over operation names, e.g. "compute:server:*"
    dist: dict[str, Any]  # {"fixed": 0.1} | {"uniform": [lo, hi]} | {"normal": [mean, sd]} | ...


@dataclass(frozen=True)
class RateLimit:
    op_class: str        # "read", "write" or an operation glob
    rate: float          # tokens per second
    burst: int


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: str
    regions: tuple[Region, ...]
    users: tuple[User, ...]
    projects: tuple[str, ...]
    auto_projects: bool
    token_ttl: float
    max_microversion: str
    images: tuple[dict[str, Any], ...]
    flavors: tuple[dict[str, Any], ...]
    quotas: dict[str, int]
    default_egress: tuple[str, ...]      # ethertypes of the egress rules a new SG gets ("IPv4", "IPv6")
    default_security_group: bool
    public_cidr: str
    latency: tuple[LatencySpec, ...]
    rate_limits: tuple[RateLimit, ...]
    throttle_status: int
    stages: dict[str, Any] = field(default_factory=dict)  # overrides of cloudtwin/data/stages.yaml
    volume_max_microversion: str = "3.70"
    volume_types: tuple[dict[str, Any], ...] = ({"name": "__DEFAULT__"},)
    default_volume_type: str = "__DEFAULT__"
    compute: dict[str, Any] = field(default_factory=dict)   # compute hosts per zone and their capacity

    @property
    def default_region(self) -> str:
        return self.regions[0].name

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "source": self.source,
                "regions": {r.name: list(r.zones) for r in self.regions},
                "images": [i["name"] for i in self.images], "flavors": [f["name"] for f in self.flavors],
                "default_egress": list(self.default_egress), "max_microversion": self.max_microversion,
                "rate_limits": [vars(r) for r in self.rate_limits], "throttle_status": self.throttle_status}


_HOST_KEYS = ("hosts_per_zone", "host_vcpus", "host_memory_mb", "host_local_gb", "hypervisor_version")


def _compute_hosts(compute: dict[str, Any], source: str) -> dict[str, Any]:
    """The ``compute:`` section's host settings (positive integers; ``hypervisor_type`` a name)."""
    _need(isinstance(compute, dict), source, "compute", "a mapping")
    out: dict[str, Any] = {}
    for key in _HOST_KEYS:
        if key in compute:
            _need(isinstance(compute[key], int) and compute[key] >= 1, source, f"compute.{key}",
                  "a positive integer")
            out[key] = compute[key]
    if "hypervisor_type" in compute:
        out["hypervisor_type"] = str(compute["hypervisor_type"])
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class ProfileCatalog:
    """Every profile found in the built-in directory and the user's directories (later ones win)."""

    def __init__(self, extra_dirs: list[str | Path] | None = None) -> None:
        self._raw: dict[str, tuple[dict[str, Any], str]] = {}
        self._cache: dict[str, Profile] = {}
        for d in [BUILTIN_DIR, *(Path(p) for p in (extra_dirs or []))]:
            self.load_dir(Path(d))
        for name in self.names():  # every profile is checked at start, not on first use
            self.get(name)

    def load_dir(self, directory: Path) -> None:
        if not directory.is_dir():
            raise ProfileError(f"profile directory {directory} does not exist")
        for path in sorted(directory.glob("*.y*ml")):
            self.load_file(path)

    def load_file(self, path: Path) -> str:
        try:
            doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise ProfileError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise ProfileError(f"{path}: a profile is a mapping")
        name = doc.get("name") or path.stem
        if not isinstance(name, str):
            raise ProfileError(f"{path}: 'name' must be a string")
        self._raw[name] = (doc, str(path))
        self._cache.clear()
        return name

    def add(self, name: str, doc: dict[str, Any], source: str = "<api>") -> Profile:
        self._raw[name] = (doc, source)
        self._cache.clear()
        try:
            return self.get(name)
        except ProfileError:
            del self._raw[name]
            self._cache.clear()
            raise

    def names(self) -> list[str]:
        return sorted(self._raw)

    def get(self, name: str) -> Profile:
        if name not in self._cache:
            if name not in self._raw:
                raise ProfileError(f"unknown profile '{name}' (known: {', '.join(self.names())})")
            doc, source = self._resolve(name, ())
            self._cache[name] = build_profile(name, doc, source)
        return self._cache[name]

    def _resolve(self, name: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
        if name in seen:
            raise ProfileError(f"profile '{name}': 'extends' loops through {' -> '.join(seen + (name,))}")
        if name not in self._raw:
            raise ProfileError(f"profile '{seen[-1]}' extends unknown profile '{name}'")
        doc, source = self._raw[name]
        parent = doc.get("extends")
        if parent is None:
            return doc, source
        base, _ = self._resolve(str(parent), seen + (name,))
        return deep_merge(base, {k: v for k, v in doc.items() if k != "extends"}), source


def _need(cond: bool, source: str, where: str, text: str) -> None:
    if not cond:
        raise ProfileError(f"{source}: {where}: {text}")


def build_profile(name: str, doc: dict[str, Any], source: str) -> Profile:
    """Validate a merged profile document and build the typed ``Profile``."""
    regions_doc = doc.get("regions")
    _need(isinstance(regions_doc, list) and regions_doc, source, "regions", "a non-empty list is required")
    regions = []
    for i, r in enumerate(regions_doc):
        _need(isinstance(r, dict) and isinstance(r.get("name"), str), source, f"regions[{i}]",
              "each region needs a 'name'")
        zones = r.get("zones") or ["nova"]
        _need(isinstance(zones, list) and all(isinstance(z, str) for z in zones), source,
              f"regions[{i}].zones", "a list of zone names")
        regions.append(Region(r["name"], tuple(zones)))
    auth = doc.get("auth") or {}
    users = tuple(User(str(u["name"]), str(u["password"])) for u in auth.get("users", [{"name": "admin",
                                                                                        "password": "admin"}]))
    images = tuple(doc.get("images") or ())
    for i, img in enumerate(images):
        _need(isinstance(img, dict) and isinstance(img.get("name"), str), source, f"images[{i}]", "needs a 'name'")
    flavors = tuple(doc.get("flavors") or ())
    for i, fl in enumerate(flavors):
        _need(isinstance(fl, dict) and isinstance(fl.get("name"), str), source, f"flavors[{i}]", "needs a 'name'")
        for key in ("vcpus", "ram", "disk"):
            _need(isinstance(fl.get(key), int) and fl[key] >= 0, source, f"flavors[{i}].{key}",
                  "a non-negative integer")
    quotas = doc.get("quotas") or {}
    _need(isinstance(quotas, dict) and all(isinstance(v, int) for v in quotas.values()), source, "quotas",
          "a mapping of resource -> integer (-1 = unlimited)")
    network = doc.get("network") or {}
    egress = tuple(network.get("default_egress", ["IPv4", "IPv6"]))
    _need(all(e in ("IPv4", "IPv6") for e in egress), source, "network.default_egress", "IPv4 and/or IPv6")
    public_cidr = str(network.get("public_cidr", AUTO_PUBLIC_CIDR))
    if public_cidr != AUTO_PUBLIC_CIDR:
        try:
            ipaddress.ip_network(public_cidr)
        except ValueError:
            raise ProfileError(f"{source}: network.public_cidr: '{public_cidr}' is not a CIDR or 'auto'") from None
    latency = []
    for i, spec in enumerate(doc.get("latency") or []):
        _need(isinstance(spec, dict) and "operation" in spec, source, f"latency[{i}]",
              "needs 'operation' and one distribution")
        dist = {k: v for k, v in spec.items() if k != "operation"}
        from cloudtwin.faults import validate_distribution  # the one place distributions are parsed
        try:
            validate_distribution(dist)
        except ValueError as exc:
            raise ProfileError(f"{source}: latency[{i}]: {exc}") from None
        latency.append(LatencySpec(str(spec["operation"]), dist))
    limits = []
    for i, spec in enumerate(doc.get("rate_limits") or []):
        _need(isinstance(spec, dict) and isinstance(spec.get("rate"), (int, float)) and spec["rate"] > 0,
              source, f"rate_limits[{i}]", "needs a positive 'rate' (requests per second)")
        limits.append(RateLimit(str(spec.get("op_class", "write")), float(spec["rate"]),
                                int(spec.get("burst", max(1, int(spec["rate"]))))))
    errors = doc.get("errors") or {}
    throttle_status = int(errors.get("throttle_status", 429))
    _need(throttle_status in (413, 429, 503), source, "errors.throttle_status", "413, 429 or 503")
    stages = doc.get("stages") or {}
    _need(isinstance(stages, dict), source, "stages", "a mapping of kind -> state -> overrides")
    storage = doc.get("block_storage") or {}
    _need(isinstance(storage, dict), source, "block_storage", "a mapping")
    vtypes = tuple(storage.get("volume_types") or ({"name": "__DEFAULT__"},))
    for i, vt in enumerate(vtypes):
        _need(isinstance(vt, dict) and isinstance(vt.get("name"), str) and vt["name"], source,
              f"block_storage.volume_types[{i}]", "each volume type needs a 'name'")
    default_vtype = str(storage.get("default_type", vtypes[0]["name"]))
    _need(default_vtype in {vt["name"] for vt in vtypes}, source, "block_storage.default_type",
          "must name one of block_storage.volume_types")
    return Profile(
        name=name, description=str(doc.get("description", "")), source=source, regions=tuple(regions),
        users=users, projects=tuple(auth.get("projects", ["admin"])),
        auto_projects=bool(auth.get("auto_projects", True)), token_ttl=float(auth.get("token_ttl", 3600)),
        max_microversion=str((doc.get("compute") or {}).get("max_microversion", "2.95")),
        images=images, flavors=flavors, quotas={str(k): int(v) for k, v in quotas.items()},
        default_egress=egress, default_security_group=bool(network.get("default_security_group", True)),
        public_cidr=public_cidr, latency=tuple(latency), rate_limits=tuple(limits),
        throttle_status=throttle_status, stages=stages,
        volume_max_microversion=str(storage.get("max_microversion", "3.70")), volume_types=vtypes,
        default_volume_type=default_vtype, compute=_compute_hosts(doc.get("compute") or {}, source))
