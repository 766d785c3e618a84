"""Virtual compute hosts of one region: hypervisors, Nova services, host aggregates and the scheduler.

Each zone of the region gets ``compute.hosts_per_zone`` hosts (profile data) named
``{zone}-compute-{n}``, each with a nova-compute service and a hypervisor of the profile's capacity.
The scheduler places a server on an enabled, up host of its zone (or of an aggregate's zone), honours
server-group affinity and anti-affinity, and spreads load (fewest instances first). No HTTP here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator

from cloudtwin.errors import ApiError
from cloudtwin.ids import stable_id
from cloudtwin.resource import Resource

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

CONTROLLER = "controller"
INTERNAL_ZONE = "internal"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


@dataclass
class ComputeHost:
    """One hypervisor and the nova-compute service that runs on it."""

    name: str
    zone: str
    seq: int                     # hypervisor and service id before microversion 2.53
    uuid: str
    service_uuid: str
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str
    started_at: float
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    updated_at: float = field(default_factory=time.time)

    @property
    def up(self) -> bool:
        return not self.forced_down


@dataclass
class ControlService:
    """A service of the control plane (scheduler, conductor) on the controller host."""

    binary: str
    seq: int
    uuid: str
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    updated_at: float = field(default_factory=time.time)


@dataclass(kw_only=True)
class Aggregate(Resource):
    seq: int = 0
    availability_zone: str | None = None
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostSpec:
    """The profile's ``compute:`` host settings."""

    per_zone: int = 2
    vcpus: int = 64
    memory_mb: int = 262144
    local_gb: int = 2048
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 8002000

    @classmethod
    def of(cls, doc: dict[str, Any] | None) -> "HostSpec":
        doc = doc or {}
        return cls(per_zone=int(doc.get("hosts_per_zone", 2)), vcpus=int(doc.get("host_vcpus", 64)),
                   memory_mb=int(doc.get("host_memory_mb", 262144)), local_gb=int(doc.get("host_local_gb", 2048)),
                   hypervisor_type=str(doc.get("hypervisor_type", "QEMU")),
                   hypervisor_version=int(doc.get("hypervisor_version", 8002000)))


