"""What the twin's state says a server's network looks like: its interfaces (one per Neutron port: MAC,
fixed IPs with their subnet prefix, floating IPs) and its firewall (the port's security-group rules with
every remote group resolved to addresses).

Plain functions over ``region.neutron``: the manager compares the result with what it applied last and
only touches the kernel when something differs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cloudtwin.dataplane.netns import MAX_NICS, PUBLIC_IF
from cloudtwin.dataplane.nft import PortPolicy, RuleSpec
from cloudtwin.services.neutron.models import IP_PROTOCOL_MAP


@dataclass(frozen=True)
class Nic:
    """One Neutron port of the server as interface ``eth<index>`` on its network's bridge."""

    port_id: str
    network_id: str
    mac: str
    addresses: tuple[tuple[str, int], ...]      # (ip, prefix length of its subnet)
    floating: tuple[str, ...]                   # floating IPv4 addresses of this port


@dataclass(frozen=True)
class VmLayout:
    nics: tuple[Nic, ...]

    @property
    def private(self) -> tuple[tuple[str, str, str, tuple[tuple[str, int], ...]], ...]:
        """Everything but the floating IPs: when only those change, only the public side is re-made."""
        return tuple((n.port_id, n.network_id, n.mac, n.addresses) for n in self.nics)

    @property
    def floating(self) -> tuple[str, ...]:
        return tuple(ip for nic in self.nics for ip in nic.floating)

    @property
    def fixed(self) -> tuple[str, ...]:
        return tuple(ip for nic in self.nics for ip, _ in nic.addresses)


def _prefixlen(neutron: Any, subnet_id: str, ip: str) -> int:
    sn = neutron.subnets.get(subnet_id)
    if sn is not None:
        return ipaddress.ip_network(sn.cidr).prefixlen
    return 32 if ipaddress.ip_address(ip).version == 4 else 128


def vm_layout(neutron: Any, server_id: str) -> VmLayout:
    nics = []
    for port in sorted(neutron.ports_of_device(server_id), key=lambda p: (p.created_at, p.id))[:MAX_NICS]:
        addrs = tuple((f["ip_address"], _prefixlen(neutron, f.get("subnet_id", ""), f["ip_address"]))
                      for f in port.fixed_ips)
        fips = tuple(sorted(f.floating_ip_address for f in neutron.floatingips_of_port(port.id)
                            if f.floating_ip_address))
        nics.append(Nic(port.id, port.network_id, port.mac_address, addrs, fips))
    return VmLayout(tuple(nics))


def public_gateway(neutron: Any) -> tuple[str, int, str | None]:
    """``(client ip, prefix length, host ip)`` of the region's public subnet (made if need be): the
    test client holds the gateway address and the twin's host the last host address, both kept out of
    the floating-IP pool. The host address is None on an IPv6 or a too small public subnet."""
    sn = neutron.subnets.get(neutron.ensure_public_network() and neutron.public_subnet_id)
    net = ipaddress.ip_network(sn.cidr)
    gateway = sn.gateway_ip or str(next(iter(net.hosts()), net.network_address))
    host = str(net.broadcast_address - 1) if net.version == 4 and net.num_addresses >= 8 else None
    in_pool = host is not None and any(ipaddress.ip_address(p["start"]) <= ipaddress.ip_address(host)
                                       <= ipaddress.ip_address(p["end"]) for p in sn.allocation_pools)
    return gateway, net.prefixlen, None if in_pool else host


# ---- firewall ---------------------------------------------------------------------------------------

def _protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    number = IP_PROTOCOL_MAP.get(protocol)
    if number is None:
        number = int(protocol) if protocol.isdigit() else None
    return number or None          # 0 ("ip", "hopopt") matches every protocol, as Neutron treats it


def group_members(neutron: Any, group_id: str, version: int) -> tuple[str, ...]:
    """Addresses of the ports in ``group_id``: their fixed IPs and their floating IPs."""
    out: set[str] = set()
    for port in neutron.ports_of_security_group(group_id):
        for f in port.fixed_ips:
            if ipaddress.ip_address(f["ip_address"]).version == version:
                out.add(f["ip_address"])
        if version == 4:
            out.update(f.floating_ip_address for f in neutron.floatingips_of_port(port.id) if f.floating_ip_address)
    return tuple(sorted(out, key=lambda ip: ipaddress.ip_address(ip)))


def rule_spec(neutron: Any, rule: Any) -> RuleSpec:
    version = 6 if rule.ethertype == "IPv6" else 4
    remote: tuple[str, ...] | None = None
    group = None
    if rule.remote_group_id:
        group = rule.remote_group_id
        remote = group_members(neutron, rule.remote_group_id, version)
    elif rule.remote_address_group_id:
        remote = ()                    # address groups are not modelled: the rule matches nothing
    elif rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        remote = None if net.prefixlen == 0 else (str(net),)
    return RuleSpec(direction=rule.direction, version=version, protocol=_protocol_number(rule.protocol),
                    port_min=rule.port_range_min, port_max=rule.port_range_max, remote=remote,
                    remote_group=group, prefix=rule.remote_ip_prefix, rule_id=rule.id)


def port_policies(neutron: Any, layout: VmLayout) -> list[PortPolicy]:
    """One policy per interface, in ``layout`` order (``eth<index>``); the public interface ``pub0``
    belongs to a one-port server's port by name, else to each port by its floating IPs."""
    out = []
    single = len(layout.nics) == 1
    for index, nic in enumerate(layout.nics):
        port = neutron.ports.get(nic.port_id)
        if port is None:
            continue
        rules: list[RuleSpec] = []
        for sg_id in port.security_groups:
            sg = neutron.security_groups.get(sg_id)
            if sg is not None:
                rules.extend(rule_spec(neutron, r) for r in neutron.rules_of(sg))
        out.append(PortPolicy(index=index, ifnames=(f"eth{index}", PUBLIC_IF) if single else (f"eth{index}",),
                              floating=() if single else nic.floating,
                              enabled=bool(port.port_security_enabled), rules=tuple(rules)))
    return out
