"""Neutron networks and subnets of one region (a part of ``NeutronState``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.profiles import AUTO_PUBLIC_CIDR
from cloudtwin.services.neutron.ipam import (IpPool, check_ipv6_modes, default_pools, invalid, invalid_attr, parse_cidr,
                                            parse_ip)
from cloudtwin.services.neutron.resources import Network, Subnet, FloatingIP


class NetworkMethods:
    """Networks and subnets: CIDR validation, overlap checks, allocation pools, the public network."""

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
        if cidr == AUTO_PUBLIC_CIDR:
            cidr = self.region.twin.allocate_public_cidr()
        network = ipaddress.ip_network(cidr, strict=False)
        # the gateway (first host) stands for the test client and the last host for the twin's host
        # (the data plane's link from the host shell): floating IPs come from between them
        hosts = [network.network_address + 2, network.broadcast_address - 2] if network.version == 4 else []
        pools = ([{"start": str(hosts[0]), "end": str(hosts[1])}] if hosts and hosts[0] <= hosts[1] else None)
        sn = self._add_subnet(owner, net, cidr=str(network), ip_version=network.version, allocation_pools=pools,
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

    def owned_subnet(self, project_id: str, subnet_id: str) -> Subnet:
        sn = self.get_subnet(project_id, subnet_id)
        if sn.project_id != project_id:
            raise ApiError(403, f"The request you have made requires authorization on subnet {subnet_id}.",
                           code="PolicyNotAuthorized")
        return sn

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
        if net.external:      # unassociated floating IPs go with their external network
            for fip in [f for f in self.floatingips.values() if f.floating_network_id == net.id]:
                if fip.port_id is None:
                    self.delete_floatingip(fip.project_id, fip.id)
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

    def add_subnet(self, project_id: str, network_id: str, *, cidr: Any = None, ip_version: Any,
                   gateway_ip: Any = "", allocation_pools: list[dict[str, Any]] | None = None,
                   name: str = "", description: str = "", enable_dhcp: bool = True,
                   dns_nameservers: list[str] | None = None, host_routes: list[dict[str, str]] | None = None,
                   ipv6_ra_mode: str | None = None, ipv6_address_mode: str | None = None,
                   tags: list[str] | None = None, subnetpool_id: str | None = None,
                   prefixlen: Any = None) -> Subnet:
        """``gateway_ip``: "" = default (first host), None = no gateway, else the address. With
        ``subnetpool_id`` the CIDR comes from the pool (``cidr`` inside it, or a free ``prefixlen`` block)."""
        self.ensure_project(project_id)
        net = self.get_network(project_id, network_id)
        if net.project_id != project_id:
            raise ApiError(403, f"Tenant {project_id} not allowed to create subnet on this network",
                           code="PolicyNotAuthorized")
        if subnetpool_id is not None:
            pool = self.get_subnetpool(project_id, subnetpool_id)  # type: ignore[attr-defined]
            if ip_version != pool.ip_version:
                raise invalid(f"ip_version {ip_version} does not match subnet pool {pool.id}'s {pool.ip_version}.")
            cidr = self.allocate_from_pool(pool, cidr, prefixlen)  # type: ignore[attr-defined]
        elif cidr is None:
            raise ApiError(400, "Bad subnets request: a subnetpool must be specified in the absence of a cidr.",
                           code="BadRequest")
        sn = self._add_subnet(project_id, net, cidr=cidr, ip_version=ip_version, gateway_ip=gateway_ip,
                                allocation_pools=allocation_pools, name=name, description=description,
                                enable_dhcp=enable_dhcp, dns_nameservers=dns_nameservers,
                                host_routes=host_routes, ipv6_ra_mode=ipv6_ra_mode,
                                ipv6_address_mode=ipv6_address_mode, tags=tags)
        sn.subnetpool_id = subnetpool_id
        return sn

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
        check_ipv6_modes(ip_version, network.prefixlen, enable_dhcp, ipv6_ra_mode, ipv6_address_mode)
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
        sn = self.owned_subnet(project_id, subnet_id)
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
        sn = self.owned_subnet(project_id, subnet_id)
        if sn.ip_version == 6 and sn.ipv6_address_mode in ("slaac", "dhcpv6-stateless"):
            self._drop_auto_addresses(sn)
        if self._subnet_ports.get(sn.id):
            raise ApiError(409, f"Unable to complete operation on subnet {sn.id}: One or more ports have an "
                                "IP allocation from this subnet.", code="SubnetInUse")
        self._drop_subnet(sn)

    def _drop_auto_addresses(self, sn: Subnet) -> None:
        """Deleting an auto-address subnet takes its addresses off the ports (not off router ports)."""
        for port in list(self.ports.values()):
            if port.network_id != sn.network_id or port.device_owner.startswith("network:router"):
                continue
            dropped = [f for f in port.fixed_ips if f["subnet_id"] == sn.id]
            if dropped:
                self._unindex_ips_list(port, dropped)
                port.fixed_ips = [f for f in port.fixed_ips if f["subnet_id"] != sn.id]
                port.touch()

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
