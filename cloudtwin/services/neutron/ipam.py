"""Neutron's address rules: strict CIDR/IP parsing with Neutron's messages, default allocation pools,
and the O(1) per-subnet address pool."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError


def invalid(message: str) -> ApiError:
    """400 InvalidInput "Invalid input for operation: ..." (Neutron's wrapper for semantic checks)."""
    return ApiError(400, f"Invalid input for operation: {message}", code="InvalidInput")


def invalid_attr(attr: str, reason: str) -> ApiError:
    """400 "Invalid input for <attr>. Reason: <reason>." (attribute validation)."""
    return ApiError(400, f"Invalid input for {attr}. Reason: {reason}.", code="InvalidInput")


def parse_cidr(cidr: Any, attr: str = "cidr") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A strict CIDR with Neutron's messages for garbage and for host bits set."""
    if not isinstance(cidr, str) or "/" not in cidr:
        raise invalid_attr(attr, f"'{cidr}' is not a valid IP subnet")
    try:
        loose = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise invalid_attr(attr, f"'{cidr}' is not a valid IP subnet") from None
    if str(loose) != cidr.strip() and ipaddress.ip_interface(cidr.strip()).ip != loose.network_address:
        raise invalid_attr(attr, f"'{cidr}' isn't a recognized IP subnet cidr, '{loose}' is recommended")
    return loose


def parse_ip(value: Any, attr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise invalid_attr(attr, f"'{value}' is not a valid IP address")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise invalid_attr(attr, f"'{value}' is not a valid IP address") from None


# ------------------------------------------------------------------------------------------------
# IP allocation
# ------------------------------------------------------------------------------------------------


class IpPool:
    """The allocatable addresses of one subnet: a cursor over the (sorted, inclusive) pool ranges plus a
    set of released addresses. ``take`` is O(1) amortised: the cursor passes each address once, later
    allocations reuse released ones. ``used`` holds every address in use on the subnet (also outside the
    pools), so explicit requests are checked in O(1)."""

    __slots__ = ("ranges", "ri", "cur", "freed", "used")

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = sorted(ranges)
        self.ri = 0
        self.cur = self.ranges[0][0] if self.ranges else 0
        self.freed: set[int] = set()
        self.used: set[int] = set()

    def in_pool(self, ip: int) -> bool:
        for a, b in self.ranges:
            if a <= ip <= b:
                return True
        return False

    def take(self) -> int | None:
        ranges, used = self.ranges, self.used
        while self.ri < len(ranges):
            a, b = ranges[self.ri]
            cur = max(self.cur, a)
            while cur <= b:
                if cur not in used:
                    used.add(cur)
                    self.cur = cur + 1
                    return cur
                cur += 1
            self.ri += 1
            self.cur = cur
        while self.freed:
            ip = self.freed.pop()
            if ip not in used:
                used.add(ip)
                return ip
        return None

    def claim(self, ip: int) -> None:
        self.used.add(ip)

    def release(self, ip: int) -> None:
        if ip in self.used:
            self.used.discard(ip)
            if self.in_pool(ip):
                self.freed.add(ip)

    def available(self) -> int:
        total = sum(b - a + 1 for a, b in self.ranges)
        return total - sum(1 for ip in self.used if self.in_pool(ip))


def default_pools(net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                  gateway: str | None) -> list[dict[str, str]]:
    """Neutron's default allocation pools: every host address except the gateway."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        if net.prefixlen >= 31:
            lo, hi = first, last
        else:
            lo, hi = first + 1, last - 1
    else:
        lo, hi = first + 1, last
    pools: list[tuple[int, int]] = []
    gw = int(ipaddress.ip_address(gateway)) if gateway else None
    if gw is not None and lo <= gw <= hi:
        if lo <= gw - 1:
            pools.append((lo, gw - 1))
        if gw + 1 <= hi:
            pools.append((gw + 1, hi))
    elif lo <= hi:
        pools.append((lo, hi))
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    return [{"start": str(cls(a)), "end": str(cls(b))} for a, b in pools]


IPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless", "slaac")


def check_ipv6_modes(ip_version: int, prefixlen: int, enable_dhcp: bool, ra_mode: str | None,
                     address_mode: str | None) -> None:
    """Neutron's rules for ``ipv6_ra_mode``/``ipv6_address_mode``: known values, IPv6 only, DHCP on,
    the same value when both are set, and a /64 for the EUI-64 modes."""
    for attr, mode in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", address_mode)):
        if mode is not None and mode not in IPV6_MODES:
            raise invalid_attr(attr, f"'{mode}' is not in {list(IPV6_MODES)}")
    if ra_mode is None and address_mode is None:
        return
    if ip_version != 6:
        raise invalid(f"{'ipv6_ra_mode' if ra_mode else 'ipv6_address_mode'} is not valid when ip_version is 4.")
    if not enable_dhcp:
        raise invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.")
    if ra_mode and address_mode and ra_mode != address_mode:
        raise invalid(f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{address_mode}' is not "
                      "valid. If both attributes are set, they must be the same value.")
    if (address_mode or ra_mode) in ("slaac", "dhcpv6-stateless") and prefixlen != 64:
        raise invalid(f"Invalid CIDR prefix /{prefixlen} for IPv6 address mode. OpenStack uses the EUI-64 "
                      "address format, which requires the prefix to be /64.")
