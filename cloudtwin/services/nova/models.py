"""Nova state for one region: servers (with their lifecycle), keypairs, flavors (from the profile),
quotas and availability zones.

No HTTP here: handlers parse and render, this module enforces Nova's rules and raises ``ApiError``
with Nova's messages. Networking goes through Neutron's model interface (``region.neutron``); Neutron
errors are translated into what Nova answers (e.g. an unknown network is a 400, not a 404).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource
from cloudtwin.services.nova import block_devices, operations
from cloudtwin.services.nova.block_devices import BlockDevice
from cloudtwin.services.nova.groups import ServerGroup, placement_hints
from cloudtwin.services.nova.hosts import NO_VALID_HOST, Aggregate, HostSpec, HostState
from cloudtwin.services.nova.records import InstanceAction, Migration

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState
    from cloudtwin.lifecycles import KindLifecycle

KIND = "server"
# action name in the API/lifecycle -> the verb Nova's conflict messages use
VERBS = {"os-start": "start", "os-stop": "stop", "reboot": "reboot", "reboot_hard": "reboot",
         "suspend": "suspend", "resume": "resume", "pause": "pause", "unpause": "unpause",
         "delete": "delete"}
# states an action starts from that its RETURN stage goes back to (ERROR and CRASHED come back up)
RESUMABLE = {"ACTIVE": "ACTIVE", "SHUTOFF": "SHUTOFF", "PAUSED": "PAUSED", "SUSPENDED": "SUSPENDED",
             "ERROR": "ACTIVE", "CRASHED": "SHUTOFF"}
# states where nothing is going on: pending instance actions finish when a server reaches one
SETTLED = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "RESCUED", "VERIFY_RESIZE", "SHELVED",
           "SHELVED_OFFLOADED", "CRASHED")
USER_DATA_MAX = 65535
# Nova's limits for what the profile does not set
QUOTA_DEFAULTS = {"metadata_items": 128, "injected_files": 5, "injected_file_content_bytes": 10240,
                  "injected_file_path_bytes": 255, "server_groups": 10, "server_group_members": 10,
                  "fixed_ips": -1}


@dataclass(kw_only=True)
class Server(Resource):
    user_id: str = ""
    availability_zone: str = ""
    host: str = ""
    image_id: str = ""
    flavor_id: str = ""
    vcpus: int = 0                      # the flavor's numbers at boot (quota accounting)
    ram: int = 0
    disk: int = 0
    key_name: str | None = None
    security_groups: list[str] = field(default_factory=list)   # ids requested at boot
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    user_data: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    config_drive: str = ""
    disk_config: str = "MANUAL"
    reservation_id: str = ""
    launch_index: int = 0
    locked: bool = False
    locked_reason: str | None = None
    launched_at: float | None = None
    fault: dict[str, Any] | None = None   # {"code", "message", "created"}; shown only in ERROR
    resume_state: str = ""              # where a RETURN stage goes back to (the state an action began in)
    pending_images: list[str] = field(default_factory=list)   # snapshots being taken of it
    shelved_image: str | None = None
    unshelve_host: str | None = None
    migration_id: str | None = None     # the move in progress (resize, migration, live migration)
    last_state: str = ""                # the state before the one a timed stage enters


@dataclass(kw_only=True)
class Keypair(Resource):
    user_id: str = ""
    public_key: str = ""
    fingerprint: str = ""
    type: str = "ssh"
    seq: int = 0


@dataclass
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    is_public: bool = True
    disabled: bool = False
    rxtx_factor: float = 1.0
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    access: list[str] = field(default_factory=list)     # projects a private flavor is shared with
    builtin: bool = True


def build_flavors(cloud_name: str, specs: tuple[dict[str, Any], ...]) -> dict[str, Flavor]:
    out: dict[str, Flavor] = {}
    for spec in specs:
        fid = str(spec.get("id") or stable_id("flavor", cloud_name, spec["name"]))
        out[fid] = Flavor(id=fid, name=spec["name"], vcpus=int(spec["vcpus"]), ram=int(spec["ram"]),
                          disk=int(spec["disk"]), ephemeral=int(spec.get("ephemeral", 0) or 0),
                          swap=int(spec.get("swap", 0) or 0), is_public=bool(spec.get("is_public", True)),
                          disabled=bool(spec.get("disabled", False)),
                          rxtx_factor=float(spec.get("rxtx_factor", 1.0)),
                          description=spec.get("description"),
                          extra_specs={str(k): str(v) for k, v in (spec.get("extra_specs") or {}).items()})
    return out


def ref_id(ref: str) -> str:
    """An id from an id or a URL (``http://…/flavors/1`` → ``1``)."""
    return ref.rstrip("/").rsplit("/", 1)[-1] if "/" in ref else ref


def _nova_error(err: ApiError, *, not_found: str | None = None) -> ApiError:
    """A Neutron ``ApiError`` re-raised the way Nova answers it (Nova's fault names, its codes)."""
    if err.status == 404:
        return ApiError(400, not_found or err.message)
    if err.status == 409 and (err.code or "") == "OverQuota":
        return ApiError(403, "Maximum number of ports exceeded.")
    if err.status == 409 and (err.code or "") == "IpAddressInUse":
        return ApiError(400, err.message)
    return ApiError(err.status, err.message, headers=err.headers)


@dataclass
class NetRequest:
    """One entry of a create request's ``networks`` after validation."""

    network_id: str = ""
    port_id: str = ""
    fixed_ip: str | None = None


class NovaState:
    """One region's compute objects."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {
        "servers": (Server, KIND), "keypairs": (Keypair, ""), "aggregates": (Aggregate, ""),
        "server_groups": (ServerGroup, ""), "migrations": (Migration, ""), "instance_actions": (InstanceAction, "")}

    def __init__(self, region: "RegionState") -> None:
        self.region = region
        self.servers: dict[str, Server] = {}
        self.keypairs: dict[str, Keypair] = {}
        self.flavors: dict[str, Flavor] = build_flavors(region.cloud.name, region.cloud.profile.flavors)
        self._by_project: dict[str, dict[str, Server]] = {}
        self._by_zone: dict[str, dict[str, Server]] = {}
        self._usage: dict[str, list[int]] = {}          # project -> [instances, cores, ram]
        self._kp_index: dict[tuple[str, str, str], Keypair] = {}   # (user, project, name)
        self._kp_count: dict[tuple[str, str], int] = {}
        self._kp_seq = 0
        self._rr = 0
        self.hosts = HostState(region, HostSpec.of(region.cloud.profile.compute))
        self.aggregates: dict[str, Aggregate] = self.hosts.aggregates
        self.server_groups: dict[str, ServerGroup] = {}
        self.migrations: dict[str, Migration] = {}
        self.instance_actions: dict[str, InstanceAction] = {}
        self.console_tokens: dict[str, Any] = {}     # noVNC console token -> vnc.ConsoleToken (not persisted)
        self.quota_overrides: dict[str, dict[str, int]] = {}     # project -> resource -> limit
        self.user_quota_overrides: dict[tuple[str, str], dict[str, int]] = {}   # (project, user) -> ...
        self.quota_class: dict[str, int] = {}                    # the "default" quota class's overrides
        # called as listener(server, state) whenever a server enters a state; "DELETED" when it is gone
        # (the data plane plumbs a namespace on ACTIVE and removes it on DELETED)
        self.server_listeners: list[Callable[[Server, str], None]] = []

    # ---- the protocol every state class offers
    @property
    def life(self) -> "KindLifecycle":
        return self.region.cloud.lifecycles[KIND]

    def rebuild(self) -> None:
        self._by_project.clear()
        self._by_zone.clear()
        self._usage.clear()
        self._kp_index.clear()
        self._kp_count.clear()
        for s in sorted(self.servers.values(), key=lambda s: (s.created_at, s.id)):
            s.removed = False
            self._index(s)
        for kp in self.keypairs.values():
            kp.removed = False
            self._kp_index[(kp.user_id, kp.project_id, kp.name)] = kp
            self._kp_count[(kp.user_id, kp.project_id)] = self._kp_count.get((kp.user_id, kp.project_id), 0) + 1
            self._kp_seq = max(self._kp_seq, kp.seq)
        self.hosts.rebuild()
        for table in (self.server_groups, self.migrations, self.instance_actions):
            for obj in table.values():
                obj.removed = False

    def on_enter_for(self, kind: str) -> Callable[[Any, str, str], None]:
        if kind == KIND:
            return self._on_server_enter
        return lambda obj, state, message: None

    def all_objects(self) -> Iterator[Resource]:
        yield from list(self.servers.values())
        yield from list(self.keypairs.values())

    def counts(self) -> dict[str, int]:
        return {"servers": len(self.servers), "keypairs": len(self.keypairs)}

    # ---- indexes
    def _index(self, s: Server) -> None:
        self._by_project.setdefault(s.project_id, {})[s.id] = s
        self._by_zone.setdefault(s.availability_zone, {})[s.id] = s
        u = self._usage.setdefault(s.project_id, [0, 0, 0])
        u[0] += 1
        u[1] += s.vcpus
        u[2] += s.ram

    def _unindex(self, s: Server) -> None:
        self._by_project.get(s.project_id, {}).pop(s.id, None)
        self._by_zone.get(s.availability_zone, {}).pop(s.id, None)
        u = self._usage.get(s.project_id)
        if u is not None:
            u[0] -= 1
            u[1] -= s.vcpus
            u[2] -= s.ram

    # ---- queries
    def servers_of(self, project_id: str) -> list[Server]:
        """The project's servers, newest first (Nova's default sort: created_at desc)."""
        return list(reversed(self._by_project.get(project_id, {}).values()))

    def all_servers(self) -> list[Server]:
        """Every project's servers, newest first."""
        return sorted(self.servers.values(), key=lambda s: (s.created_at, s.id), reverse=True)

    def servers_in(self, zone: str) -> list[Server]:
        return list(self._by_zone.get(zone, {}).values())

    def iter_servers(self) -> Iterator[Server]:
        return iter(list(self.servers.values()))

    def get_server(self, project_id: str, server_id: str) -> Server:
        s = self.servers.get(server_id)
        if s is None or s.project_id != project_id:
            raise ApiError(404, f"Instance {server_id} could not be found.")
        return s

    def usage(self, project_id: str) -> dict[str, int]:
        u = self._usage.get(project_id, [0, 0, 0])
        return {"instances": u[0], "cores": u[1], "ram": u[2],
                "key_pairs": sum(n for (_, p), n in self._kp_count.items() if p == project_id)}

    def quota(self, name: str, project_id: str | None = None) -> int:
        """A project's limit: its own override, else the default class's, else the profile's."""
        if project_id is not None:
            own = self.quota_overrides.get(project_id, {})
            if name in own:
                return own[name]
        if name in self.quota_class:
            return self.quota_class[name]
        return self.region.cloud.profile.quotas.get(name, QUOTA_DEFAULTS.get(name, -1))

    def placement_of(self, s: Server) -> Any:
        return self.region.placement(s.availability_zone, s.project_id)

    def server_for(self, project_id: str, server_id: str, *, admin: bool) -> Server:
        """The server a caller names: its project's, or any project's for an admin."""
        return self.find_server(server_id) if admin else self.get_server(project_id, server_id)

    def find_server(self, server_id: str) -> Server:
        """Any project's server (admin scope)."""
        s = self.servers.get(server_id)
        if s is None:
            raise ApiError(404, f"Instance {server_id} could not be found.")
        return s

    # ---- placement
    def load(self, host: str) -> int:
        return sum(1 for s in self.servers.values() if s.host == host)

    def group_of(self, server_id: str) -> ServerGroup | None:
        return next((g for g in self.server_groups.values() if server_id in g.members), None)

    def place(self, zone: str, project_id: str, *, group: ServerGroup | None = None, group_of: str | None = None,
              exclude: list[str] | None = None, host: str | None = None,
              host_hints: tuple[list[str], list[str]] = ([], [])) -> str:
        """The host the scheduler picks in ``zone`` under the server group's policy and the
        ``same_host``/``different_host`` hints (server ids: on a host of one of them / of none)."""
        if group is None and group_of is not None:
            group = self.group_of(group_of)
        same: list[str] = []
        avoid: list[str] = []
        if group is not None:
            where = {sid: self.servers[sid].host for sid in group.members if sid in self.servers}
            same, avoid = placement_hints(group, where, moving=group_of)
        with_ids, without_ids = host_hints
        if with_ids:
            near = {self.servers[i].host for i in with_ids if i in self.servers and self.servers[i].host}
            same = [h for h in same if h in near] if same else sorted(near)
            if not same:
                raise ApiError(400, NO_VALID_HOST)
        avoid = [*avoid, *(self.servers[i].host for i in without_ids if i in self.servers)]
        return self.hosts.pick(zone, self.load, same_as=same, not_on=avoid, exclude=exclude or (), host=host)

    def move_zone(self, s: Server, zone: str) -> None:
        self._by_zone.get(s.availability_zone, {}).pop(s.id, None)
        s.availability_zone = zone
        self._by_zone.setdefault(zone, {})[s.id] = s

    def change_flavor(self, s: Server, flavor_id: str, vcpus: int, ram: int, disk: int) -> None:
        """``s`` now runs with these flavor numbers (resize, revert): usage follows."""
        self._unindex(s)
        s.flavor_id, s.vcpus, s.ram, s.disk = flavor_id, vcpus, ram, disk
        self._index(s)

    def check_quota_delta(self, project_id: str, cores: int, ram: int) -> None:
        used = self._usage.get(project_id, [0, 0, 0])
        for name, delta, in_use in (("cores", cores, used[1]), ("ram", ram, used[2])):
            limit = self.quota(name, project_id)
            if delta > 0 and limit >= 0 and in_use + delta > limit:
                raise ApiError(403, f"Quota exceeded for {name}: Requested {delta}, but already used "
                                    f"{in_use} of {limit} {name}")

    def keypair_index(self) -> dict[tuple[str, str, str], "Keypair"]:
        return self._kp_index

    # ---- records
    def new_migration(self, s: Server, user_id: str, kind: str, dest: str, new_flavor_id: str,
                      status: str) -> Migration:
        seq = 1 + max((m.seq for m in self.migrations.values()), default=0)
        m = Migration(id=self.region.cloud.new_id(), project_id=s.project_id, seq=seq, server_id=s.id,
                      user_id=user_id, migration_type=kind, status=status, source_compute=s.host,
                      dest_compute=dest, source_region=self.region.name, dest_region=self.region.name,
                      old_flavor_id=s.flavor_id, old_flavor=(s.vcpus, s.ram, s.disk),
                      new_flavor_id=new_flavor_id,
                      source_zone=s.availability_zone, dest_zone=s.availability_zone)
        self.migrations[m.id] = m
        return m

    def record_action(self, s: Server, action: str, request_id: str, user_id: str, *, done: bool = False) -> None:
        """An ``os-instance-actions`` entry; it finishes when the server settles (or now, if ``done``)."""
        now = time.time()
        rec = InstanceAction(id=request_id, project_id=s.project_id, server_id=s.id, action=action,
                             user_id=user_id, created_at=now, updated_at=now,
                             events=[{"event": f"compute_{action}", "start_time": now, "finish_time": None,
                                      "result": None, "host": s.host}])
        self.instance_actions[request_id] = rec
        if done:
            rec.finish()

    def volume_extended(self, server_id: str, user_id: str = "") -> bool:
        """Cinder's ``volume-extended`` external event: the compute host resizes the attached disk, an
        ``extend_volume`` instance action (finished, as Nova's handling of the event is). False when the
        server is gone or has no host (Nova answers that event 404 or 422)."""
        s = self.servers.get(server_id)
        if s is None or not s.host:
            return False
        self.record_action(s, "extend_volume", "req-" + self.region.cloud.new_id(), user_id or s.user_id, done=True)
        return True

    def actions_of(self, server_id: str) -> list[InstanceAction]:
        return sorted((a for a in self.instance_actions.values() if a.server_id == server_id),
                      key=lambda a: (a.created_at, a.id), reverse=True)

    def _finish_actions(self, s: Server, result: str) -> None:
        for a in self.instance_actions.values():
            if a.server_id == s.id and any(ev.get("finish_time") is None for ev in a.events):
                a.finish(result)

    # ---- server groups
    def get_server_group(self, project_id: str | None, group_id: str) -> ServerGroup:
        g = self.server_groups.get(group_id)
        if g is None or (project_id is not None and g.project_id != project_id):
            raise ApiError(404, f"Instance group {group_id} could not be found.")
        return g

    def create_server_group(self, project_id: str, user_id: str, name: str, policy: str,
                            rules: dict[str, Any]) -> ServerGroup:
        limit = self.quota("server_groups", project_id)
        if limit >= 0 and sum(1 for g in self.server_groups.values() if g.project_id == project_id) >= limit:
            raise ApiError(403, "Quota exceeded, too many server groups.")
        g = ServerGroup(id=self.region.cloud.new_id(), project_id=project_id, user_id=user_id, name=name,
                        policy=policy, rules=rules)
        self.server_groups[g.id] = g
        return g

    def delete_server_group(self, g: ServerGroup) -> None:
        del self.server_groups[g.id]
        g.removed = True

    # ---- flavors
    def find_flavor(self, ref: str) -> Flavor | None:
        return self.flavors.get(ref_id(ref))

    def get_flavor(self, flavor_id: str) -> Flavor:
        f = self.flavors.get(flavor_id)
        if f is None:
            raise ApiError(404, f"Flavor {flavor_id} could not be found.")
        return f

    def create_flavor(self, flavor_id: str | None, *, name: str, ram: int, vcpus: int, disk: int, swap: int = 0,
                      ephemeral: int = 0, rxtx_factor: float = 1.0, is_public: bool = True,
                      description: str | None = None) -> Flavor:
        if any(f.name == name for f in self.flavors.values()):
            raise ApiError(409, f"Flavor with name {name} already exists.")
        fid = flavor_id or self.region.cloud.new_id()
        if fid in self.flavors:
            raise ApiError(409, f"Flavor with ID {fid} already exists.")
        f = Flavor(id=fid, name=name, vcpus=vcpus, ram=ram, disk=disk, ephemeral=ephemeral, swap=swap,
                   is_public=is_public, rxtx_factor=rxtx_factor, description=description, builtin=False)
        self.flavors[fid] = f
        return f

    def delete_flavor(self, flavor_id: str) -> None:
        """Servers keep running with a deleted flavor (they carry its numbers), as in Nova."""
        self.get_flavor(flavor_id)
        del self.flavors[flavor_id]

    def flavor_visible(self, f: Flavor, project_id: str, admin: bool) -> bool:
        return f.is_public or admin or project_id in f.access

    # ---- zones
    def resolve_zone(self, requested: str | None) -> str:
        zones = self.region.zones
        if requested:
            zone = requested.split(":", 1)[0]
            if zone not in self.hosts.zones():
                raise ApiError(400, "The requested availability zone is not available")
            return zone
        self._rr += 1
        return zones[(self._rr - 1) % len(zones)]

    # ---- servers: create
    def _plan_networks(self, project_id: str, networks: Any, count: int) -> list[NetRequest]:
        neutron = self.region.neutron
        if networks == "none":
            return []
        if networks is None or networks == "auto":
            candidates = [n for n in neutron.visible_networks(project_id) if not _external(n)]
            if len(candidates) > 1:
                raise ApiError(409, "Multiple possible networks found, use a Network ID to be more specific.")
            if not candidates:
                if networks == "auto":
                    raise ApiError(400, f"Unable to automatically allocate a network for project {project_id}")
                return []
            return [NetRequest(network_id=candidates[0].id)]
        plan: list[NetRequest] = []
        seen_ports: set[str] = set()
        for req in networks:
            if req.port_id:
                if count > 1:
                    raise ApiError(400, "Unable to launch multiple instances with a single configured port ID. "
                                        "Please launch your instance one by one with different ports.")
                if req.port_id in seen_ports:
                    raise ApiError(400, f"Port {req.port_id} is still in use.")
                seen_ports.add(req.port_id)
                try:
                    port = neutron.get_port(project_id, req.port_id)
                except ApiError as err:
                    raise _nova_error(err, not_found=f"Port id {req.port_id} could not be found.") from None
                if port.device_id:
                    raise ApiError(409, f"Port {req.port_id} is still in use.")
                plan.append(NetRequest(network_id=port.network_id, port_id=port.id))
                continue
            try:
                net = neutron.get_network(project_id, req.network_id)
            except ApiError as err:
                raise _nova_error(err, not_found=f"Network {req.network_id} could not be found.") from None
            if req.fixed_ip and count > 1:
                raise ApiError(400, "max_count cannot be greater than 1 if an fixed_ip is specified.")
            plan.append(NetRequest(network_id=net.id, fixed_ip=req.fixed_ip))
        return plan

    def _check_quota(self, project_id: str, flavor: Flavor, min_count: int, max_count: int) -> int:
        used = self._usage.get(project_id, [0, 0, 0])
        allowed = max_count
        per = (("instances", 1, used[0]), ("cores", flavor.vcpus, used[1]), ("ram", flavor.ram, used[2]))
        for name, each, in_use in per:
            limit = self.quota(name, project_id)
            if limit < 0 or each == 0:
                continue
            fits = max(0, (limit - in_use) // each)
            if fits < min_count:
                requested = each * min_count
                unit = "instances" if name == "instances" else name
                raise ApiError(403, f"Quota exceeded for {name}: Requested {requested}, but already used "
                                    f"{in_use} of {limit} {unit}")
            allowed = min(allowed, fits)
        return allowed

    def create_servers(self, project_id: str, user_id: str, *, name: str, image_ref: str | None,
                       flavor_ref: str, networks: Any = None, security_groups: list[str] | None = None,
                       key_name: str | None = None, zone: str | None = None, user_data: str | None = None,
                       metadata: dict[str, str] | None = None, min_count: int = 1, max_count: int = 1,
                       description: str | None = None, tags: list[str] | None = None,
                       access_ipv4: str = "", access_ipv6: str = "", config_drive: bool = False,
                       disk_config: str = "MANUAL", devices: list[BlockDevice] | None = None,
                       zone_check: Callable[[str], None] | None = None, group_id: str | None = None,
                       host: str | None = None, host_hints: tuple[list[str], list[str]] = ([], [])) -> list[Server]:
        """Validate a create request against the region's state and start building the server(s).

        ``networks``: None (omitted), "auto", "none" or a list of ``NetRequest``. ``devices``: the
        block device mapping; a volume-backed root (boot from volume) needs no ``image_ref``. Every check
        runs before anything is created; a later Neutron or Cinder failure rolls back what this call made.
        """
        devices = list(devices or [])
        boot_volume = block_devices.boots_from_volume(devices)
        flavor = self.find_flavor(flavor_ref)
        if flavor is None:
            raise ApiError(400, f"Flavor {flavor_ref} could not be found.")
        if flavor.disabled:
            raise ApiError(400, f"Flavor {flavor_ref} is disabled.")
        image_id = ""
        if image_ref:
            image = self.region.glance.find(project_id, ref_id(image_ref))
            if image is None:
                raise ApiError(400, f"Image {image_ref} could not be found.")
            if image.status != "active":
                raise ApiError(400, f"Image {image.id} is not active.")
            if flavor.disk and image.min_disk > flavor.disk and not boot_volume:
                raise ApiError(400, "Flavor's disk is too small for requested image. Flavor disk is "
                                    f"{flavor.disk * 1024 ** 3} bytes, minimum requested disk is "
                                    f"{image.min_disk * 1024 ** 3} bytes.")
            if image.min_ram and image.min_ram > flavor.ram:
                raise ApiError(400, "Flavor's memory is too small for requested image.")
            image_id = image.id
        elif not boot_volume:
            raise ApiError(400, "Missing imageRef attribute")
        if boot_volume:
            image_id = ""     # a volume-backed server shows no image; its root volume carries it
        if key_name is not None and (user_id, project_id, key_name) not in self._kp_index:
            raise ApiError(400, "Invalid key_name provided.")
        if user_data is not None:
            if len(user_data) > USER_DATA_MAX:
                raise ApiError(400, "User data too large. User data must be no larger than 65535 bytes "
                                    "once base64 encoded.")
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "User data needs to be valid base 64.") from None
        neutron = self.region.neutron
        sg_ids: list[str] | None = None
        if security_groups:
            try:
                sg_ids = list(dict.fromkeys(neutron.resolve_security_groups(project_id, security_groups)))
            except ApiError as err:
                raise _nova_error(err) from None
        if min_count < 1 or max_count < 1:
            raise ApiError(400, "min_count and max_count must be positive integers.")
        if min_count > max_count:
            raise ApiError(400, "min_count must be <= max_count")
        plan = self._plan_networks(project_id, networks, max_count)
        group = self.get_server_group(project_id, group_id) if group_id else None
        if host is not None and host not in self.hosts.hosts:
            raise ApiError(400, f"Compute host {host} could not be found.")
        chosen = self.resolve_zone(zone if zone or host is None else self.hosts.zone_of(host))
        if zone_check is not None:
            zone_check(chosen)
        count = self._check_quota(project_id, flavor, min_count, max_count)
        if devices:
            block_devices.check(self.region, project_id, devices, count)
        cloud = self.region.cloud
        reservation = "r-" + cloud.new_id().replace("-", "")[:8]
        made: list[Server] = []
        life = self.life
        try:
            for i in range(count):
                sname = name if count == 1 else f"{name}-{i + 1}"
                s = Server(id=cloud.new_id(), project_id=project_id, user_id=user_id, name=sname,
                           availability_zone=chosen,
                           host=self._try_place(chosen, project_id, group, host, host_hints),
                           image_id=image_id, flavor_id=flavor.id, vcpus=flavor.vcpus, ram=flavor.ram,
                           disk=flavor.disk, key_name=key_name, security_groups=list(sg_ids or []),
                           metadata=dict(metadata or {}), description=description, tags=list(tags or []),
                           user_data=user_data, access_ipv4=access_ipv4, access_ipv6=access_ipv6,
                           config_drive="True" if config_drive else "", disk_config=disk_config,
                           reservation_id=reservation, launch_index=i)
                made.append(s)
                owner = f"compute:{chosen}"
                for req in plan:
                    try:
                        if req.port_id:
                            port = neutron.get_port(project_id, req.port_id)
                            neutron.bind_port(port, s.id, owner)
                        else:
                            neutron.create_port(project_id, req.network_id, ip_address=req.fixed_ip,
                                                security_group_ids=sg_ids, device_id=s.id, device_owner=owner)
                    except ApiError as err:
                        raise _nova_error(err) from None
                if devices:
                    block_devices.attach_all(self.region, s, devices)
                self.servers[s.id] = s
                self._index(s)
                if group is not None:
                    group.members.append(s.id)
        except BaseException:
            for s in made:
                neutron.release_device(s.id)
                self.region.cinder.rollback_server(s.id)
                if self.servers.pop(s.id, None) is not None:
                    self._unindex(s)
                if group is not None and s.id in group.members:
                    group.members.remove(s.id)
                s.removed = True
            raise
        sched = self.region.twin.scheduler
        placement = self.region.placement(chosen, project_id)
        for s in made:
            if s.host:
                sched.enter(s, life, "BUILD", placement, self._on_server_enter)
            else:      # the scheduler found no host: Nova accepts the request, the server goes to ERROR
                sched.enter(s, life, "ERROR", placement, self._on_server_enter)
                s.fault = {"code": 500, "created": time.time(), "message": NO_VALID_HOST}
        return made

    def _try_place(self, zone: str, project_id: str, group: ServerGroup | None, host: str | None,
                   host_hints: tuple[list[str], list[str]] = ([], [])) -> str:
        try:
            return self.place(zone, project_id, group=group, host=host, host_hints=host_hints)
        except ApiError:
            return ""

    # ---- servers: changes
    def update_server(self, s: Server, *, name: str | None = None, description: Any = ...,
                      access_ipv4: str | None = None, access_ipv6: str | None = None) -> Server:
        if name is not None:
            s.name = name
        if description is not ...:
            s.description = description
        if access_ipv4 is not None:
            s.access_ipv4 = access_ipv4
        if access_ipv6 is not None:
            s.access_ipv6 = access_ipv6
        s.touch()
        return s

    def _conflict(self, s: Server, action: str) -> ApiError:
        attrs = self.life.attrs(s.state)
        verb = VERBS.get(action, action)
        task = attrs.get("task_state")
        if task:
            return ApiError(409, f"Cannot '{verb}' instance {s.id} while it is in task_state {task}")
        return ApiError(409, f"Cannot '{verb}' instance {s.id} while it is in vm_state {attrs.get('vm_state', s.state.lower())}")

    def check_action(self, s: Server, action: str) -> None:
        """Refuse ``action`` as Nova would in the server's state (409) or when it is locked."""
        act = self.life.actions.get(action)
        if act is None:
            raise ApiError(400, f"There is no such action: {action}")
        if s.locked:
            raise ApiError(409, f"Instance {s.id} is locked")
        if s.state not in act.allowed:
            raise self._conflict(s, action)

    def action(self, s: Server, action: str) -> None:
        """Start a lifecycle action (``os-stop``, ``reboot_hard``, …) if the server's state allows it."""
        self.check_action(s, action)
        life = self.life
        act = life.actions[action]
        if s.state in RESUMABLE:
            s.resume_state = RESUMABLE[s.state]
        self.region.twin.scheduler.enter(s, life, act.enter, self.placement_of(s), self._on_server_enter)
        s.last_state = act.enter
        s.touch()
        if self.server_listeners:      # an action's first state is entered here, not by the scheduler
            self._notify(s, act.enter)

    def delete_server(self, s: Server) -> None:
        """Enter DELETING; the server stays visible (task_state deleting) until the DELETED stage."""
        if s.state == "DELETING":
            return
        life = self.life
        act = life.actions.get("delete")
        if s.locked:
            raise ApiError(409, f"Instance {s.id} is locked")
        if act is not None and s.state not in act.allowed:
            raise self._conflict(s, "delete")
        target = act.enter if act is not None else "DELETING"
        self.region.twin.scheduler.enter(s, life, target, self.placement_of(s), self._on_server_enter)
        s.touch()
        if target not in life.stages:   # no timed stage out of it: gone now
            self._remove(s)

    def _remove(self, s: Server) -> None:
        if self.servers.pop(s.id, None) is None:
            return
        self._unindex(s)
        s.removed = True
        group = self.group_of(s.id)
        if group is not None:
            group.members.remove(s.id)
        self.region.twin.scheduler.cancel(s)
        self.region.neutron.release_device(s.id)
        self.region.cinder.server_gone(s.id)
        self._notify(s, "DELETED")

    def _notify(self, s: Server, state: str) -> None:
        for listener in list(self.server_listeners):
            listener(s, state)

    def crash(self, s: Server, to: str = "ERROR", message: str = "") -> None:
        """The fault engine's VM crash: ``s`` drops to ``to`` (ERROR, SHUTOFF or CRASHED) right now."""
        if s.id not in self.servers:
            return
        life = self.life
        sched = self.region.twin.scheduler
        sched.cancel(s)
        sched.enter(s, life, to, self.placement_of(s), self._on_server_enter)
        if to == "ERROR":
            s.fault = {"code": 500, "created": time.time(),
                       "message": message or "Instance crashed (injected by Cloud-Twin)."}
        s.touch()
        if self.server_listeners:
            self._notify(s, to)

    def force_state(self, s: Server, state: str) -> None:
        """Put ``s`` in ``state`` now, cancelling what was going on (``os-resetState``)."""
        sched = self.region.twin.scheduler
        sched.cancel(s)
        sched.enter(s, self.life, state, self.placement_of(s), self._on_server_enter)
        s.touch()
        self._finish_actions(s, "Success")
        if self.server_listeners:
            self._notify(s, state)

    def _on_server_enter(self, s: Server, state: str, message: str) -> None:
        if state == "DELETED":
            self._remove(s)
            return
        before = s.last_state      # the scheduler already moved s: this is where it came from
        operations.on_enter(self, s, state, before)
        if state == "RETURN":
            state = s.resume_state or "ACTIVE"
            self.region.twin.scheduler.enter(s, self.life, state, self.placement_of(s), self._on_server_enter)
        if state in SETTLED:
            operations.on_settle(self, s, before)
        s.last_state = state
        if state in SETTLED:
            self._finish_actions(s, "Error" if state == "ERROR" else "Success")
        s.touch()
        if state == "ACTIVE":
            if s.launched_at is None:
                s.launched_at = time.time()
                neutron = self.region.neutron
                for port in neutron.ports_of_device(s.id):   # the VM is up: its ports are plugged
                    if port.state != "ACTIVE":
                        neutron.plug_port(port, s.id, f"compute:{s.availability_zone}")
                self.region.cinder.server_active(s.id)        # ... and its boot volumes in use
        elif state == "ERROR":
            s.fault = {"code": 500, "created": time.time(),
                       "message": message or "Unknown error while the instance was in transition."}
            region = self.region
            region.twin.events.record("server.error", cloud=region.cloud.name, region=region.name,
                                      zone=s.availability_zone or None,
                                      detail={"server": s.id, "message": s.fault["message"]})
        if self.server_listeners:
            self._notify(s, state)

    # ---- keypairs
    def get_keypair(self, user_id: str, project_id: str, name: str) -> Keypair:
        kp = self._kp_index.get((user_id, project_id, name))
        if kp is None:
            raise ApiError(404, f"Keypair {name} not found for user {user_id}")
        return kp

    def keypairs_of(self, user_id: str, project_id: str) -> list[Keypair]:
        return sorted((kp for kp in self.keypairs.values() if kp.user_id == user_id and kp.project_id == project_id),
                      key=lambda k: k.name)

    def create_keypair_check(self, user_id: str, project_id: str, name: str) -> None:
        """The checks of ``create_keypair`` that do not need the key (run before generating one)."""
        if (user_id, project_id, name) in self._kp_index:
            raise ApiError(409, f"Key pair '{name}' already exists.")
        limit = self.quota("key_pairs", project_id)
        if limit >= 0 and self._kp_count.get((user_id, project_id), 0) >= limit:
            raise ApiError(403, "Quota exceeded, too many key pairs.")

    def create_keypair(self, user_id: str, project_id: str, name: str, public_key: str,
                       key_type: str = "ssh") -> Keypair:
        self.create_keypair_check(user_id, project_id, name)
        fingerprint = fingerprint_of(public_key, key_type)
        self._kp_seq += 1
        kp = Keypair(id=self.region.cloud.new_id(), project_id=project_id, name=name, user_id=user_id,
                     public_key=public_key, fingerprint=fingerprint, type=key_type, seq=self._kp_seq)
        self.keypairs[kp.id] = kp
        self._kp_index[(user_id, project_id, name)] = kp
        self._kp_count[(user_id, project_id)] = self._kp_count.get((user_id, project_id), 0) + 1
        return kp

    def delete_keypair(self, user_id: str, project_id: str, name: str) -> None:
        kp = self.get_keypair(user_id, project_id, name)
        del self.keypairs[kp.id]
        del self._kp_index[(user_id, project_id, name)]
        self._kp_count[(user_id, project_id)] -= 1
        kp.removed = True


