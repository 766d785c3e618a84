"""Octavia v2 state: load balancers, listeners, pools, members and health monitors of one region.

Rules enforced here (no HTTP in this module):

* lifecycles from ``stages.yaml`` (kinds ``loadbalancer``, ``listener``, ``pool``, ``member``,
  ``healthmonitor``): create -> PENDING_CREATE -> ACTIVE, update -> PENDING_UPDATE -> ACTIVE,
  delete -> PENDING_DELETE -> gone, ERROR when a transition fails;
* a child operation (create/update/delete of a listener, pool, member or monitor) *holds* the load
  balancer -- and the intermediate parents, as Octavia does -- in PENDING_UPDATE until the child's own
  transition lands; the held objects then return to ACTIVE. Any mutation while the load balancer is not
  ACTIVE is a 409 ``Load Balancer <id> is immutable and cannot be updated.`` (a delete of the load
  balancer itself is also allowed from ERROR);
* VIP ports through Neutron's model interface, quotas per project, duplicate listeners / members /
  monitors, protocol compatibility;
* operating_status computed when read: a member of a pool with a health monitor is ONLINE when its
  address is a port of a Nova server that is running, ERROR otherwise; NO_MONITOR without a monitor;
  OFFLINE when administratively down. Pools, listeners and load balancers aggregate it.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource

GONE = "DELETED"
ACTIVE = "ACTIVE"
PENDING_CREATE = "PENDING_CREATE"
PENDING_UPDATE = "PENDING_UPDATE"
PENDING_DELETE = "PENDING_DELETE"
ERROR = "ERROR"

KIND_NAMES = {"loadbalancer": "Load Balancer", "listener": "Listener", "pool": "Pool", "member": "Member",
              "healthmonitor": "Health Monitor"}
QUOTA_KEYS = {"loadbalancer": "load_balancers", "listener": "listeners", "pool": "pools",
              "member": "members", "healthmonitor": "health_monitors"}

LISTENER_PROTOCOLS = ("TCP", "UDP", "HTTP", "HTTPS", "TERMINATED_HTTPS", "SCTP")
POOL_PROTOCOLS = ("TCP", "UDP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "SCTP")
LISTENER_POOL_PROTOCOLS = {
    "TCP": ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"),
    "HTTP": ("HTTP", "PROXY", "PROXYV2"),
    "HTTPS": ("HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2"),
    "UDP": ("UDP",),
    "SCTP": ("SCTP",),
}
LB_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
HM_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_HM_TYPES = ("HTTP", "HTTPS")
UDP_HM_TYPES = ("UDP-CONNECT", "HTTP", "TCP", "SCTP")
SESSION_PERSISTENCE = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
# guest states in which a server still answers health checks (the OS is up)
SERVER_UP_STATES = frozenset({"ACTIVE", "STOPPING", "SUSPENDING", "PAUSING"})


@dataclass(kw_only=True, eq=False)
class LoadBalancer(Resource):
    description: str = ""
    admin_state_up: bool = True
    vip_address: str | None = None
    vip_port_id: str | None = None
    vip_subnet_id: str | None = None
    vip_network_id: str | None = None
    vip_qos_policy_id: str | None = None
    vip_port_owned: bool = True          # False when the user supplied vip_port_id (not deleted with the LB)
    provider: str = "amphora"
    flavor_id: str | None = None
    availability_zone: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Listener(Resource):
    loadbalancer_id: str
    protocol: str
    protocol_port: int
    description: str = ""
    admin_state_up: bool = True
    connection_limit: int = -1
    default_pool_id: str | None = None
    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0
    allowed_cidrs: list[str] | None = None
    insert_headers: dict[str, str] = field(default_factory=dict)
    default_tls_container_ref: str | None = None
    sni_container_refs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Pool(Resource):
    loadbalancer_id: str
    protocol: str
    lb_algorithm: str
    description: str = ""
    admin_state_up: bool = True
    session_persistence: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class Member(Resource):
    pool_id: str
    address: str
    protocol_port: int
    weight: int = 1
    backup: bool = False
    subnet_id: str | None = None
    monitor_address: str | None = None
    monitor_port: int | None = None
    admin_state_up: bool = True
    network_id: str | None = None      # where the address lives (subnet's network, else the VIP's)
    tags: list[str] = field(default_factory=list)


@dataclass(kw_only=True, eq=False)
class HealthMonitor(Resource):
    pool_id: str
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int = 3
    http_method: str | None = None
    url_path: str | None = None
    expected_codes: str | None = None
    http_version: float | None = None
    domain_name: str | None = None
    admin_state_up: bool = True
    tags: list[str] = field(default_factory=list)


Child = Listener | Pool | Member | HealthMonitor
KIND_OF: dict[type, str] = {LoadBalancer: "loadbalancer", Listener: "listener", Pool: "pool", Member: "member",
                            HealthMonitor: "healthmonitor"}


def immutable(kind: str, obj_id: str) -> ApiError:
    return ApiError(409, f"{KIND_NAMES[kind]} {obj_id} is immutable and cannot be updated.")


def not_found(kind: str, obj_id: str) -> ApiError:
    return ApiError(404, f"{KIND_NAMES[kind]} {obj_id} not found.")


def validation(detail: str) -> ApiError:
    return ApiError(400, f"Validation failure: {detail}")


def aggregate(statuses: Iterable[str]) -> str:
    """Members -> pool, pools -> listener / load balancer: all ERROR -> ERROR, some -> DEGRADED."""
    n = bad = 0
    degraded = False
    for s in statuses:
        if s == "OFFLINE":
            continue  # administratively down: not counted
        n += 1
        if s == "ERROR":
            bad += 1
        elif s == "DEGRADED":
            degraded = True
    if n and bad == n:
        return "ERROR"
    if bad or degraded:
        return "DEGRADED"
    return "ONLINE"


class OctaviaState:
    """One region's Octavia objects (``region.octavia``)."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {
        "loadbalancers": (LoadBalancer, "loadbalancer"),
        "listeners": (Listener, "listener"),
        "pools": (Pool, "pool"),
        "members": (Member, "member"),
        "healthmonitors": (HealthMonitor, "healthmonitor"),
    }

    def __init__(self, region: Any) -> None:
        self.region = region
        self.loadbalancers: dict[str, LoadBalancer] = {}
        self.listeners: dict[str, Listener] = {}
        self.pools: dict[str, Pool] = {}
        self.members: dict[str, Member] = {}
        self.healthmonitors: dict[str, HealthMonitor] = {}
        self.rebuild()

    # ------------------------------------------------------------------ indexes
    def rebuild(self) -> None:
        """Recompute every secondary index from the tables (after a snapshot restore)."""
        self._lb_listeners: dict[str, dict[str, None]] = {lb: {} for lb in self.loadbalancers}
        self._lb_pools: dict[str, dict[str, None]] = {lb: {} for lb in self.loadbalancers}
        self._pool_members: dict[str, dict[str, None]] = {p: {} for p in self.pools}
        self._pool_listeners: dict[str, dict[str, None]] = {p: {} for p in self.pools}
        self._pool_hm: dict[str, str] = {}
        self._member_key: dict[tuple[str, str, int], str] = {}
        self._used: Counter[tuple[str, str]] = Counter()
        for lb in self.loadbalancers.values():
            self._used[(lb.project_id, "loadbalancer")] += 1
        for li in self.listeners.values():
            self._lb_listeners.setdefault(li.loadbalancer_id, {})[li.id] = None
            if li.default_pool_id:
                self._pool_listeners.setdefault(li.default_pool_id, {})[li.id] = None
            self._used[(li.project_id, "listener")] += 1
        for p in self.pools.values():
            self._lb_pools.setdefault(p.loadbalancer_id, {})[p.id] = None
            self._used[(p.project_id, "pool")] += 1
        for m in self.members.values():
            self._pool_members.setdefault(m.pool_id, {})[m.id] = None
            self._member_key[(m.pool_id, m.address, m.protocol_port)] = m.id
            self._used[(m.project_id, "member")] += 1
        for hm in self.healthmonitors.values():
            self._pool_hm[hm.pool_id] = hm.id
            self._used[(hm.project_id, "healthmonitor")] += 1

    def all_objects(self) -> Iterator[Resource]:
        for table in (self.loadbalancers, self.listeners, self.pools, self.members, self.healthmonitors):
            yield from table.values()

    def counts(self) -> dict[str, int]:
        return {"loadbalancers": len(self.loadbalancers), "listeners": len(self.listeners),
                "pools": len(self.pools), "members": len(self.members),
                "healthmonitors": len(self.healthmonitors)}

    def on_enter_for(self, kind: str) -> Callable[[Any, str, str], None]:
        return self._on_lb if kind == "loadbalancer" else self._on_child

    # ------------------------------------------------------------------ lookups
    def _table(self, kind: str) -> dict[str, Any]:
        return {"loadbalancer": self.loadbalancers, "listener": self.listeners, "pool": self.pools,
                "member": self.members, "healthmonitor": self.healthmonitors}[kind]

    def _get(self, kind: str, project_id: str, obj_id: str) -> Any:
        obj = self._table(kind).get(obj_id)
        if obj is None or obj.project_id != project_id:
            raise not_found(kind, obj_id)
        return obj

    def get_lb(self, project_id: str, lb_id: str) -> LoadBalancer:
        return self._get("loadbalancer", project_id, lb_id)

    def get_listener(self, project_id: str, listener_id: str) -> Listener:
        return self._get("listener", project_id, listener_id)

    def get_pool(self, project_id: str, pool_id: str) -> Pool:
        return self._get("pool", project_id, pool_id)

    def get_member(self, project_id: str, pool_id: str, member_id: str) -> Member:
        self.get_pool(project_id, pool_id)
        m = self.members.get(member_id)
        if m is None or m.pool_id != pool_id or m.project_id != project_id:
            raise not_found("member", member_id)
        return m

    def get_healthmonitor(self, project_id: str, hm_id: str) -> HealthMonitor:
        return self._get("healthmonitor", project_id, hm_id)

    def list(self, kind: str, project_id: str) -> list[Any]:
        return [o for o in self._table(kind).values() if o.project_id == project_id]

    def pool_members(self, pool_id: str) -> list[Member]:
        return [self.members[m] for m in self._pool_members.get(pool_id, ())]

    def lb_listeners(self, lb_id: str) -> list[Listener]:
        return [self.listeners[i] for i in self._lb_listeners.get(lb_id, ())]

    def lb_pools(self, lb_id: str) -> list[Pool]:
        return [self.pools[i] for i in self._lb_pools.get(lb_id, ())]

    def pool_listener_ids(self, pool_id: str) -> list[str]:
        return list(self._pool_listeners.get(pool_id, ()))

    def pool_healthmonitor(self, pool_id: str) -> HealthMonitor | None:
        hm_id = self._pool_hm.get(pool_id)
        return self.healthmonitors.get(hm_id) if hm_id else None

    def lb_of(self, obj: Any) -> LoadBalancer:
        if isinstance(obj, LoadBalancer):
            return obj
        if isinstance(obj, (Member, HealthMonitor)):
            obj = self.pools[obj.pool_id]
        return self.loadbalancers[obj.loadbalancer_id]

    # ------------------------------------------------------------------ quotas
    def quota_limit(self, kind: str) -> int:
        return int(self.region.cloud.profile.quotas.get(QUOTA_KEYS[kind], -1))

    def used(self, project_id: str, kind: str) -> int:
        return self._used[(project_id, kind)]

    def _check_quota(self, project_id: str, kind: str) -> None:
        limit = self.quota_limit(kind)
        if limit >= 0 and self._used[(project_id, kind)] >= limit:
            raise ApiError(403, f"Quota has been met for resources: {KIND_NAMES[kind]}")

    # ------------------------------------------------------------------ lifecycle plumbing
    def _placement(self, obj: Any) -> Any:
        lb = obj if isinstance(obj, LoadBalancer) else self.loadbalancers.get(getattr(obj, "loadbalancer_id", ""))
        if lb is None:
            try:
                lb = self.lb_of(obj)
            except KeyError:
                lb = None
        zone = (lb.availability_zone if lb is not None else None) or ""
        return self.region.placement(zone, obj.project_id)

    def _enter(self, obj: Any, state: str) -> None:
        kind = KIND_OF[type(obj)]
        self.region.twin.scheduler.enter(obj, self.region.cloud.lifecycles[kind], state, self._placement(obj),
                                         self.on_enter_for(kind))

    def _parents(self, obj: Any) -> list[Any]:
        """The objects a child operation holds in PENDING_UPDATE: the load balancer and the parents between."""
        if isinstance(obj, Listener):
            lb = self.loadbalancers.get(obj.loadbalancer_id)
            return [lb] if lb else []
        if isinstance(obj, Pool):
            pool = obj
            out: list[Any] = []
        else:
            pool = self.pools.get(obj.pool_id)
            if pool is None:
                return []
            out = [pool]
        out.extend(self.listeners[i] for i in self._pool_listeners.get(pool.id, ()) if i in self.listeners)
        lb = self.loadbalancers.get(pool.loadbalancer_id)
        if lb is not None:
            out.insert(0, lb)
        return out

    def _hold(self, parents: list[Any]) -> None:
        for p in parents:
            if p.due_at is not None:
                self.region.twin.scheduler.cancel(p)
            p.state = PENDING_UPDATE

    @staticmethod
    def _release(parents: list[Any]) -> None:
        for p in parents:
            if p.state == PENDING_UPDATE and p.due_at is None and not p.removed:
                p.state = ACTIVE

    def _child_op(self, obj: Any, state: str) -> None:
        self._hold(self._parents(obj))
        self._enter(obj, state)

    def _on_lb(self, lb: LoadBalancer, state: str, message: str) -> None:
        if state == GONE:
            self._remove_lb(lb)

    def _on_child(self, obj: Any, state: str, message: str) -> None:
        if state in (ACTIVE, ERROR, GONE):
            parents = self._parents(obj)
            if state == GONE:
                self._remove(obj)
            self._release(parents)

    @staticmethod
    def _guard(lb: LoadBalancer, *, deleting_lb: bool = False) -> None:
        allowed = (ACTIVE, ERROR) if deleting_lb else (ACTIVE,)
        if lb.state not in allowed:
            raise immutable("loadbalancer", lb.id)

    @staticmethod
    def _guard_obj(kind: str, obj: Any) -> None:
        if obj.state.startswith("PENDING"):
            raise immutable(kind, obj.id)

    # ------------------------------------------------------------------ removal
    def _forget(self, obj: Any, kind: str) -> None:
        obj.removed = True
        self._table(kind).pop(obj.id, None)
        key = (obj.project_id, kind)
        self._used[key] -= 1
        if self._used[key] <= 0:
            del self._used[key]

    def _remove(self, obj: Any) -> None:
        if isinstance(obj, Listener):
            self._remove_listener(obj)
        elif isinstance(obj, Pool):
            self._remove_pool(obj)
        elif isinstance(obj, Member):
            self._remove_member(obj)
        elif isinstance(obj, HealthMonitor):
            self._remove_hm(obj)

    def _remove_member(self, m: Member) -> None:
        self._pool_members.get(m.pool_id, {}).pop(m.id, None)
        if self._member_key.get((m.pool_id, m.address, m.protocol_port)) == m.id:
            del self._member_key[(m.pool_id, m.address, m.protocol_port)]
        self._forget(m, "member")

    def _remove_hm(self, hm: HealthMonitor) -> None:
        if self._pool_hm.get(hm.pool_id) == hm.id:
            del self._pool_hm[hm.pool_id]
        self._forget(hm, "healthmonitor")

    def _remove_pool(self, pool: Pool) -> None:
        for m in self.pool_members(pool.id):
            self._remove_member(m)
        hm = self.pool_healthmonitor(pool.id)
        if hm is not None:
            self._remove_hm(hm)
        for li_id in self._pool_listeners.pop(pool.id, {}):
            li = self.listeners.get(li_id)
            if li is not None and li.default_pool_id == pool.id:
                li.default_pool_id = None
        self._pool_members.pop(pool.id, None)
        self._lb_pools.get(pool.loadbalancer_id, {}).pop(pool.id, None)
        self._forget(pool, "pool")

    def _remove_listener(self, li: Listener) -> None:
        if li.default_pool_id:
            self._pool_listeners.get(li.default_pool_id, {}).pop(li.id, None)
        self._lb_listeners.get(li.loadbalancer_id, {}).pop(li.id, None)
        self._forget(li, "listener")

    def _remove_lb(self, lb: LoadBalancer) -> None:
        for pool in self.lb_pools(lb.id):
            self._remove_pool(pool)
        for li in self.lb_listeners(lb.id):
            self._remove_listener(li)
        self._lb_pools.pop(lb.id, None)
        self._lb_listeners.pop(lb.id, None)
        self._forget(lb, "loadbalancer")
        neutron = self._neutron()
        if neutron is None:
            return
        try:
            if lb.vip_port_owned and lb.vip_port_id:
                neutron.delete_port(lb.project_id, lb.vip_port_id)  # Octavia deletes the VIP port it made
            else:
                neutron.release_device(f"lb-{lb.id}")  # a user's port is only unbound
        except ApiError:
            pass

    # ------------------------------------------------------------------ other services
    def _neutron(self) -> Any:
        return self.region.services.get("neutron")

    def _nova(self) -> Any:
        return self.region.services.get("nova")

    def _subnet(self, project_id: str, subnet_id: str) -> Any:
        neutron = self._neutron()
        sub = None
        if neutron is not None:
            try:
                sub = neutron.get_subnet(project_id, subnet_id)
            except ApiError:
                sub = None
        if sub is None:
            raise ApiError(400, f"Subnet {subnet_id} not found.")
        return sub

    def _allocate_vip(self, lb: LoadBalancer, subnet_id: str | None, network_id: str | None,
                      port_id: str | None, address: str | None) -> None:
        neutron = self._neutron()
        if neutron is None:
            raise ApiError(503, "The networking service is not available.")
        pid = lb.project_id
        if port_id:
            port = None
            getter = getattr(neutron, "get_port", None)
            if getter is not None:
                try:
                    port = getter(pid, port_id)
                except ApiError:
                    port = None
            if port is None:
                raise ApiError(400, f"Port {port_id} not found.")
            if port.device_id and port.device_id != f"lb-{lb.id}":
                raise validation(f"Port {port_id} already in use by device {port.device_id}.")
            bind = getattr(neutron, "bind_port", None)
            if bind is not None:
                bind(port, f"lb-{lb.id}", "Octavia")
            lb.vip_port_id = port.id
            lb.vip_port_owned = False
            lb.vip_network_id = port.network_id
            ip, sub = _first_ip(port)
            lb.vip_address, lb.vip_subnet_id = ip, sub
            return
        if subnet_id:
            subnet = self._subnet(pid, subnet_id)
            if network_id and network_id != subnet.network_id:
                raise validation(f"Subnet {subnet_id} is not in network {network_id}.")
            network_id = subnet.network_id
        else:
            assert network_id
            net = None
            try:
                net = neutron.get_network(pid, network_id)
            except ApiError:
                net = None
            if net is None:
                raise ApiError(400, f"Network {network_id} not found.")
        kwargs: dict[str, Any] = {"subnet_id": subnet_id, "name": f"octavia-lb-{lb.id}",
                                  "device_id": f"lb-{lb.id}", "device_owner": "Octavia"}
        if address:
            kwargs["ip_address"] = address
        port = neutron.create_port(pid, network_id, **kwargs)
        lb.vip_port_id = port.id
        lb.vip_network_id = network_id
        ip, sub = _first_ip(port)
        lb.vip_address = ip
        lb.vip_subnet_id = subnet_id or sub

    def _network_holding(self, project_id: str, address: str, preferred: str | None) -> str | None:
        """The network a member without ``subnet_id`` lives on: the VIP's network when one of its subnets
        holds the address, else the first of the project's subnets that does (else the VIP's network)."""
        neutron = self._neutron()
        if neutron is None or not hasattr(neutron, "visible_subnets"):
            return preferred
        try:
            ip = ipaddress.ip_address(address)
            found = None
            for sn in neutron.visible_subnets(project_id):
                if ip in ipaddress.ip_network(sn.cidr, strict=False):
                    if sn.network_id == preferred:
                        return preferred
                    found = found or sn.network_id
        except (ApiError, ValueError):
            return preferred
        return found or preferred

    def server_state_at(self, network_id: str | None, address: str) -> str | None:
        """State of the Nova server whose port on ``network_id`` holds ``address`` (None: no server)."""
        neutron, nova = self._neutron(), self._nova()
        if neutron is None or nova is None or not network_id:
            return None
        try:
            port = neutron.port_by_ip(network_id, address)
        except ApiError:
            return None
        if port is None or not getattr(port, "device_id", None):
            return None
        server = nova.servers.get(port.device_id)
        if server is None or getattr(server, "removed", False):
            return None
        return server.state

    # ------------------------------------------------------------------ operating status
    def _life_op(self, kind: str, state: str) -> str:
        return self.region.cloud.lifecycles[kind].attrs(state).get("operating_status", "OFFLINE")

    def _monitoring(self, pool_id: str) -> HealthMonitor | None:
        hm = self.pool_healthmonitor(pool_id)
        if hm is None or not hm.admin_state_up or hm.state not in (ACTIVE, PENDING_UPDATE):
            return None
        return hm

    def member_status(self, m: Member) -> str:
        if m.state == ERROR:
            return "ERROR"
        if not m.admin_state_up:
            return "OFFLINE"
        hm = self._monitoring(m.pool_id)
        if hm is None:
            return "NO_MONITOR"
        if m.state == PENDING_CREATE:
            return "OFFLINE"
        state = self.server_state_at(m.network_id, m.monitor_address or m.address)
        return "ONLINE" if state in SERVER_UP_STATES else "ERROR"

    def healthmonitor_status(self, hm: HealthMonitor) -> str:
        if hm.state in (ACTIVE, PENDING_UPDATE, PENDING_DELETE):
            return "ONLINE" if hm.admin_state_up else "OFFLINE"
        return self._life_op("healthmonitor", hm.state)

    def pool_status(self, pool: Pool) -> str:
        if pool.state not in (ACTIVE, PENDING_UPDATE, PENDING_DELETE):
            return self._life_op("pool", pool.state)
        if not pool.admin_state_up:
            return "OFFLINE"
        return aggregate(self.member_status(m) for m in self.pool_members(pool.id))

    def listener_status(self, li: Listener) -> str:
        if li.state not in (ACTIVE, PENDING_UPDATE, PENDING_DELETE):
            return self._life_op("listener", li.state)
        if not li.admin_state_up:
            return "OFFLINE"
        pool = self.pools.get(li.default_pool_id) if li.default_pool_id else None
        return self.pool_status(pool) if pool is not None else "ONLINE"

    def lb_status(self, lb: LoadBalancer) -> str:
        if lb.state not in (ACTIVE, PENDING_UPDATE, PENDING_DELETE):
            return self._life_op("loadbalancer", lb.state)
        if not lb.admin_state_up:
            return "OFFLINE"
        return aggregate(self.pool_status(p) for p in self.lb_pools(lb.id))

    # ------------------------------------------------------------------ load balancers
    def create_lb(self, project_id: str, *, name: str = "", description: str = "", admin_state_up: bool = True,
                  vip_subnet_id: str | None = None, vip_network_id: str | None = None,
                  vip_port_id: str | None = None, vip_address: str | None = None,
                  vip_qos_policy_id: str | None = None, provider: str | None = None,
                  flavor_id: str | None = None, availability_zone: str | None = None,
                  tags: list[str] | None = None) -> LoadBalancer:
        if not (vip_subnet_id or vip_network_id or vip_port_id):
            raise ApiError(400, "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, "
                                "vip_subnet_id.")
        if provider not in (None, "amphora", "octavia"):
            raise ApiError(400, f"Provider '{provider}' is not enabled.")
        if flavor_id is not None:
            raise ApiError(400, f"Flavor {flavor_id} not found.")
        if availability_zone is not None and availability_zone not in self.region.zones:
            raise ApiError(400, f"Availability Zone {availability_zone} not found.")
        self._check_quota(project_id, "loadbalancer")
        lb = LoadBalancer(id=self.region.cloud.new_id(), project_id=project_id, name=name,
                          description=description, admin_state_up=admin_state_up,
                          vip_qos_policy_id=vip_qos_policy_id, provider=provider or "amphora",
                          availability_zone=availability_zone, tags=list(tags or []))
        self._allocate_vip(lb, vip_subnet_id, vip_network_id, vip_port_id, vip_address)
        lb.updated_at = lb.created_at
        self.loadbalancers[lb.id] = lb
        self._lb_listeners[lb.id] = {}
        self._lb_pools[lb.id] = {}
        self._used[(project_id, "loadbalancer")] += 1
        self._enter(lb, PENDING_CREATE)
        return lb

    def update_lb(self, project_id: str, lb_id: str, changes: dict[str, Any]) -> LoadBalancer:
        lb = self.get_lb(project_id, lb_id)
        self._guard(lb)
        _apply(lb, changes)
        self._enter(lb, PENDING_UPDATE)
        return lb

    def failover_lb(self, project_id: str, lb_id: str) -> LoadBalancer:
        lb = self.get_lb(project_id, lb_id)
        self._guard(lb, deleting_lb=True)  # a failover is how an ERROR load balancer is repaired
        lb.touch()
        self._enter(lb, PENDING_UPDATE)
        return lb

    def delete_lb(self, project_id: str, lb_id: str, *, cascade: bool = False) -> None:
        lb = self.get_lb(project_id, lb_id)
        self._guard(lb, deleting_lb=True)
        if not cascade and (self._lb_listeners.get(lb.id) or self._lb_pools.get(lb.id)):
            raise validation(f"Cannot delete Load Balancer {lb.id} - it has children")
        lb.updated_at = time.time()
        self._enter(lb, PENDING_DELETE)

    # ------------------------------------------------------------------ listeners
    def create_listener(self, project_id: str, loadbalancer_id: str, protocol: str, protocol_port: int,
                        **attrs: Any) -> Listener:
        lb = self.get_lb(project_id, loadbalancer_id)
        self._guard(lb)
        for other in self.lb_listeners(lb.id):
            if other.protocol_port == protocol_port and _l4(other.protocol) == _l4(protocol):
                raise ApiError(409, "Another Listener on this Load Balancer is already using protocol_port "
                                    f"{protocol_port}")
        if protocol == "TERMINATED_HTTPS" and not (attrs.get("default_tls_container_ref")
                                                   or attrs.get("sni_container_refs")):
            raise validation("An SNI or default certificate container reference must be provided for "
                             "TERMINATED_HTTPS listeners.")
        pool = None
        if attrs.get("default_pool_id"):
            pool = self._default_pool_for(project_id, lb, protocol, attrs["default_pool_id"])
        self._check_quota(project_id, "listener")
        li = Listener(id=self.region.cloud.new_id(), project_id=project_id, loadbalancer_id=lb.id,
                      protocol=protocol, protocol_port=protocol_port, **attrs)
        li.updated_at = li.created_at
        self.listeners[li.id] = li
        self._lb_listeners.setdefault(lb.id, {})[li.id] = None
        if pool is not None:
            self._pool_listeners.setdefault(pool.id, {})[li.id] = None
        self._used[(project_id, "listener")] += 1
        self._child_op(li, PENDING_CREATE)
        return li

    def _default_pool_for(self, project_id: str, lb: LoadBalancer, protocol: str, pool_id: str) -> Pool:
        pool = self.pools.get(pool_id)
        if pool is None or pool.project_id != project_id:
            raise ApiError(404, f"Pool {pool_id} not found.")
        if pool.loadbalancer_id != lb.id:
            raise validation(f"Pool {pool_id} is not on Load Balancer {lb.id}.")
        if pool.protocol not in LISTENER_POOL_PROTOCOLS.get(protocol, ()):
            raise validation(f"The pool protocol '{pool.protocol}' is invalid while the listener protocol is "
                             f"'{protocol}'.")
        return pool

    def update_listener(self, project_id: str, listener_id: str, changes: dict[str, Any]) -> Listener:
        li = self.get_listener(project_id, listener_id)
        lb = self.loadbalancers[li.loadbalancer_id]
        self._guard(lb)
        self._guard_obj("listener", li)
        if "default_pool_id" in changes and changes["default_pool_id"] != li.default_pool_id:
            new = changes["default_pool_id"]
            if new:
                self._default_pool_for(project_id, lb, li.protocol, new)
            if li.default_pool_id:
                self._pool_listeners.get(li.default_pool_id, {}).pop(li.id, None)
            if new:
                self._pool_listeners.setdefault(new, {})[li.id] = None
        _apply(li, changes)
        self._child_op(li, PENDING_UPDATE)
        return li

    def delete_listener(self, project_id: str, listener_id: str) -> None:
        li = self.get_listener(project_id, listener_id)
        self._guard(self.loadbalancers[li.loadbalancer_id])
        self._guard_obj("listener", li)
        li.updated_at = time.time()
        self._child_op(li, PENDING_DELETE)

    # ------------------------------------------------------------------ pools
    def create_pool(self, project_id: str, *, protocol: str, lb_algorithm: str, listener_id: str | None = None,
                    loadbalancer_id: str | None = None, **attrs: Any) -> Pool:
        if not listener_id and not loadbalancer_id:
            raise validation("Must provide at least one of: listener_id, loadbalancer_id")
        listener = None
        if listener_id:
            listener = self.listeners.get(listener_id)
            if listener is None or listener.project_id != project_id:
                raise not_found("listener", listener_id)
            if loadbalancer_id and loadbalancer_id != listener.loadbalancer_id:
                raise validation(f"Listener {listener_id} is not on Load Balancer {loadbalancer_id}.")
            loadbalancer_id = listener.loadbalancer_id
        assert loadbalancer_id
        lb = self.get_lb(project_id, loadbalancer_id)
        self._guard(lb)
        if listener is not None:
            self._guard_obj("listener", listener)
            if listener.default_pool_id:
                raise ApiError(409, "This listener already has a default pool")
            if protocol not in LISTENER_POOL_PROTOCOLS.get(listener.protocol, ()):
                raise validation(f"The pool protocol '{protocol}' is invalid while the listener protocol is "
                                 f"'{listener.protocol}'.")
        sp = attrs.get("session_persistence")
        if sp is not None and protocol == "UDP" and sp.get("type") not in (None, "SOURCE_IP"):
            raise validation("Session persistence of type SOURCE_IP only is supported for UDP pools.")
        self._check_quota(project_id, "pool")
        pool = Pool(id=self.region.cloud.new_id(), project_id=project_id, loadbalancer_id=lb.id,
                    protocol=protocol, lb_algorithm=lb_algorithm, **attrs)
        pool.updated_at = pool.created_at
        self.pools[pool.id] = pool
        self._lb_pools.setdefault(lb.id, {})[pool.id] = None
        self._pool_members[pool.id] = {}
        self._pool_listeners[pool.id] = {}
        if listener is not None:
            listener.default_pool_id = pool.id
            self._pool_listeners[pool.id][listener.id] = None
        self._used[(project_id, "pool")] += 1
        self._child_op(pool, PENDING_CREATE)
        return pool

    def update_pool(self, project_id: str, pool_id: str, changes: dict[str, Any]) -> Pool:
        pool = self.get_pool(project_id, pool_id)
        self._guard(self.loadbalancers[pool.loadbalancer_id])
        self._guard_obj("pool", pool)
        _apply(pool, changes)
        self._child_op(pool, PENDING_UPDATE)
        return pool

    def delete_pool(self, project_id: str, pool_id: str) -> None:
        pool = self.get_pool(project_id, pool_id)
        self._guard(self.loadbalancers[pool.loadbalancer_id])
        self._guard_obj("pool", pool)
        pool.updated_at = time.time()
        self._child_op(pool, PENDING_DELETE)

    # ------------------------------------------------------------------ members
    def create_member(self, project_id: str, pool_id: str, *, address: str, protocol_port: int,
                      subnet_id: str | None = None, **attrs: Any) -> Member:
        pool = self.get_pool(project_id, pool_id)
        lb = self.loadbalancers[pool.loadbalancer_id]
        self._guard(lb)
        self._guard_obj("pool", pool)
        if (pool.id, address, protocol_port) in self._member_key:
            raise ApiError(409, f"Another member on this pool is already using ip {address} on protocol_port "
                                f"{protocol_port}")
        if subnet_id:
            network_id = self._subnet(project_id, subnet_id).network_id
        else:
            network_id = self._network_holding(project_id, address, lb.vip_network_id)
        self._check_quota(project_id, "member")
        m = Member(id=self.region.cloud.new_id(), project_id=project_id, pool_id=pool.id, address=address,
                   protocol_port=protocol_port, subnet_id=subnet_id, network_id=network_id, **attrs)
        m.updated_at = m.created_at
        self.members[m.id] = m
        self._pool_members.setdefault(pool.id, {})[m.id] = None
        self._member_key[(pool.id, address, protocol_port)] = m.id
        self._used[(project_id, "member")] += 1
        self._child_op(m, PENDING_CREATE)
        return m

    def update_member(self, project_id: str, pool_id: str, member_id: str, changes: dict[str, Any]) -> Member:
        m = self.get_member(project_id, pool_id, member_id)
        self._guard(self.lb_of(m))
        self._guard_obj("member", m)
        _apply(m, changes)
        self._child_op(m, PENDING_UPDATE)
        return m

    def delete_member(self, project_id: str, pool_id: str, member_id: str) -> None:
        m = self.get_member(project_id, pool_id, member_id)
        self._guard(self.lb_of(m))
        self._guard_obj("member", m)
        m.updated_at = time.time()
        self._child_op(m, PENDING_DELETE)

    # ------------------------------------------------------------------ health monitors
    def create_healthmonitor(self, project_id: str, pool_id: str, *, type: str, delay: int, timeout: int,
                             max_retries: int, **attrs: Any) -> HealthMonitor:
        pool = self.pools.get(pool_id)
        if pool is None or pool.project_id != project_id:
            raise not_found("pool", pool_id)
        self._guard(self.loadbalancers[pool.loadbalancer_id])
        self._guard_obj("pool", pool)
        if pool.id in self._pool_hm:
            raise ApiError(409, "This pool already has a health monitor")
        if pool.protocol == "UDP" and type not in UDP_HM_TYPES:
            raise validation(f"The associated pool protocol is UDP, so only a {', '.join(UDP_HM_TYPES)} type "
                             "health monitor is supported.")
        self._check_quota(project_id, "healthmonitor")
        hm = HealthMonitor(id=self.region.cloud.new_id(), project_id=project_id, pool_id=pool.id, type=type,
                           delay=delay, timeout=timeout, max_retries=max_retries, **attrs)
        hm.updated_at = hm.created_at
        self.healthmonitors[hm.id] = hm
        self._pool_hm[pool.id] = hm.id
        self._used[(project_id, "healthmonitor")] += 1
        self._child_op(hm, PENDING_CREATE)
        return hm

    def update_healthmonitor(self, project_id: str, hm_id: str, changes: dict[str, Any]) -> HealthMonitor:
        hm = self.get_healthmonitor(project_id, hm_id)
        self._guard(self.lb_of(hm))
        self._guard_obj("healthmonitor", hm)
        delay = changes.get("delay", hm.delay)
        timeout = changes.get("timeout", hm.timeout)
        if timeout > delay:
            raise validation(f"The health monitor timeout ({timeout}) must be less than or equal to its delay "
                             f"({delay}).")
        _apply(hm, changes)
        self._child_op(hm, PENDING_UPDATE)
        return hm

    def delete_healthmonitor(self, project_id: str, hm_id: str) -> None:
        hm = self.get_healthmonitor(project_id, hm_id)
        self._guard(self.lb_of(hm))
        self._guard_obj("healthmonitor", hm)
        hm.updated_at = time.time()
        self._child_op(hm, PENDING_DELETE)


def _l4(protocol: str) -> str:
    """Listeners conflict on a port when they share the transport: TCP-based, UDP or SCTP."""
    return protocol if protocol in ("UDP", "SCTP") else "TCP"


def _apply(obj: Any, changes: dict[str, Any]) -> None:
    for k, v in changes.items():
        setattr(obj, k, v)
    obj.touch()


def _first_ip(port: Any) -> tuple[str | None, str | None]:
    """``(ip_address, subnet_id)`` of a Neutron port's first fixed IP (objects or dicts)."""
    ips = getattr(port, "fixed_ips", None) or []
    for fip in ips:
        if isinstance(fip, dict):
            return fip.get("ip_address"), fip.get("subnet_id")
        ip = getattr(fip, "ip_address", None)
        if ip is not None:
            return ip, getattr(fip, "subnet_id", None)
        if isinstance(fip, (list, tuple)) and len(fip) == 2:
            return fip[1], fip[0]
    return getattr(port, "ip_address", None), getattr(port, "subnet_id", None)
