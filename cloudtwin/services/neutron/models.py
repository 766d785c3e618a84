"""Neutron v2.0 state of one region: networks, subnets, ports, security groups and rules, floating IPs
and routers, with the rules real Neutron enforces (CIDR checks, overlap, IP allocation, duplicate
rules, in-use conflicts, quotas).

No HTTP here: methods take plain Python values and raise ``ApiError`` with Neutron's error types and
messages. Every hot path is a dict lookup: ports are indexed by device, network, subnet and IP, floating
IPs by port, security groups by port membership and rules by their de-duplication key; each subnet
allocates IPs with a cursor plus a freed set (O(1) amortised per port, never a scan of the ports).

Other services use the "model interface" at the top of ``NeutronState`` (get_network, create_port,
bind_port, release_device, ports_of_device, allocate_floatingip, resolve_security_groups, ...).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator

from cloudtwin.clouds import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource
from cloudtwin.services.neutron.ipam import IpPool, default_pools, invalid, invalid_attr, parse_cidr, parse_ip

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

# ------------------------------------------------------------------------------------------------
# stored objects (JSON-friendly fields only: the snapshot module rebuilds them with cls(**fields))
# ------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Network(Resource):
    description: str = ""
    admin_state_up: bool = True
    shared: bool = False
    external: bool = False                 # router:external
    mtu: int = 1500
    port_security_enabled: bool = True
    subnets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    availability_zone_hints: list[str] = field(default_factory=list)
    builtin: bool = False                  # the region's `public` network


@dataclass(kw_only=True)
class Subnet(Resource):
    network_id: str
    ip_version: int = 4
    cidr: str = ""
    gateway_ip: str | None = None
    allocation_pools: list[dict[str, str]] = field(default_factory=list)
    enable_dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[dict[str, str]] = field(default_factory=list)
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Port(Resource):
    network_id: str
    mac_address: str = ""
    fixed_ips: list[dict[str, str]] = field(default_factory=list)
    device_id: str = ""
    device_owner: str = ""
    admin_state_up: bool = True
    security_groups: list[str] = field(default_factory=list)
    port_security_enabled: bool = True
    allowed_address_pairs: list[dict[str, str]] = field(default_factory=list)
    vnic_type: str = "normal"
    host_id: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    created_for_device: bool = False       # release_device deletes it (Nova made it), else unbinds it

    @property
    def status(self) -> str:
        return "ACTIVE" if self.state == "ACTIVE" else "DOWN"


@dataclass(kw_only=True)
class SecurityGroup(Resource):
    description: str = ""
    stateful: bool = True
    shared: bool = False
    rules: list[str] = field(default_factory=list)   # rule ids, in creation order
    tags: list[str] = field(default_factory=list)
    is_default: bool = False


@dataclass(kw_only=True)
class SecurityGroupRule(Resource):
    security_group_id: str
    direction: str = "ingress"
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    normalized_cidr: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None
    description: str = ""
    belongs_to_default_sg: bool = False


@dataclass(kw_only=True)
class FloatingIP(Resource):
    floating_network_id: str
    floating_ip_address: str = ""
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    status: str = "DOWN"
    description: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Router(Resource):
    description: str = ""
    admin_state_up: bool = True
    status: str = "ACTIVE"
    external_gateway_info: dict[str, Any] | None = None
    routes: list[dict[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    availability_zone_hints: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# constants
# ------------------------------------------------------------------------------------------------

# neutron_lib.constants.IP_PROTOCOL_MAP (plus the legacy icmpv6 alias)
IP_PROTOCOL_MAP = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
                   "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
                   "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
                   "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {6, 17, 136, 132, 33}       # tcp, udp, udplite, sctp, dccp
ICMP_PROTOCOLS = {1, 58}
IPV6_ONLY_PROTOCOLS = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route"}
ANY_PROTOCOL = ("any",)

QUOTA_NAMES = {"networks": "network", "subnets": "subnet", "ports": "port", "security_groups": "security_group",
               "security_group_rules": "security_group_rule", "floatingips": "floatingip", "routers": "router"}
MAX_FIXED_IPS = 64

SgListener = Callable[[str, object], None]


def _not_found(kind: str, oid: str) -> ApiError:
    messages = {
        "NetworkNotFound": f"Network {oid} could not be found.",
        "SubnetNotFound": f"Subnet {oid} could not be found.",
        "PortNotFound": f"Port {oid} could not be found.",
        "SecurityGroupNotFound": f"Security group {oid} does not exist",
        "SecurityGroupRuleNotFound": f"Security group rule {oid} does not exist",
        "FloatingIPNotFound": f"Floating IP {oid} could not be found",
        "RouterNotFound": f"Router {oid} could not be found",
    }
    return ApiError(404, messages[kind], code=kind)


# ------------------------------------------------------------------------------------------------
# the state
# ------------------------------------------------------------------------------------------------


class NeutronState:
    """One region's Neutron objects (``region.neutron``)."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {
        "networks": (Network, ""),
        "subnets": (Subnet, ""),
        "ports": (Port, "port"),
        "security_groups": (SecurityGroup, ""),
        "security_group_rules": (SecurityGroupRule, ""),
        "floatingips": (FloatingIP, ""),
        "routers": (Router, ""),
    }

    def __init__(self, region: "RegionState") -> None:
        self.region = region
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.security_group_rules: dict[str, SecurityGroupRule] = {}
        self.floatingips: dict[str, FloatingIP] = {}
        self.routers: dict[str, Router] = {}
        # called as listener(event, obj) on every SG / rule / port SG-membership change; events:
        # security_group.create|update|delete, security_group_rule.create|delete,
        # port.create|update|delete (only for ports with security groups or whose groups changed),
        # floatingip.associate|disassociate (a port gains or loses a floating IP; sent before the
        # disassociation clears fip.port_id)
        self.sg_listeners: list[SgListener] = []
        cloud = region.cloud
        self.service_project_id = stable_id("project", cloud.name, "service").replace("-", "")
        self._rng = random.Random(f"{cloud.twin.seed}/{cloud.name}/{region.name}/neutron")
        self.rebuild()

    # ---- bookkeeping required of every state class ------------------------------------------

    def rebuild(self) -> None:
        """Recompute every secondary index from the tables (after construction or a snapshot restore)."""
        self._owned: dict[str, dict[str, dict[str, None]]] = {t: {} for t in self.TABLES}
        self._shared_nets: dict[str, None] = {}
        self._net_ports: dict[str, dict[str, None]] = {}
        self._subnet_ports: dict[str, int] = {}
        self._device_ports: dict[str, dict[str, None]] = {}
        self._ip_port: dict[tuple[str, str], str] = {}
        self._port_fips: dict[str, dict[str, None]] = {}
        self._sg_ports: dict[str, dict[str, None]] = {}
        self._sg_names: dict[tuple[str, str], dict[str, None]] = {}
        self._rule_keys: dict[str, dict[tuple[Any, ...], str]] = {}
        self._default_sg: dict[str, str] = {}
        self._pools: dict[str, IpPool] = {}
        self._macs: set[str] = set()
        self._fip_ips: dict[str, str] = {}     # floating ip address -> fip id
        self._known_projects: set[str] = set()
        self.public_network_id: str | None = None
        self.public_subnet_id: str | None = None
        for table in self.TABLES:
            for obj in getattr(self, table).values():
                self._own(table, obj)
        for net in self.networks.values():
            if net.shared or net.external:
                self._shared_nets[net.id] = None
            if net.builtin:
                self.public_network_id = net.id
                self.public_subnet_id = net.subnets[0] if net.subnets else None
        for sn in self.subnets.values():
            self._pools[sn.id] = self._make_pool(sn)
        for port in self.ports.values():
            self._index_port(port)
        for fip in self.floatingips.values():
            self._fip_claim(fip)
        for sg in self.security_groups.values():
            self._sg_names.setdefault((sg.project_id, sg.name), {})[sg.id] = None
            self._rule_keys[sg.id] = {}
            if sg.is_default:
                self._default_sg[sg.project_id] = sg.id
        for rule in self.security_group_rules.values():
            self._rule_keys.setdefault(rule.security_group_id, {})[self._rule_key(rule)] = rule.id

    def on_enter_for(self, kind: str) -> Callable[[Any, str, str], None]:
        if kind == "port":
            return self._port_entered
        return lambda obj, state, message: None

    def all_objects(self) -> Iterator[Resource]:
        for table in self.TABLES:
            yield from getattr(self, table).values()

    def counts(self) -> dict[str, int]:
        return {t: len(getattr(self, t)) for t in self.TABLES}

    # ---- helpers ---------------------------------------------------------------------------------

    @property
    def profile(self) -> Any:
        return self.region.cloud.profile

    def _new_id(self) -> str:
        return self.region.cloud.new_id()

    def _own(self, table: str, obj: Resource) -> None:
        self._owned[table].setdefault(obj.project_id, {})[obj.id] = None

    def _disown(self, table: str, obj: Resource) -> None:
        owned = self._owned[table].get(obj.project_id)
        if owned is not None:
            owned.pop(obj.id, None)

    def owned(self, table: str, project_id: str) -> list[Any]:
        """The project's objects of ``table`` in creation order (O(own objects))."""
        objs = getattr(self, table)
        return [objs[i] for i in self._owned[table].get(project_id, ())]

    def used(self, table: str, project_id: str) -> int:
        return len(self._owned[table].get(project_id, ()))

    def quota_limit(self, table: str) -> int:
        limit = self.profile.quotas.get(table, -1)
        return -1 if limit is None else int(limit)

    def quotas(self) -> dict[str, int]:
        return {QUOTA_NAMES[t]: self.quota_limit(t) for t in QUOTA_NAMES}

    def _check_quota(self, table: str, project_id: str, extra: int = 1) -> None:
        limit = self.quota_limit(table)
        if limit >= 0 and self.used(table, project_id) + extra > limit:
            raise ApiError(409, f"Quota exceeded for resources: ['{QUOTA_NAMES[table]}'].", code="OverQuota")

    def _emit(self, event: str, obj: object) -> None:
        if self.sg_listeners:
            for listener in list(self.sg_listeners):
                listener(event, obj)

    def ensure_project(self, project_id: str) -> None:
        """First touch of a project: the region's public network and (per profile) its `default` SG."""
        if project_id in self._known_projects:
            return
        self._known_projects.add(project_id)
        self.ensure_public_network()
        if self.profile.default_security_group and project_id not in self._default_sg:
            self._create_default_sg(project_id)

    # ==============================================================================================
    # model interface used by other services (Nova, Octavia)
    # ==============================================================================================

    def get_network(self, project_id: str, network_id: str) -> Network:
        self.ensure_project(project_id)
        net = self.networks.get(network_id)
        if net is None or not (net.project_id == project_id or net.shared or net.external):
            raise _not_found("NetworkNotFound", network_id)
        return net

    def get_subnet(self, project_id: str, subnet_id: str) -> Subnet:
        self.ensure_project(project_id)
        sn = self.subnets.get(subnet_id)
        if sn is None or not (sn.project_id == project_id or sn.network_id in self._shared_nets):
            raise _not_found("SubnetNotFound", subnet_id)
        return sn

    def get_port(self, project_id: str, port_id: str) -> Port:
        port = self.ports.get(port_id)
        if port is None or port.project_id != project_id:
            raise _not_found("PortNotFound", port_id)
        return port

    def get_security_group(self, project_id: str, sg_id: str) -> SecurityGroup:
        self.ensure_project(project_id)
        sg = self.security_groups.get(sg_id)
        if sg is None or not (sg.project_id == project_id or sg.shared):
            raise _not_found("SecurityGroupNotFound", sg_id)
        return sg

    def get_security_group_rule(self, project_id: str, rule_id: str) -> SecurityGroupRule:
        rule = self.security_group_rules.get(rule_id)
        if rule is None or rule.project_id != project_id:
            raise _not_found("SecurityGroupRuleNotFound", rule_id)
        return rule

    def get_floatingip(self, project_id: str, fip_id: str) -> FloatingIP:
        fip = self.floatingips.get(fip_id)
        if fip is None or fip.project_id != project_id:
            raise _not_found("FloatingIPNotFound", fip_id)
        return fip

    def get_router(self, project_id: str, router_id: str) -> Router:
        router = self.routers.get(router_id)
        if router is None or router.project_id != project_id:
            raise _not_found("RouterNotFound", router_id)
        return router

    def create_port(self, project_id: str, network_id: str, *, subnet_id: str | None = None,
                    ip_address: str | None = None, security_group_ids: list[str] | None = None,
                    name: str = "", device_id: str = "", device_owner: str = "") -> Port:
        """A port for another service (Nova: device_owner ``compute:<zone>``; Octavia: the VIP port)."""
        fixed: list[dict[str, Any]] | None = None
        if subnet_id is not None or ip_address is not None:
            spec: dict[str, Any] = {}
            if subnet_id is not None:
                spec["subnet_id"] = subnet_id
            if ip_address is not None:
                spec["ip_address"] = ip_address
            fixed = [spec]
        return self.add_port(project_id, network_id, fixed_ips=fixed, security_groups=security_group_ids,
                             name=name, device_id=device_id, device_owner=device_owner,
                             created_for_device=device_owner.startswith("compute:"))

    def bind_port(self, port: Port, device_id: str, device_owner: str = "compute:nova") -> None:
        """Attach ``port`` to a device: DOWN -> BINDING -> ACTIVE (stage ``port``)."""
        if port.device_id and port.device_id != device_id:
            self._device_ports.get(port.device_id, {}).pop(port.id, None)
        port.device_id = device_id
        port.device_owner = device_owner
        port.host_id = port.host_id or f"cloudtwin-{self.region.name.lower()}"
        if device_id:
            self._device_ports.setdefault(device_id, {})[port.id] = None
        port.touch()
        self._enter(port, "BINDING")

    def plug_port(self, port: Port, device_id: str, device_owner: str) -> None:
        """The device is up with ``port`` plugged: ACTIVE now, not after the BINDING stage.

        Nova reports a server ACTIVE only after Neutron's ``network-vif-plugged`` event, so a
        client that sees the server ACTIVE must never see one of its ports still DOWN.
        """
        if port.device_id != device_id:
            self.bind_port(port, device_id, device_owner)
        port.device_owner = port.device_owner or device_owner
        port.touch()
        self._enter(port, "ACTIVE")

    def unbind_port(self, port: Port) -> None:
        if port.device_id:
            self._device_ports.get(port.device_id, {}).pop(port.id, None)
        port.device_id = ""
        port.device_owner = ""
        port.host_id = ""
        port.created_for_device = False
        port.touch()
        self._enter(port, "DOWN")

    def release_device(self, device_id: str) -> None:
        """The device is gone: delete the ports made for it, unbind the ones it was given."""
        for port_id in list(self._device_ports.get(device_id, ())):
            port = self.ports.get(port_id)
            if port is None:
                continue
            if port.created_for_device and port.device_owner.startswith("compute:"):
                self._delete_port(port)
            else:
                self.unbind_port(port)
        self._device_ports.pop(device_id, None)

    def ports_of_device(self, device_id: str) -> list[Port]:
        return [self.ports[i] for i in self._device_ports.get(device_id, ()) if i in self.ports]

    def ports_of_network(self, network_id: str) -> list[Port]:
        return [self.ports[i] for i in self._net_ports.get(network_id, ()) if i in self.ports]

    def floatingips_of_port(self, port_id: str) -> list[FloatingIP]:
        return [self.floatingips[i] for i in self._port_fips.get(port_id, ()) if i in self.floatingips]

    def port_by_ip(self, network_id: str, ip: str) -> Port | None:
        pid = self._ip_port.get((network_id, ip))
        return self.ports.get(pid) if pid else None

    def resolve_security_groups(self, project_id: str, names_or_ids: list[str]) -> list[str]:
        """Security group names or ids (Nova's ``security_groups: [{"name": x}]``) -> ids."""
        self.ensure_project(project_id)
        out: list[str] = []
        for x in names_or_ids:
            sg = self.security_groups.get(x)
            if sg is not None and (sg.project_id == project_id or sg.shared):
                sid = sg.id
            else:
                found = list(self._sg_names.get((project_id, x), ()))
                if not found:
                    raise ApiError(400, f"Security group {x} not found for project {project_id}.")
                if len(found) > 1:
                    raise ApiError(409, f"Multiple security groups found matching '{x}'. Use an ID to be "
                                        "more specific.", code="NoUniqueMatch")
                sid = found[0]
            if sid not in out:
                out.append(sid)
        return out

    def allocate_floatingip(self, project_id: str, port_id: str | None = None, *,
                            network_id: str | None = None, floating_ip_address: str | None = None,
                            fixed_ip_address: str | None = None, description: str = "") -> FloatingIP:
        """A floating IP from the region's public network (optionally associated with ``port_id``)."""
        self.ensure_project(project_id)
        net_id = network_id or self.ensure_public_network()
        net = self.get_network(project_id, net_id)
        if not net.external:
            raise ApiError(400, f"Bad floatingip request: Network {net_id} is not a valid external network.",
                           code="BadRequest")
        self._check_quota("floatingips", project_id)
        port = None
        if port_id is not None:
            port = self.get_port(project_id, port_id)
            fixed_ip_address = self._fip_fixed_ip(port, fixed_ip_address, None)
        sn, ip = self._allocate_on_network(net, None, floating_ip_address)
        fip = FloatingIP(id=self._new_id(), project_id=project_id, floating_network_id=net.id,
                         floating_ip_address=ip, description=description)
        self.floatingips[fip.id] = fip
        self._own("floatingips", fip)
        self._fip_ips[ip] = fip.id
        if port is not None:
            self._associate(fip, port, fixed_ip_address)
        return fip

    def delete_floatingip(self, project_id: str, fip_id: str) -> None:
        fip = self.get_floatingip(project_id, fip_id)
        self._disassociate(fip)
        self._disown("floatingips", fip)
        del self.floatingips[fip.id]
        self._fip_ips.pop(fip.floating_ip_address, None)
        if self.public_subnet_id and fip.floating_network_id == self.public_network_id:
            pool = self._pools.get(self.public_subnet_id)
            if pool is not None:
                pool.release(int(ipaddress.ip_address(fip.floating_ip_address)))
        else:
            self._release_ip_on_network(fip.floating_network_id, fip.floating_ip_address)
        fip.removed = True

    # ==============================================================================================
    # networks
    # ==============================================================================================

    def ensure_public_network(self) -> str:
        """The region's external network `public` with one subnet on ``profile.public_cidr``."""
        if self.public_network_id is not None and self.public_network_id in self.networks:
            return self.public_network_id
        owner = self.service_project_id
        self._known_projects.add(owner)      # the service project gets no `default` group
        net = Network(id=self._new_id(), project_id=owner, name="public", shared=True, external=True,
                      builtin=True, description="The region's external network")
        self.networks[net.id] = net
        self._own("networks", net)
        self._shared_nets[net.id] = None
        self.public_network_id = net.id
        cidr = self.profile.public_cidr
        sn = self._add_subnet(owner, net, cidr=str(ipaddress.ip_network(cidr, strict=False)),
                              ip_version=ipaddress.ip_network(cidr, strict=False).version,
                              name="public-subnet", enable_dhcp=False, quota=False)
        self.public_subnet_id = sn.id
        return net.id

    def visible_networks(self, project_id: str) -> list[Network]:
        self.ensure_project(project_id)
        own = self._owned["networks"].get(project_id, {})
        out = [self.networks[i] for i in own]
        out.extend(self.networks[i] for i in self._shared_nets if i not in own and i in self.networks)
        return out

    def add_network(self, project_id: str, *, name: str = "", description: str = "", admin_state_up: bool = True,
                    shared: bool = False, external: bool = False, mtu: int = 1500,
                    port_security_enabled: bool = True, tags: list[str] | None = None,
                    availability_zone_hints: list[str] | None = None) -> Network:
        self.ensure_project(project_id)
        self._check_quota("networks", project_id)
        net = Network(id=self._new_id(), project_id=project_id, name=name, description=description,
                      admin_state_up=admin_state_up, shared=shared, external=external, mtu=mtu,
                      port_security_enabled=port_security_enabled, tags=list(tags or []),
                      availability_zone_hints=list(availability_zone_hints or []))
        self.networks[net.id] = net
        self._own("networks", net)
        if shared or external:
            self._shared_nets[net.id] = None
        return net

    def owned_network(self, project_id: str, network_id: str) -> Network:
        net = self.get_network(project_id, network_id)
        if net.project_id != project_id:
            raise ApiError(403, f"The request you have made requires authorization on network {network_id}.",
                           code="PolicyNotAuthorized")
        return net

    def update_network(self, project_id: str, network_id: str, changes: dict[str, Any]) -> Network:
        net = self.owned_network(project_id, network_id)
        for k, v in changes.items():
            setattr(net, k, v)
        if net.shared or net.external:
            self._shared_nets[net.id] = None
        else:
            self._shared_nets.pop(net.id, None)
        net.touch()
        return net

    def delete_network(self, project_id: str, network_id: str) -> None:
        net = self.owned_network(project_id, network_id)
        if self._net_ports.get(net.id):
            raise ApiError(409, f"Unable to complete operation on network {net.id}. There are one or more "
                                "ports still in use on the network.", code="NetworkInUse")
        for sid in list(net.subnets):
            sn = self.subnets.get(sid)
            if sn is not None:
                self._drop_subnet(sn)
        self._disown("networks", net)
        self._shared_nets.pop(net.id, None)
        del self.networks[net.id]
        net.removed = True

    # ==============================================================================================
    # subnets
    # ==============================================================================================

    def visible_subnets(self, project_id: str) -> list[Subnet]:
        self.ensure_project(project_id)
        own = self._owned["subnets"].get(project_id, {})
        out = [self.subnets[i] for i in own]
        for nid in self._shared_nets:
            net = self.networks.get(nid)
            if net is not None:
                out.extend(self.subnets[s] for s in net.subnets if s not in own and s in self.subnets)
        return out

    def add_subnet(self, project_id: str, network_id: str, *, cidr: Any, ip_version: Any,
                   gateway_ip: Any = "", allocation_pools: list[dict[str, Any]] | None = None,
                   name: str = "", description: str = "", enable_dhcp: bool = True,
                   dns_nameservers: list[str] | None = None, host_routes: list[dict[str, str]] | None = None,
                   ipv6_ra_mode: str | None = None, ipv6_address_mode: str | None = None,
                   tags: list[str] | None = None) -> Subnet:
        """``gateway_ip``: "" = default (first host), None = no gateway, else the address."""
        self.ensure_project(project_id)
        net = self.get_network(project_id, network_id)
        if net.project_id != project_id:
            raise ApiError(403, f"Tenant {project_id} not allowed to create subnet on this network",
                           code="PolicyNotAuthorized")
        return self._add_subnet(project_id, net, cidr=cidr, ip_version=ip_version, gateway_ip=gateway_ip,
                                allocation_pools=allocation_pools, name=name, description=description,
                                enable_dhcp=enable_dhcp, dns_nameservers=dns_nameservers,
                                host_routes=host_routes, ipv6_ra_mode=ipv6_ra_mode,
                                ipv6_address_mode=ipv6_address_mode, tags=tags)

    def _add_subnet(self, project_id: str, net: Network, *, cidr: Any, ip_version: Any, gateway_ip: Any = "",
                    allocation_pools: list[dict[str, Any]] | None = None, name: str = "", description: str = "",
                    enable_dhcp: bool = True, dns_nameservers: list[str] | None = None,
                    host_routes: list[dict[str, str]] | None = None, ipv6_ra_mode: str | None = None,
                    ipv6_address_mode: str | None = None, tags: list[str] | None = None,
                    quota: bool = True) -> Subnet:
        if ip_version not in (4, 6):
            raise invalid_attr("ip_version", f"{ip_version} is not in [4, 6]")
        network = parse_cidr(cidr)
        if network.version != ip_version:
            raise invalid(f"cidr '{cidr}' does not match the ip_version '{ip_version}'")
        if network.version == 4 and network.prefixlen > 30 or network.version == 6 and network.prefixlen > 126:
            raise invalid(f"Requested subnet with cidr: {cidr} for network: {net.id} is too small.")
        for sid in net.subnets:
            other = self.subnets.get(sid)
            if other is not None and other.ip_version == ip_version and \
                    network.overlaps(ipaddress.ip_network(other.cidr)):
                raise invalid(f"Requested subnet with cidr: {cidr} for network: {net.id} overlaps with "
                              "another subnet.")
        gateway = self._check_gateway(network, gateway_ip)
        if allocation_pools:
            pools = self._check_pools(network, allocation_pools, gateway)
        else:
            pools = default_pools(network, gateway)
        if quota:
            self._check_quota("subnets", project_id)
        sn = Subnet(id=self._new_id(), project_id=project_id, network_id=net.id, ip_version=ip_version,
                    cidr=str(network), gateway_ip=gateway, allocation_pools=pools, enable_dhcp=enable_dhcp,
                    dns_nameservers=list(dns_nameservers or []), host_routes=list(host_routes or []),
                    ipv6_ra_mode=ipv6_ra_mode, ipv6_address_mode=ipv6_address_mode, name=name,
                    description=description, tags=list(tags or []))
        self.subnets[sn.id] = sn
        self._own("subnets", sn)
        self._pools[sn.id] = self._make_pool(sn)
        net.subnets.append(sn.id)
        net.touch()
        return sn

    @staticmethod
    def _check_gateway(network: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway_ip: Any) -> str | None:
        if gateway_ip is None:
            return None
        if gateway_ip == "":
            if network.num_addresses < 2:
                return None
            return str(network.network_address + 1)
        gw = parse_ip(gateway_ip, "gateway_ip")
        if gw.version != network.version:
            raise invalid(f"gateway_ip '{gateway_ip}' does not match the ip_version '{network.version}'")
        if gw in network and network.version == 4 and gw in (network.network_address, network.broadcast_address):
            raise ApiError(400, "Gateway is not valid on subnet", code="InvalidInput")
        return str(gw)

    @staticmethod
    def _check_pools(network: ipaddress.IPv4Network | ipaddress.IPv6Network, pools: list[dict[str, Any]],
                     gateway: str | None) -> list[dict[str, str]]:
        ranges: list[tuple[int, int]] = []
        for pool in pools:
            if not isinstance(pool, dict) or "start" not in pool or "end" not in pool:
                raise invalid_attr("allocation_pools", f"{pool} is not a valid allocation pool "
                                   "(an object with 'start' and 'end')")
            start, end = parse_ip(pool["start"], "allocation_pools"), parse_ip(pool["end"], "allocation_pools")
            if start.version != network.version or end.version != network.version or int(start) > int(end):
                raise ApiError(400, f"The allocation pool {pool['start']}-{pool['end']} is not valid.",
                               code="InvalidAllocationPool")
            if start not in network or end not in network:
                raise ApiError(400, f"The allocation pool {pool['start']}-{pool['end']} spans beyond the "
                                    f"subnet cidr {network}.", code="OutOfBoundsAllocationPool")
            ranges.append((int(start), int(end)))
        ranges.sort()
        for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
            if a2 <= b1:
                raise ApiError(400, "Found overlapping allocation pools.", code="OverlappingAllocationPools")
        if gateway is not None:
            gw = int(ipaddress.ip_address(gateway))
            for a, b in ranges:
                if a <= gw <= b:
                    cls = ipaddress.ip_address
                    raise ApiError(409, f"Gateway ip {gateway} conflicts with allocation pool "
                                        f"{cls(a)}-{cls(b)}.", code="GatewayConflictWithAllocationPools")
        cls = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
        return [{"start": str(cls(a)), "end": str(cls(b))} for a, b in ranges]

    @staticmethod
    def _make_pool(sn: Subnet) -> IpPool:
        return IpPool([(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
                       for p in sn.allocation_pools])

    def update_subnet(self, project_id: str, subnet_id: str, changes: dict[str, Any]) -> Subnet:
        sn = self.get_subnet(project_id, subnet_id)
        if sn.project_id != project_id:
            raise ApiError(403, f"The request you have made requires authorization on subnet {subnet_id}.",
                           code="PolicyNotAuthorized")
        network = ipaddress.ip_network(sn.cidr)
        if "gateway_ip" in changes:
            gw = changes["gateway_ip"]
            changes["gateway_ip"] = self._check_gateway(network, gw) if gw is not None else None
        if "allocation_pools" in changes:
            pools = self._check_pools(network, changes["allocation_pools"] or [],
                                      changes.get("gateway_ip", sn.gateway_ip))
            old = self._pools[sn.id]
            sn.allocation_pools = pools
            new = self._make_pool(sn)
            new.used = old.used
            self._pools[sn.id] = new
            del changes["allocation_pools"]
        for k, v in changes.items():
            setattr(sn, k, v)
        sn.touch()
        return sn

    def delete_subnet(self, project_id: str, subnet_id: str) -> None:
        sn = self.get_subnet(project_id, subnet_id)
        if sn.project_id != project_id:
            raise ApiError(403, f"The request you have made requires authorization on subnet {subnet_id}.",
                           code="PolicyNotAuthorized")
        if self._subnet_ports.get(sn.id):
            raise ApiError(409, f"Unable to complete operation on subnet {sn.id}: One or more ports have an "
                                "IP allocation from this subnet.", code="SubnetInUse")
        self._drop_subnet(sn)

    def _drop_subnet(self, sn: Subnet) -> None:
        net = self.networks.get(sn.network_id)
        if net is not None and sn.id in net.subnets:
            net.subnets.remove(sn.id)
            net.touch()
        self._disown("subnets", sn)
        self._pools.pop(sn.id, None)
        self._subnet_ports.pop(sn.id, None)
        del self.subnets[sn.id]
        sn.removed = True

    # ---- IP allocation on a network ---------------------------------------------------------------

    def _allocate_on_network(self, net: Network, subnet_id: str | None, ip_address: str | None,
                             version: int | None = None) -> tuple[Subnet, str]:
        """One address on ``net`` (optionally a given subnet / address). Claims it in the pool."""
        if ip_address is not None:
            ip = parse_ip(ip_address, "ip_address")
            candidates = [subnet_id] if subnet_id else net.subnets
            for sid in candidates:
                sn = self.subnets.get(sid)
                if sn is None or sn.network_id != net.id:
                    raise invalid(f"Failed to create port on network {net.id}, because fixed_ips included "
                                  f"invalid subnet {sid}.")
                cidr = ipaddress.ip_network(sn.cidr)
                if ip.version == cidr.version and ip in cidr:
                    if cidr.version == 4 and cidr.prefixlen < 31 and ip in (cidr.network_address,
                                                                            cidr.broadcast_address):
                        raise invalid(f"IP address {ip} is not a valid IP for the specified subnet.")
                    n = int(ip)
                    pool = self._pools[sn.id]
                    if n in pool.used:
                        raise ApiError(409, f"Unable to complete operation for network {net.id}. The IP "
                                            f"address {ip} is in use.", code="IpAddressInUse")
                    pool.claim(n)
                    return sn, str(ip)
            raise invalid(f"IP address {ip_address} is not a valid IP for the specified subnet.")
        if subnet_id is not None:
            sn = self.subnets.get(subnet_id)
            if sn is None or sn.network_id != net.id:
                raise invalid(f"Failed to create port on network {net.id}, because fixed_ips included "
                              f"invalid subnet {subnet_id}.")
            n = self._pools[sn.id].take()
            if n is None:
                raise self._exhausted(net)
            return sn, str(ipaddress.ip_address(n))
        for sid in net.subnets:
            sn = self.subnets.get(sid)
            if sn is None or (version is not None and sn.ip_version != version):
                continue
            n = self._pools[sn.id].take()
            if n is not None:
                return sn, str(ipaddress.ip_address(n))
        raise self._exhausted(net)

    @staticmethod
    def _exhausted(net: Network) -> ApiError:
        return ApiError(409, f"No more IP addresses available on network {net.id}.",
                        code="IpAddressGenerationFailure")

    def _release_ip(self, subnet_id: str, ip: str) -> None:
        pool = self._pools.get(subnet_id)
        if pool is not None:
            pool.release(int(ipaddress.ip_address(ip)))

    def _release_ip_on_network(self, network_id: str, ip: str) -> None:
        net = self.networks.get(network_id)
        if net is None:
            return
        addr = ipaddress.ip_address(ip)
        for sid in net.subnets:
            sn = self.subnets.get(sid)
            if sn is not None and addr in ipaddress.ip_network(sn.cidr):
                self._release_ip(sid, ip)
                return

    def _fip_claim(self, fip: FloatingIP) -> None:
        self._fip_ips[fip.floating_ip_address] = fip.id
        net = self.networks.get(fip.floating_network_id)
        if net is not None:
            addr = ipaddress.ip_address(fip.floating_ip_address)
            for sid in net.subnets:
                sn = self.subnets.get(sid)
                if sn is not None and addr in ipaddress.ip_network(sn.cidr):
                    self._pools[sid].claim(int(addr))
        if fip.port_id:
            self._port_fips.setdefault(fip.port_id, {})[fip.id] = None

    # ==============================================================================================
    # ports
    # ==============================================================================================

    def _new_mac(self) -> str:
        while True:
            n = self._rng.getrandbits(24)
            mac = f"fa:16:3e:{n >> 16:02x}:{(n >> 8) & 0xff:02x}:{n & 0xff:02x}"
            if mac not in self._macs:
                return mac

    def add_port(self, project_id: str, network_id: str, *, fixed_ips: list[dict[str, Any]] | None = None,
                 security_groups: list[str] | None = None, name: str = "", description: str = "",
                 device_id: str = "", device_owner: str = "", mac_address: str | None = None,
                 admin_state_up: bool = True, port_security_enabled: bool | None = None,
                 allowed_address_pairs: list[dict[str, Any]] | None = None, vnic_type: str = "normal",
                 host_id: str = "", tags: list[str] | None = None, created_for_device: bool = False) -> Port:
        self.ensure_project(project_id)
        net = self.get_network(project_id, network_id)
        self._check_quota("ports", project_id)
        if mac_address is not None:
            mac = mac_address.lower()
            if mac in self._macs:
                raise ApiError(409, f"Unable to complete operation for network {net.id}. The mac address "
                                    f"{mac_address} is in use.", code="MacAddressInUse")
        else:
            mac = self._new_mac()
        psec = net.port_security_enabled if port_security_enabled is None else port_security_enabled
        if security_groups is None:
            sgs = []
            if psec and self.profile.default_security_group and device_owner.split(":")[0] not in (
                    "network",):
                sgs = [self._default_sg[project_id]] if project_id in self._default_sg else []
        else:
            sgs = []
            for sid in security_groups:
                sg = self.get_security_group(project_id, sid)
                if sg.id not in sgs:
                    sgs.append(sg.id)
            if sgs and not psec:
                raise ApiError(400, "Port security must be enabled and port must have an IP address in order "
                                    "to use security groups.", code="PortSecurityAndIPRequiredForSecurityGroups")
        if allowed_address_pairs and not psec:
            raise ApiError(409, "Port Security must be enabled in order to have allowed address pairs on a port.",
                           code="AddressPairAndPortSecurityRequired")
        pairs = [{"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or mac}
                 for p in allowed_address_pairs or []]
        ips = self._allocate_fixed_ips(net, fixed_ips)
        port = Port(id=self._new_id(), project_id=project_id, network_id=net.id, mac_address=mac,
                    fixed_ips=ips, device_id=device_id, device_owner=device_owner, admin_state_up=admin_state_up,
                    security_groups=sgs, port_security_enabled=psec, allowed_address_pairs=pairs,
                    vnic_type=vnic_type, host_id=host_id, name=name, description=description,
                    tags=list(tags or []), created_for_device=created_for_device, state="DOWN")
        self.ports[port.id] = port
        self._own("ports", port)
        self._index_port(port)
        if host_id:
            self._enter(port, "BINDING")
        if sgs:
            self._emit("port.create", port)
        return port

    def _allocate_fixed_ips(self, net: Network, fixed_ips: list[dict[str, Any]] | None) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        try:
            if fixed_ips is None:
                seen_versions = set()
                for sid in net.subnets:
                    sn = self.subnets.get(sid)
                    if sn is None or sn.ip_version in seen_versions:
                        continue
                    seen_versions.add(sn.ip_version)
                    sn2, ip = self._allocate_on_network(net, None, None, version=sn.ip_version)
                    out.append({"subnet_id": sn2.id, "ip_address": ip})
                return out
            if len(fixed_ips) > MAX_FIXED_IPS:
                raise invalid(f"Exceeded maximum amount of fixed ips per port ({MAX_FIXED_IPS}).")
            for spec in fixed_ips:
                sn, ip = self._allocate_on_network(net, spec.get("subnet_id"), spec.get("ip_address"))
                out.append({"subnet_id": sn.id, "ip_address": ip})
            return out
        except ApiError:
            for f in out:
                self._release_ip(f["subnet_id"], f["ip_address"])
            raise

    def _index_port(self, port: Port) -> None:
        self._macs.add(port.mac_address)
        self._net_ports.setdefault(port.network_id, {})[port.id] = None
        for f in port.fixed_ips:
            self._subnet_ports[f["subnet_id"]] = self._subnet_ports.get(f["subnet_id"], 0) + 1
            self._ip_port[(port.network_id, f["ip_address"])] = port.id
            pool = self._pools.get(f["subnet_id"])
            if pool is not None:
                pool.claim(int(ipaddress.ip_address(f["ip_address"])))
        if port.device_id:
            self._device_ports.setdefault(port.device_id, {})[port.id] = None
        for sid in port.security_groups:
            self._sg_ports.setdefault(sid, {})[port.id] = None

    def _unindex_port(self, port: Port) -> None:
        self._macs.discard(port.mac_address)
        net_ports = self._net_ports.get(port.network_id)
        if net_ports is not None:
            net_ports.pop(port.id, None)
            if not net_ports:
                del self._net_ports[port.network_id]
        self._unindex_ips(port)
        if port.device_id:
            dev = self._device_ports.get(port.device_id)
            if dev is not None:
                dev.pop(port.id, None)
                if not dev:
                    del self._device_ports[port.device_id]
        for sid in port.security_groups:
            members = self._sg_ports.get(sid)
            if members is not None:
                members.pop(port.id, None)

    def _unindex_ips(self, port: Port) -> None:
        for f in port.fixed_ips:
            n = self._subnet_ports.get(f["subnet_id"], 0) - 1
            if n > 0:
                self._subnet_ports[f["subnet_id"]] = n
            else:
                self._subnet_ports.pop(f["subnet_id"], None)
            if self._ip_port.get((port.network_id, f["ip_address"])) == port.id:
                del self._ip_port[(port.network_id, f["ip_address"])]
            self._release_ip(f["subnet_id"], f["ip_address"])

    def update_port(self, project_id: str, port_id: str, changes: dict[str, Any]) -> Port:
        port = self.get_port(project_id, port_id)
        sg_changed = False
        psec = changes.get("port_security_enabled", port.port_security_enabled)
        if "security_groups" in changes:
            sgs: list[str] = []
            for sid in changes.pop("security_groups") or []:
                sg = self.get_security_group(project_id, sid)
                if sg.id not in sgs:
                    sgs.append(sg.id)
            if sgs and not psec:
                raise ApiError(400, "Port security must be enabled and port must have an IP address in order "
                                    "to use security groups.", code="PortSecurityAndIPRequiredForSecurityGroups")
            new_sgs: list[str] | None = sgs
        else:
            new_sgs = None
            if not psec and port.security_groups:
                raise ApiError(409, f"Port {port.id} has security groups: disable port security only together "
                                    "with removing them.", code="PortSecurityPortHasSecurityGroup")
        if "allowed_address_pairs" in changes:
            pairs = changes.pop("allowed_address_pairs") or []
            if pairs and not psec:
                raise ApiError(409, "Port Security must be enabled in order to have allowed address pairs on a "
                                    "port.", code="AddressPairAndPortSecurityRequired")
            port.allowed_address_pairs = [{"ip_address": p["ip_address"],
                                           "mac_address": p.get("mac_address") or port.mac_address}
                                          for p in pairs]
        if "fixed_ips" in changes:
            net = self.networks[port.network_id]
            wanted = changes.pop("fixed_ips") or []
            keep = [f for f in port.fixed_ips if any(w.get("ip_address") == f["ip_address"] and
                                                     w.get("subnet_id", f["subnet_id"]) == f["subnet_id"]
                                                     for w in wanted)]
            fresh = [w for w in wanted if not any(w.get("ip_address") == f["ip_address"] for f in keep)]
            old = port.fixed_ips
            dropped = [f for f in old if f not in keep]
            self._unindex_ips_list(port, dropped)
            try:
                added = self._allocate_fixed_ips(net, fresh)
            except ApiError:
                self._reindex_ips_list(port, dropped)
                raise
            port.fixed_ips = keep + added
            self._reindex_ips_list(port, added)
            sg_changed = sg_changed or (bool(port.security_groups) and port.fixed_ips != old)
        if "mac_address" in changes:
            mac = changes.pop("mac_address").lower()
            if mac != port.mac_address:
                if mac in self._macs:
                    raise ApiError(409, f"Unable to complete operation for network {port.network_id}. The mac "
                                        f"address {mac} is in use.", code="MacAddressInUse")
                self._macs.discard(port.mac_address)
                self._macs.add(mac)
                port.mac_address = mac
        if "device_id" in changes:
            dev = changes.pop("device_id")
            if dev != port.device_id:
                if port.device_id:
                    self._device_ports.get(port.device_id, {}).pop(port.id, None)
                port.device_id = dev
                if dev:
                    self._device_ports.setdefault(dev, {})[port.id] = None
        if "host_id" in changes:
            host = changes.pop("host_id")
            if host and not port.host_id:
                port.host_id = host
                self._enter(port, "BINDING")
            elif not host and port.host_id:
                port.host_id = ""
                self._enter(port, "DOWN")
            else:
                port.host_id = host
        for k, v in changes.items():
            setattr(port, k, v)
        if new_sgs is not None and new_sgs != port.security_groups:
            for sid in port.security_groups:
                self._sg_ports.get(sid, {}).pop(port.id, None)
            port.security_groups = new_sgs
            for sid in new_sgs:
                self._sg_ports.setdefault(sid, {})[port.id] = None
            sg_changed = True
        port.touch()
        if sg_changed:
            self._emit("port.update", port)
        return port

    def _unindex_ips_list(self, port: Port, ips: list[dict[str, str]]) -> None:
        saved = port.fixed_ips
        port.fixed_ips = ips
        self._unindex_ips(port)
        port.fixed_ips = saved

    def _reindex_ips_list(self, port: Port, ips: list[dict[str, str]]) -> None:
        for f in ips:
            self._subnet_ports[f["subnet_id"]] = self._subnet_ports.get(f["subnet_id"], 0) + 1
            self._ip_port[(port.network_id, f["ip_address"])] = port.id
            pool = self._pools.get(f["subnet_id"])
            if pool is not None:
                pool.claim(int(ipaddress.ip_address(f["ip_address"])))
                pool.freed.discard(int(ipaddress.ip_address(f["ip_address"])))

    def delete_port(self, project_id: str, port_id: str) -> None:
        port = self.get_port(project_id, port_id)
        if port.device_owner == "network:router_interface":
            raise ApiError(409, f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                                "network:router_interface.", code="ServicePortInUse")
        self._delete_port(port)

    def _delete_port(self, port: Port) -> None:
        for fip in self.floatingips_of_port(port.id):
            self._disassociate(fip)
        self._port_fips.pop(port.id, None)
        self._unindex_port(port)
        self._disown("ports", port)
        del self.ports[port.id]
        if port.due_at is not None:
            self.region.twin.scheduler.cancel(port)
        port.removed = True
        if port.security_groups:
            self._emit("port.delete", port)

    def _enter(self, port: Port, state: str) -> None:
        life = self.region.cloud.lifecycles.get("port")
        if life is None:
            port.state = "ACTIVE" if state == "BINDING" else state
            return
        if port.due_at is not None:
            self.region.twin.scheduler.cancel(port)
        self.region.twin.scheduler.enter(port, life, state, self.region.placement("", port.project_id),
                                         self._port_entered)

    def _port_entered(self, port: Any, state: str, message: str) -> None:
        if state == "DELETED" and port.id in self.ports:
            self._delete_port(port)

    # ==============================================================================================
    # security groups
    # ==============================================================================================

    def _create_default_sg(self, project_id: str) -> SecurityGroup:
        sg = self._add_sg(project_id, "default", "Default security group", stateful=True, is_default=True)
        for eth in ("IPv4", "IPv6"):
            self._add_rule(sg, direction="ingress", ethertype=eth, remote_group_id=sg.id)
        for eth in self.profile.default_egress:
            self._add_rule(sg, direction="egress", ethertype=eth)
        self._emit("security_group.create", sg)
        return sg

    def _add_sg(self, project_id: str, name: str, description: str, *, stateful: bool = True,
                is_default: bool = False, tags: list[str] | None = None) -> SecurityGroup:
        sg = SecurityGroup(id=self._new_id(), project_id=project_id, name=name, description=description,
                           stateful=stateful, is_default=is_default, tags=list(tags or []))
        self.security_groups[sg.id] = sg
        self._own("security_groups", sg)
        self._sg_names.setdefault((project_id, name), {})[sg.id] = None
        self._rule_keys[sg.id] = {}
        if is_default:
            self._default_sg[project_id] = sg.id
        return sg

    def default_security_group(self, project_id: str) -> SecurityGroup | None:
        self.ensure_project(project_id)
        sid = self._default_sg.get(project_id)
        return self.security_groups.get(sid) if sid else None

    def add_security_group(self, project_id: str, *, name: str = "", description: str = "",
                           stateful: bool = True, tags: list[str] | None = None) -> SecurityGroup:
        self.ensure_project(project_id)
        if name == "default" and project_id in self._default_sg:
            raise ApiError(409, "Default security group already exists.", code="SecurityGroupDefaultAlreadyExists")
        self._check_quota("security_groups", project_id)
        n_egress = len(self.profile.default_egress)
        self._check_quota("security_group_rules", project_id, n_egress) if n_egress else None
        sg = self._add_sg(project_id, name, description, stateful=stateful, tags=tags)
        for eth in self.profile.default_egress:
            self._add_rule(sg, direction="egress", ethertype=eth)
        self._emit("security_group.create", sg)
        return sg

    def update_security_group(self, project_id: str, sg_id: str, changes: dict[str, Any]) -> SecurityGroup:
        sg = self.get_security_group(project_id, sg_id)
        if sg.is_default and "name" in changes and changes["name"] != "default":
            raise ApiError(409, "Insufficient rights for removing default security group.",
                           code="SecurityGroupCannotUpdateDefault")
        if "stateful" in changes and changes["stateful"] != sg.stateful and self._sg_ports.get(sg.id):
            raise ApiError(409, f"Security Group {sg.id} in use.", code="SecurityGroupInUse")
        if "name" in changes and changes["name"] != sg.name:
            self._sg_names.get((sg.project_id, sg.name), {}).pop(sg.id, None)
            self._sg_names.setdefault((sg.project_id, changes["name"]), {})[sg.id] = None
        for k, v in changes.items():
            setattr(sg, k, v)
        sg.touch()
        self._emit("security_group.update", sg)
        return sg

    def delete_security_group(self, project_id: str, sg_id: str) -> None:
        sg = self.get_security_group(project_id, sg_id)
        if sg.is_default:
            raise ApiError(409, "Insufficient rights for removing default security group.",
                           code="SecurityGroupCannotRemoveDefault")
        if self._sg_ports.get(sg.id):
            raise ApiError(409, f"Security Group {sg.id} in use.", code="SecurityGroupInUse")
        for other_rule_sg, rid in self._rules_referencing(sg.id):
            if other_rule_sg != sg.id:
                rule = self.security_group_rules.get(rid)
                if rule is not None:
                    self._drop_rule(rule)
                    self._emit("security_group_rule.delete", rule)
        for rid in list(sg.rules):
            rule = self.security_group_rules.get(rid)
            if rule is not None:
                self._disown("security_group_rules", rule)
                del self.security_group_rules[rid]
                rule.removed = True
        self._sg_ports.pop(sg.id, None)
        self._rule_keys.pop(sg.id, None)
        self._sg_names.get((sg.project_id, sg.name), {}).pop(sg.id, None)
        self._disown("security_groups", sg)
        del self.security_groups[sg.id]
        sg.removed = True
        self._emit("security_group.delete", sg)

    def _rules_referencing(self, sg_id: str) -> list[tuple[str, str]]:
        """Rules of the same project that name ``sg_id`` as remote group (deleted with it, as Neutron does)."""
        sg = self.security_groups[sg_id]
        out = []
        for other in self.owned("security_groups", sg.project_id):
            for rid in other.rules:
                rule = self.security_group_rules.get(rid)
                if rule is not None and rule.remote_group_id == sg_id:
                    out.append((other.id, rid))
        return out

    # ---- rules -----------------------------------------------------------------------------------

    @staticmethod
    def _proto_num(protocol: str | None, ethertype: str) -> int | None:
        if protocol is None:
            return None
        n = IP_PROTOCOL_MAP.get(protocol)
        if n is None:
            n = int(protocol)
        if ethertype == "IPv6" and n == 1:
            n = 58
        return n

    def _rule_key(self, rule: SecurityGroupRule) -> tuple[Any, ...]:
        return (rule.direction, rule.ethertype, self._proto_num(rule.protocol, rule.ethertype),
                rule.port_range_min, rule.port_range_max, rule.normalized_cidr, rule.remote_group_id,
                rule.remote_address_group_id)

    def _add_rule(self, sg: SecurityGroup, **fields: Any) -> SecurityGroupRule:
        rule = SecurityGroupRule(id=self._new_id(), project_id=sg.project_id, security_group_id=sg.id,
                                 belongs_to_default_sg=sg.is_default, **fields)
        self.security_group_rules[rule.id] = rule
        self._own("security_group_rules", rule)
        sg.rules.append(rule.id)
        self._rule_keys.setdefault(sg.id, {})[self._rule_key(rule)] = rule.id
        return rule

    def _drop_rule(self, rule: SecurityGroupRule) -> None:
        sg = self.security_groups.get(rule.security_group_id)
        if sg is not None:
            if rule.id in sg.rules:
                sg.rules.remove(rule.id)
            keys = self._rule_keys.get(sg.id, {})
            key = self._rule_key(rule)
            if keys.get(key) == rule.id:
                del keys[key]
            sg.touch()
        self._disown("security_group_rules", rule)
        self.security_group_rules.pop(rule.id, None)
        rule.removed = True

    def add_security_group_rule(self, project_id: str, security_group_id: str, *, direction: Any,
                                ethertype: Any = "IPv4", protocol: Any = None, port_range_min: Any = None,
                                port_range_max: Any = None, remote_ip_prefix: Any = None,
                                remote_group_id: Any = None, remote_address_group_id: Any = None,
                                description: str = "") -> SecurityGroupRule:
        """Validate like Neutron (direction, ethertype vs prefix family, protocol, ports) and de-duplicate."""
        self.ensure_project(project_id)
        sg = self.get_security_group(project_id, security_group_id)
        if direction not in ("ingress", "egress"):
            raise invalid_attr("direction", f"'{direction}' is not in ['ingress', 'egress']")
        if ethertype is None:
            ethertype = "IPv4"
        if isinstance(ethertype, str) and ethertype.lower() in ("ipv4", "ipv6"):
            ethertype = "IPv4" if ethertype.lower() == "ipv4" else "IPv6"
        else:
            raise invalid_attr("ethertype", f"'{ethertype}' is not in ['IPv4', 'IPv6']")
        proto = self._normalise_protocol(protocol, ethertype)
        pmin = self._port_value(port_range_min, "port_range_min")
        pmax = self._port_value(port_range_max, "port_range_max")
        num = self._proto_num(proto, ethertype)
        if pmin is not None or pmax is not None:
            if num is None:
                raise ApiError(400, "Must also specify protocol if port range is given.",
                               code="SecurityGroupProtocolRequiredWithPorts")
            if num in ICMP_PROTOCOLS:
                for value, attr, fname in ((pmin, "port_range_min", "type"), (pmax, "port_range_max", "code")):
                    if value is not None and not 0 <= value <= 255:
                        raise ApiError(400, f"Invalid value for ICMP {fname} ({attr}) {value}. It must be 0 to "
                                            "255.", code="SecurityGroupInvalidIcmpValue")
                if pmin is None and pmax is not None:
                    raise ApiError(400, f"ICMP code (port-range-max) {pmax} is provided but ICMP type "
                                        "(port-range-min) is missing.", code="SecurityGroupMissingIcmpType")
            elif num in PORT_PROTOCOLS:
                if pmin == 0 or pmax == 0:
                    raise ApiError(400, "Invalid value for port 0.", code="SecurityGroupInvalidPortValue")
                for value in (pmin, pmax):
                    if value is not None and not 1 <= value <= 65535:
                        raise ApiError(400, f"Invalid value for port {value}.",
                                       code="SecurityGroupInvalidPortValue")
                if pmin is None or pmax is None or pmin > pmax:
                    raise ApiError(400, "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                                   code="InvalidInput")
            else:
                raise ApiError(400, f"Invalid protocol {proto} for port range, only supported for TCP, UDP, "
                                    "UDPLITE, SCTP and DCCP.", code="SecurityGroupInvalidProtocolForPortRange")
        prefix = normalized = None
        if remote_ip_prefix is not None:
            if remote_group_id is not None:
                raise ApiError(400, "Only remote_ip_prefix or remote_group_id may be provided.",
                               code="SecurityGroupRemoteGroupAndRemoteIpPrefix")
            prefix, normalized = self._normalise_prefix(remote_ip_prefix, ethertype)
        if remote_group_id is not None:
            if not isinstance(remote_group_id, str):
                raise invalid_attr("remote_group_id", f"'{remote_group_id}' is not a valid UUID")
            remote_group_id = self.get_security_group(project_id, remote_group_id).id
        if remote_address_group_id is not None:
            raise ApiError(404, f"Address group {remote_address_group_id} could not be found.",
                           code="AddressGroupNotFound")
        rule = SecurityGroupRule(id="", project_id=sg.project_id, security_group_id=sg.id, direction=direction,
                                 ethertype=ethertype, protocol=proto, port_range_min=pmin, port_range_max=pmax,
                                 remote_ip_prefix=prefix, normalized_cidr=normalized,
                                 remote_group_id=remote_group_id, description=description)
        existing = self._rule_keys.get(sg.id, {}).get(self._rule_key(rule))
        if existing is not None:
            raise ApiError(409, f"Security group rule already exists. Rule id is {existing}.",
                           code="SecurityGroupRuleExists")
        self._check_quota("security_group_rules", project_id)
        rule.id = self._new_id()
        rule.belongs_to_default_sg = sg.is_default
        self.security_group_rules[rule.id] = rule
        self._own("security_group_rules", rule)
        sg.rules.append(rule.id)
        self._rule_keys.setdefault(sg.id, {})[self._rule_key(rule)] = rule.id
        sg.touch()
        self._emit("security_group_rule.create", rule)
        return rule

    @staticmethod
    def _normalise_protocol(protocol: Any, ethertype: str) -> str | None:
        if protocol is None:
            return None
        if isinstance(protocol, bool):
            protocol = str(protocol)
        if isinstance(protocol, int):
            text = str(protocol)
        elif isinstance(protocol, str):
            text = protocol.strip().lower()
        else:
            text = str(protocol)
        if text in ANY_PROTOCOL or text == "":
            return None
        names = sorted(IP_PROTOCOL_MAP)
        if text in IP_PROTOCOL_MAP:
            if ethertype == "IPv4" and text in IPV6_ONLY_PROTOCOLS:
                raise ApiError(400, f"Invalid ethertype {ethertype} for protocol {text}.",
                               code="SecurityGroupEthertypeConflictWithProtocol")
            return text
        if text.isdigit() and 0 <= int(text) <= 255:
            return str(int(text))
        raise ApiError(400, f"Security group rule protocol {protocol} not supported. Only protocol values "
                            f"{[None] + names} and integer representations [0 to 255] are supported.",
                       code="SecurityGroupRuleInvalidProtocol")

    @staticmethod
    def _port_value(value: Any, attr: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise invalid_attr(attr, f"'{value}' is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise invalid_attr(attr, f"'{value}' is not an integer")

    @staticmethod
    def _normalise_prefix(prefix: Any, ethertype: str) -> tuple[str, str]:
        if not isinstance(prefix, str):
            raise invalid_attr("remote_ip_prefix", f"'{prefix}' is not a valid IP subnet")
        text = prefix.strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise invalid_attr("remote_ip_prefix", f"'{prefix}' is not a valid IP subnet") from None
        if "/" not in text:
            text = str(net)
        if (net.version == 4) != (ethertype == "IPv4"):
            raise ApiError(400, f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                           code="SecurityGroupRuleParameterConflict")
        return text, str(net)

    def delete_security_group_rule(self, project_id: str, rule_id: str) -> None:
        rule = self.get_security_group_rule(project_id, rule_id)
        self._drop_rule(rule)
        self._emit("security_group_rule.delete", rule)

    def rules_of(self, sg: SecurityGroup) -> list[SecurityGroupRule]:
        rules = self.security_group_rules
        return [rules[r] for r in sg.rules if r in rules]

    def ports_of_security_group(self, sg_id: str) -> list[Port]:
        return [self.ports[i] for i in self._sg_ports.get(sg_id, ()) if i in self.ports]

    # ==============================================================================================
    # floating IPs
    # ==============================================================================================

    def _fip_fixed_ip(self, port: Port, fixed_ip_address: str | None, fip: FloatingIP | None) -> str:
        v4 = [f["ip_address"] for f in port.fixed_ips if ipaddress.ip_address(f["ip_address"]).version == 4]
        if fixed_ip_address is not None:
            if fixed_ip_address not in v4:
                raise ApiError(400, f"Bad floatingip request: Port {port.id} does not have fixed ip "
                                    f"{fixed_ip_address}.", code="BadRequest")
            chosen = fixed_ip_address
        else:
            if not v4:
                raise ApiError(400, f"Bad floatingip request: Port {port.id} does not have any IPv4 address "
                                    "to associate a floating IP with.", code="BadRequest")
            chosen = v4[0]
        for other in self.floatingips_of_port(port.id):
            if other is not fip and other.fixed_ip_address == chosen:
                raise ApiError(409, f"Cannot associate floating IP {other.floating_ip_address} ({other.id}) with "
                                    f"port {port.id} using fixed IP {chosen}, as that fixed IP already has a "
                                    f"floating IP on external network {other.floating_network_id}.",
                               code="FloatingIPPortAlreadyAssociated")
        return chosen

    def _associate(self, fip: FloatingIP, port: Port, fixed_ip: str) -> None:
        if fip.port_id and fip.port_id != port.id:
            self._port_fips.get(fip.port_id, {}).pop(fip.id, None)
        fip.port_id = port.id
        fip.fixed_ip_address = fixed_ip
        fip.status = "ACTIVE"
        fip.router_id = self._router_for_network(port.network_id)
        self._port_fips.setdefault(port.id, {})[fip.id] = None
        fip.touch()
        self._emit("floatingip.associate", fip)

    def _disassociate(self, fip: FloatingIP) -> None:
        if fip.port_id:
            self._emit("floatingip.disassociate", fip)
            self._port_fips.get(fip.port_id, {}).pop(fip.id, None)
        fip.port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        fip.touch()

    def update_floatingip(self, project_id: str, fip_id: str, changes: dict[str, Any]) -> FloatingIP:
        fip = self.get_floatingip(project_id, fip_id)
        if "port_id" in changes:
            port_id = changes.pop("port_id")
            fixed = changes.pop("fixed_ip_address", None)
            if port_id is None:
                self._disassociate(fip)
            else:
                port = self.get_port(project_id, port_id)
                fixed = self._fip_fixed_ip(port, fixed, fip)
                self._associate(fip, port, fixed)
        elif "fixed_ip_address" in changes:
            fixed = changes.pop("fixed_ip_address")
            if fip.port_id is None:
                raise ApiError(400, "Bad floatingip request: fixed_ip_address cannot be specified without a "
                                    "port_id.", code="BadRequest")
            port = self.ports[fip.port_id]
            self._associate(fip, port, self._fip_fixed_ip(port, fixed, fip))
        for k, v in changes.items():
            setattr(fip, k, v)
        fip.touch()
        return fip

    def _router_for_network(self, network_id: str) -> str | None:
        for pid in self._net_ports.get(network_id, ()):
            port = self.ports.get(pid)
            if port is not None and port.device_owner == "network:router_interface":
                router = self.routers.get(port.device_id)
                if router is not None and router.external_gateway_info:
                    return router.id
        return None

    # ==============================================================================================
    # routers (minimal)
    # ==============================================================================================

    def add_router(self, project_id: str, *, name: str = "", description: str = "", admin_state_up: bool = True,
                   external_gateway_info: dict[str, Any] | None = None, tags: list[str] | None = None,
                   availability_zone_hints: list[str] | None = None) -> Router:
        self.ensure_project(project_id)
        self._check_quota("routers", project_id)
        router = Router(id=self._new_id(), project_id=project_id, name=name, description=description,
                        admin_state_up=admin_state_up, tags=list(tags or []),
                        availability_zone_hints=list(availability_zone_hints or []))
        self.routers[router.id] = router
        self._own("routers", router)
        if external_gateway_info:
            try:
                self._set_gateway(router, external_gateway_info)
            except ApiError:
                self._disown("routers", router)
                del self.routers[router.id]
                raise
        return router

    def _set_gateway(self, router: Router, info: dict[str, Any] | None) -> None:
        for port in self.ports_of_device(router.id):
            if port.device_owner == "network:router_gateway":
                self._delete_port(port)
        router.external_gateway_info = None
        if not info:
            return
        net_id = info.get("network_id")
        if not isinstance(net_id, str):
            raise invalid_attr("external_gateway_info", "'network_id' is required")
        net = self.get_network(router.project_id, net_id)
        if not net.external:
            raise ApiError(400, f"Bad router request: Network {net_id} is not an external network.",
                           code="BadRequest")
        port = self.add_port(self.service_project_id, net.id, security_groups=[], device_id=router.id,
                             device_owner="network:router_gateway", port_security_enabled=False)
        port.state = "ACTIVE"
        router.external_gateway_info = {"network_id": net.id, "enable_snat": bool(info.get("enable_snat", True)),
                                        "external_fixed_ips": [dict(f) for f in port.fixed_ips]}

    def update_router(self, project_id: str, router_id: str, changes: dict[str, Any]) -> Router:
        router = self.get_router(project_id, router_id)
        if "external_gateway_info" in changes:
            self._set_gateway(router, changes.pop("external_gateway_info"))
        for k, v in changes.items():
            setattr(router, k, v)
        router.touch()
        return router

    def delete_router(self, project_id: str, router_id: str) -> None:
        router = self.get_router(project_id, router_id)
        if any(p.device_owner == "network:router_interface" for p in self.ports_of_device(router.id)):
            raise ApiError(409, f"Router {router.id} still has ports", code="RouterInUse")
        self._set_gateway(router, None)
        self._disown("routers", router)
        del self.routers[router.id]
        router.removed = True

    def add_router_interface(self, project_id: str, router_id: str, *, subnet_id: str | None = None,
                             port_id: str | None = None) -> dict[str, Any]:
        router = self.get_router(project_id, router_id)
        if (subnet_id is None) == (port_id is None):
            raise ApiError(400, "Bad router request: Either subnet_id or port_id must be specified.",
                           code="BadRequest")
        if subnet_id is not None:
            sn = self.get_subnet(project_id, subnet_id)
            for p in self.ports_of_device(router.id):
                if any(f["subnet_id"] == sn.id for f in p.fixed_ips):
                    raise ApiError(400, f"Bad router request: Router already has a port on subnet {sn.id}.",
                                   code="BadRequest")
            if not sn.gateway_ip:
                raise ApiError(400, "Bad router request: Subnet for router interface must have a gateway IP.",
                               code="BadRequest")
            port = self.add_port(project_id, sn.network_id, fixed_ips=[{"subnet_id": sn.id,
                                                                        "ip_address": sn.gateway_ip}],
                                 security_groups=[], device_id=router.id, device_owner="network:router_interface",
                                 port_security_enabled=False)
        else:
            port = self.get_port(project_id, port_id or "")
            if port.device_id:
                raise ApiError(409, f"Port {port.id} is in use by device {port.device_id}.", code="PortInUse")
            if not port.fixed_ips:
                raise ApiError(400, "Bad router request: Router port must have at least one fixed IP.",
                               code="BadRequest")
            port.device_id = router.id
            port.device_owner = "network:router_interface"
            self._device_ports.setdefault(router.id, {})[port.id] = None
        port.state = "ACTIVE"
        router.touch()
        return {"id": router.id, "tenant_id": project_id, "project_id": project_id, "port_id": port.id,
                "network_id": port.network_id, "subnet_id": port.fixed_ips[0]["subnet_id"] if port.fixed_ips else None,
                "subnet_ids": [f["subnet_id"] for f in port.fixed_ips]}

    def remove_router_interface(self, project_id: str, router_id: str, *, subnet_id: str | None = None,
                                port_id: str | None = None) -> dict[str, Any]:
        router = self.get_router(project_id, router_id)
        target = None
        for p in self.ports_of_device(router.id):
            if p.device_owner != "network:router_interface":
                continue
            if (port_id is not None and p.id == port_id) or \
                    (subnet_id is not None and any(f["subnet_id"] == subnet_id for f in p.fixed_ips)):
                target = p
                break
        if target is None:
            what = f"subnet {subnet_id}" if subnet_id else f"port {port_id}"
            raise ApiError(404, f"Router {router.id} does not have an interface with {what}",
                           code="RouterInterfaceNotFoundForSubnet" if subnet_id else "RouterInterfaceNotFound")
        info = {"id": router.id, "tenant_id": project_id, "project_id": project_id, "port_id": target.id,
                "network_id": target.network_id,
                "subnet_id": target.fixed_ips[0]["subnet_id"] if target.fixed_ips else None,
                "subnet_ids": [f["subnet_id"] for f in target.fixed_ips]}
        self._delete_port(target)
        router.touch()
        return info

    # ---- iteration helpers for handlers ---------------------------------------------------------

    def iter_owned(self, table: str, project_id: str) -> Iterable[Any]:
        self.ensure_project(project_id)
        return self.owned(table, project_id)
