"""Neutron's stored objects (JSON-friendly dataclasses the snapshot rebuilds with ``cls(**fields)``),
the protocol and quota constants, and Neutron's not-found errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource


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
    subnetpool_id: str | None = None


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
    extra_dhcp_opts: list[dict[str, Any]] = field(default_factory=list)   # opt_name, opt_value, ip_version
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
               "security_group_rules": "security_group_rule", "floatingips": "floatingip", "routers": "router",
               "subnetpools": "subnetpool"}
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
        "SubnetPoolNotFound": f"Subnet pool {oid} could not be found.",
    }
    return ApiError(404, messages[kind], code=kind)



@dataclass(kw_only=True)
class SubnetPool(Resource):
    """A pool of prefixes subnets are carved from (subnet_allocation): ``prefixes`` kept collapsed."""
    ip_version: int = 4
    prefixes: list[str] = field(default_factory=list)
    default_prefixlen: int = 8
    min_prefixlen: int = 8
    max_prefixlen: int = 32
    shared: bool = False
    is_default: bool = False
    default_quota: int | None = None
    address_scope_id: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)
