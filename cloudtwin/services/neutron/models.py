"""Neutron v2.0 state of one region: networks, subnets, ports, security groups and rules, floating IPs
and routers, with the rules real Neutron enforces (CIDR checks, overlap, IP allocation, duplicate
rules, in-use conflicts, quotas).

No HTTP here: methods take plain Python values and raise ``ApiError`` with Neutron's error types and
messages. Every hot path is a dict lookup: ports are indexed by device, network, subnet and IP, floating
IPs by port, security groups by port membership and rules by their de-duplication key; each subnet
allocates IPs with a cursor plus a freed set (O(1) amortised per port, never a scan of the ports).

Other services use the "model interface" at the top of ``NeutronState`` (get_network, create_port,
bind_port, release_device, ports_of_device, allocate_floatingip, resolve_security_groups, ...).

``NeutronState`` keeps the tables, indexes and that interface; each resource's operations live in their
own module and join it as a base class: ``networks.py`` (networks, subnets), ``ports.py``,
``security_groups.py``, ``floating_ips.py``, ``routers.py``; the stored objects and constants are in
``resources.py``.
"""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource
from cloudtwin.services.neutron.floating_ips import FloatingIpMethods
from cloudtwin.services.neutron.ipam import IpPool
from cloudtwin.services.neutron.networks import NetworkMethods
from cloudtwin.services.neutron.ports import PortMethods
from cloudtwin.services.neutron.resources import (ANY_PROTOCOL, ICMP_PROTOCOLS, IP_PROTOCOL_MAP, IPV6_ONLY_PROTOCOLS,
                                                  MAX_FIXED_IPS, PORT_PROTOCOLS, QUOTA_NAMES, FloatingIP, Network,
                                                  Port, Router, SecurityGroup, SecurityGroupRule, SgListener, Subnet,
                                                  SubnetPool,
                                                  _not_found)
from cloudtwin.services.neutron.routers import RouterMethods
from cloudtwin.services.neutron.security_groups import SecurityGroupMethods
from cloudtwin.services.neutron.subnet_pools import SubnetPoolMethods

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

__all__ = ["NeutronState", "Network", "Subnet", "SubnetPool", "Port", "SecurityGroup", "SecurityGroupRule", "FloatingIP", "Router",
           "IP_PROTOCOL_MAP", "PORT_PROTOCOLS", "ICMP_PROTOCOLS", "IPV6_ONLY_PROTOCOLS", "ANY_PROTOCOL", "QUOTA_NAMES",
           "MAX_FIXED_IPS", "SgListener"]


# ------------------------------------------------------------------------------------------------
# the state
# ------------------------------------------------------------------------------------------------


class NeutronState(NetworkMethods, PortMethods, SecurityGroupMethods, FloatingIpMethods, RouterMethods,
                   SubnetPoolMethods):
    """One region's Neutron objects (``region.neutron``)."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {
        "networks": (Network, ""),
        "subnets": (Subnet, ""),
        "ports": (Port, "port"),
        "security_groups": (SecurityGroup, ""),
        "security_group_rules": (SecurityGroupRule, ""),
        "floatingips": (FloatingIP, ""),
        "routers": (Router, ""),
        "subnetpools": (SubnetPool, ""),
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
        self.subnetpools: dict[str, SubnetPool] = {}
        # called as listener(event, obj) on every SG / rule / port SG-membership change; events:
        # security_group.create|update|delete, security_group_rule.create|delete,
        # port.create|update|delete (only for ports with security groups or whose groups changed),
        # floatingip.associate|disassociate (a port gains or loses a floating IP; sent before the
        # disassociation clears fip.port_id)
        self.sg_listeners: list[SgListener] = []
        self.quota_overrides: dict[str, dict[str, int]] = {}   # PUT /v2.0/quotas/{project}: table -> limit
        self.agent_state: dict[str, dict[str, Any]] = {}       # admin changes to virtual agents, by id
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

    def quota_limit(self, table: str, project_id: str | None = None) -> int:
        """A project's limit: its override (PUT /v2.0/quotas/{project}), else the profile's default."""
        if project_id is not None and table in self.quota_overrides.get(project_id, {}):
            return self.quota_overrides[project_id][table]
        limit = self.profile.quotas.get(table, -1)
        return -1 if limit is None else int(limit)

    def quotas(self, project_id: str | None = None) -> dict[str, int]:
        return {QUOTA_NAMES[t]: self.quota_limit(t, project_id) for t in QUOTA_NAMES}

    def _check_quota(self, table: str, project_id: str, extra: int = 1) -> None:
        limit = self.quota_limit(table, project_id)
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