class HostState:
    """The region's hosts, control services and aggregates (aggregates are stored in snapshots)."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {"aggregates": (Aggregate, "")}

    def __init__(self, region: "RegionState", spec: HostSpec) -> None:
        self.region = region
        self.spec = spec
        cloud = region.cloud
        self.hosts: dict[str, ComputeHost] = {}
        seq = 2        # 1 and 2 are the control services
        for z_i, zone in enumerate(region.zones):
            for n in range(1, spec.per_zone + 1):
                name = f"{zone}-compute-{n}"
                seq += 1
                self.hosts[name] = ComputeHost(
                    name=name, zone=zone, seq=seq - 2, uuid=stable_id("hypervisor", cloud.name, region.name, name),
                    service_uuid=stable_id("service", cloud.name, region.name, name), vcpus=spec.vcpus,
                    memory_mb=spec.memory_mb, local_gb=spec.local_gb, host_ip=f"192.168.{z_i}.{10 + n}",
                    started_at=cloud.created_at)
        self.control = [ControlService(b, i + 1 + len(self.hosts),
                                       stable_id("service", cloud.name, region.name, CONTROLLER, b))
                        for i, b in enumerate(("nova-scheduler", "nova-conductor"))]
        self.aggregates: dict[str, Aggregate] = {}
        self._agg_seq = 0

    def rebuild(self) -> None:
        for a in self.aggregates.values():
            a.removed = False
            self._agg_seq = max(self._agg_seq, a.seq)

    # ---- hosts
    def get(self, name: str) -> ComputeHost:
        h = self.hosts.get(name)
        if h is None:
            raise ApiError(404, f"Compute host {name} could not be found.")
        return h

    def by_hypervisor_id(self, hid: str) -> ComputeHost:
        for h in self.hosts.values():
            if hid in (h.uuid, str(h.seq)):
                return h
        raise ApiError(404, f"Hypervisor with ID {hid} could not be found.")

    def zone_of(self, host: str) -> str:
        """A host's availability zone: its aggregate's zone if one sets it, else the zone it was built in."""
        for a in self.aggregates.values():
            if a.availability_zone and host in a.hosts:
                return a.availability_zone
        h = self.hosts.get(host)
        return h.zone if h is not None else ""

    def zones(self) -> list[str]:
        """Every zone with at least one host, in order (the region's zones first)."""
        out = list(self.region.zones)
        for a in self.aggregates.values():
            if a.availability_zone and a.hosts and a.availability_zone not in out:
                out.append(a.availability_zone)
        return out

    def hosts_in(self, zone: str) -> list[ComputeHost]:
        return [h for h in self.hosts.values() if self.zone_of(h.name) == zone]

    def pick(self, zone: str, load: Callable[[str], int], *, same_as: Iterable[str] = (),
             not_on: Iterable[str] = (), exclude: Iterable[str] = (), host: str | None = None) -> str:
        """The host a server goes to: enabled and up, in ``zone``; on one of ``same_as`` (affinity) if
        given, never on ``not_on`` (anti-affinity) nor ``exclude`` (its current host when moving)."""
        same, avoid, skip = set(same_as), set(not_on), set(exclude)
        cands = [h for h in self.hosts_in(zone) if not h.disabled and h.up and h.name not in skip
                 and h.name not in avoid and (not same or h.name in same)]
        if host is not None:
            cands = [h for h in cands if h.name == host]
        if not cands:
            raise ApiError(400, NO_VALID_HOST)
        return min(cands, key=lambda h: (load(h.name), h.seq)).name

    # ---- aggregates
    def get_aggregate(self, agg_id: str) -> Aggregate:
        for a in self.aggregates.values():
            if agg_id in (str(a.seq), a.id):
                return a
        raise ApiError(404, f"Aggregate {agg_id} could not be found.")

    def _check_zone_name(self, zone: str | None, exclude: Aggregate | None = None) -> None:
        if zone is None:
            return
        if zone == INTERNAL_ZONE:
            raise ApiError(400, "Aggregate availability zone name cannot be the internal zone.")

    def create_aggregate(self, name: str, zone: str | None) -> Aggregate:
        if any(a.name == name for a in self.aggregates.values()):
            raise ApiError(409, f"Aggregate {name} already exists.")
        self._check_zone_name(zone)
        self._agg_seq += 1
        a = Aggregate(id=self.region.cloud.new_id(), project_id="", name=name, seq=self._agg_seq,
                      availability_zone=zone, metadata={"availability_zone": zone} if zone else {})
        self.aggregates[a.id] = a
        return a

    def update_aggregate(self, a: Aggregate, name: str | None, zone: Any) -> Aggregate:
        if name is not None and name != a.name and any(o.name == name for o in self.aggregates.values()):
            raise ApiError(409, f"Aggregate {name} already exists.")
        if zone is not ...:
            self._check_zone_name(zone, a)
            if zone != a.availability_zone:
                for h in a.hosts:
                    self._check_host_zone(h, zone, a)
            a.availability_zone = zone
            if zone:
                a.metadata["availability_zone"] = zone
            else:
                a.metadata.pop("availability_zone", None)
        if name is not None:
            a.name = name
        a.touch()
        return a

    def delete_aggregate(self, a: Aggregate) -> None:
        if a.hosts:
            raise ApiError(400, f"Cannot remove aggregate {a.seq}: it still has hosts.")
        del self.aggregates[a.id]
        a.removed = True

    def _check_host_zone(self, host: str, zone: str | None, a: Aggregate) -> None:
        if not zone:
            return
        for other in self.aggregates.values():
            if other is not a and host in other.hosts and other.availability_zone \
                    and other.availability_zone != zone:
                raise ApiError(409, f"Cannot add host {host} in aggregate {a.seq}: the host is in zone "
                                    f"{other.availability_zone} already.")

    def add_host(self, a: Aggregate, host: str) -> Aggregate:
        if host not in self.hosts:
            raise ApiError(404, f"Compute host {host} could not be found.")
        if host in a.hosts:
            raise ApiError(409, f"Aggregate {a.seq} already has host {host}.")
        self._check_host_zone(host, a.availability_zone, a)
        a.hosts.append(host)
        a.touch()
        return a

    def remove_host(self, a: Aggregate, host: str) -> Aggregate:
        if host not in a.hosts:
            if host not in self.hosts:
                raise ApiError(404, f"Compute host {host} could not be found.")
            raise ApiError(404, f"Cannot remove host {host} in aggregate {a.seq}: the host is not in it.")
        a.hosts.remove(host)
        a.touch()
        return a

    def set_metadata(self, a: Aggregate, changes: dict[str, Any]) -> Aggregate:
        if "availability_zone" in changes:
            zone = changes["availability_zone"]
            self.update_aggregate(a, None, zone)
        for k, v in changes.items():
            if k == "availability_zone":
                continue
            if v is None:
                a.metadata.pop(k, None)
            else:
                a.metadata[k] = str(v)
        a.touch()
        return a

    def aggregates_of(self, host: str) -> Iterator[Aggregate]:
        return (a for a in self.aggregates.values() if host in a.hosts)
