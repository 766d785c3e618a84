"""Neutron subnet pools of one region (a part of ``NeutronState``): prefixes that subnets are carved from
(the subnet_allocation extension). A subnet asks for a pool and a prefix length (or a CIDR inside the
pool) and gets the first free block; a pool with subnets cannot go, and its prefixes only grow."""

from __future__ import annotations

import ipaddress
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.services.neutron.ipam import invalid, parse_cidr
from cloudtwin.services.neutron.resources import Subnet, SubnetPool, _not_found

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _collapse(nets: list[Net]) -> list[str]:
    return [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[arg-type]


class SubnetPoolMethods:
    """Subnet pools: create/update/delete with Neutron's prefix rules, and allocation for subnets."""

    def get_subnetpool(self, project_id: str, pool_id: str) -> SubnetPool:
        pool = self.subnetpools.get(pool_id)
        if pool is None or not (pool.project_id == project_id or pool.shared):
            raise _not_found("SubnetPoolNotFound", pool_id)
        return pool

    def visible_subnetpools(self, project_id: str) -> list[SubnetPool]:
        return [p for p in self.subnetpools.values() if p.project_id == project_id or p.shared]

    def _pool_prefixes(self, prefixes: Any) -> list[Net]:
        if not isinstance(prefixes, list) or not prefixes:
            raise invalid("prefixes must be a non-empty list of CIDRs.")
        nets = [parse_cidr(p, "prefixes") for p in prefixes]
        if len({n.version for n in nets}) > 1:
            raise invalid("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
        return nets

    def _prefix_bounds(self, version: int, default: Any, low: Any, high: Any) -> tuple[int, int, int]:
        top = 32 if version == 4 else 128
        low = int(low) if low is not None else (8 if version == 4 else 64)
        high = int(high) if high is not None else top
        default = int(default) if default is not None else low
        if not 0 <= low <= default <= high <= top:
            raise invalid(f"Illegal prefix bounds: min_prefixlen={low}, default_prefixlen={default}, "
                          f"max_prefixlen={high}.")
        return default, low, high

    def add_subnetpool(self, project_id: str, *, name: str = "", prefixes: Any = None, description: str = "",
                       default_prefixlen: Any = None, min_prefixlen: Any = None, max_prefixlen: Any = None,
                       shared: bool = False, is_default: bool = False, default_quota: int | None = None,
                       address_scope_id: str | None = None, tags: list[str] | None = None) -> SubnetPool:
        self.ensure_project(project_id)
        nets = self._pool_prefixes(prefixes)
        version = nets[0].version
        default, low, high = self._prefix_bounds(version, default_prefixlen, min_prefixlen, max_prefixlen)
        if any(n.prefixlen < low for n in nets):
            raise invalid(f"Prefix length of a pool prefix must be at least min_prefixlen {low}.")
        self._check_quota("subnetpools", project_id)
        pool = SubnetPool(id=self._new_id(), project_id=project_id, name=name, description=description,
                          ip_version=version, prefixes=_collapse(nets), default_prefixlen=default,
                          min_prefixlen=low, max_prefixlen=high, shared=shared, is_default=is_default,
                          default_quota=default_quota, address_scope_id=address_scope_id, tags=list(tags or []))
        self.subnetpools[pool.id] = pool
        self._own("subnetpools", pool)
        return pool

    def update_subnetpool(self, project_id: str, pool_id: str, changes: dict[str, Any]) -> SubnetPool:
        pool = self.get_subnetpool(project_id, pool_id)
        if "prefixes" in changes:
            nets = self._pool_prefixes(changes.pop("prefixes"))
            if nets[0].version != pool.ip_version:
                raise invalid("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
            old = [ipaddress.ip_network(p) for p in pool.prefixes]
            if not all(any(o.subnet_of(n) for n in nets) for o in old):  # type: ignore[arg-type]
                raise invalid("Illegal update to prefixes: existing prefixes must be kept (they may only grow).")
            pool.prefixes = _collapse(nets)
        bounds = {k: changes.pop(k) for k in ("default_prefixlen", "min_prefixlen", "max_prefixlen") if k in changes}
        if bounds:
            pool.default_prefixlen, pool.min_prefixlen, pool.max_prefixlen = self._prefix_bounds(
                pool.ip_version, bounds.get("default_prefixlen", pool.default_prefixlen),
                bounds.get("min_prefixlen", pool.min_prefixlen), bounds.get("max_prefixlen", pool.max_prefixlen))
        for k, v in changes.items():
            setattr(pool, k, v)
        pool.touch()
        return pool

    def delete_subnetpool(self, project_id: str, pool_id: str) -> None:
        pool = self.get_subnetpool(project_id, pool_id)
        if pool.project_id != project_id:
            raise _not_found("SubnetPoolNotFound", pool_id)
        if any(s.subnetpool_id == pool.id for s in self.subnets.values()):
            raise ApiError(409, f"Unable to complete operation on subnet pool {pool.id}. Subnet pool has "
                                "existing allocations.", code="SubnetPoolInUse")
        self._disown("subnetpools", pool)
        del self.subnetpools[pool.id]
        pool.removed = True

    def allocate_from_pool(self, pool: SubnetPool, cidr: Any, prefixlen: Any) -> str:
        """The subnet's CIDR from ``pool``: ``cidr`` if it lies free inside the pool, else the first free
        block of ``prefixlen`` (the pool's default)."""
        taken = [ipaddress.ip_network(s.cidr) for s in self.subnets.values() if s.subnetpool_id == pool.id]
        pool_nets = [ipaddress.ip_network(p) for p in pool.prefixes]
        if cidr is not None:
            want = parse_cidr(cidr)
            if not any(want.version == n.version and want.subnet_of(n) for n in pool_nets):  # type: ignore[arg-type]
                raise invalid(f"Cidr {cidr} is not within the prefixes of subnet pool {pool.id}.")
            if any(want.overlaps(t) for t in taken):
                raise invalid(f"Cidr {cidr} overlaps an allocation of subnet pool {pool.id}.")
            return str(want)
        length = int(prefixlen) if prefixlen is not None else pool.default_prefixlen
        if not pool.min_prefixlen <= length <= pool.max_prefixlen:
            raise invalid(f"Unsupported prefix length {length}: the pool allows {pool.min_prefixlen} to "
                          f"{pool.max_prefixlen}.")
        for net in pool_nets:
            if length < net.prefixlen:
                continue
            for block in net.subnets(new_prefix=length):
                if not any(block.overlaps(t) for t in taken):
                    return str(block)
        raise ApiError(409, f"Unable to allocate subnet with prefix length {length}, maximum allowed prefix is "
                            f"{pool.max_prefixlen}: subnet pool {pool.id} is exhausted.",
                       code="SubnetAllocationError")

    def subnets_of_pool(self, pool_id: str) -> list[Subnet]:
        return [s for s in self.subnets.values() if s.subnetpool_id == pool_id]