def _external(net: Any) -> bool:
    for attr in ("router_external", "external", "is_router_external"):
        v = getattr(net, attr, None)
        if v is not None:
            return bool(v)
    return False


def host_id(project_id: str, host: str) -> str:
    """Nova's ``hostId``: sha224(project + host), so tenants cannot correlate hosts."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


# ---- keys -------------------------------------------------------------------------------------------

def fingerprint_of(public_key: str, key_type: str = "ssh") -> str:
    """Nova's fingerprint: MD5 colon hex of the SSH key blob (SHA-1 of the DER for x509)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if key_type == "x509":
        try:
            cert = x509.load_pem_x509_certificate(public_key.encode())
        except (ValueError, TypeError):
            raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint") from None
        digest = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    parts = public_key.strip().split()
    try:
        if len(parts) < 2:
            raise ValueError("not an OpenSSH public key")
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint") from None
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate_x509(user_id: str, project_id: str) -> tuple[str, str]:
    """``(private_key, certificate)``: what Nova generates for an x509 keypair without a public key
    (RSA 2048, a self-signed certificate for ``CN=<user>``, both PEM). CPU-bound: run it off the loop."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "nova"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, project_id or "nova")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def generate_keypair(comment: str = "Generated-by-Nova") -> tuple[str, str]:
    """``(private_key, public_key)``: RSA 2048, private key in PEM (as Nova returns it), public OpenSSH.

    Takes ~0.1 s of CPU: call it off the event loop (``asyncio.to_thread``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"
