"""VPC handler: a VPC is a Neutron network, each subnet a Neutron subnet.

Neutron has no network CIDR: the VPC's IPv4_CIDR (and the user's tags) live in the network's
``description`` as a small JSON document; a subnet's zone lives in the subnet's ``description``.
Where the cloud serves the router API and has an external network, each VPC gets a router with its
gateway on the external network and an interface per subnet (floating IPs need it on real
OpenStack); a cloud without routers (404 on ``/routers``) is remembered and skipped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from spider_core.drivers.base import VPCHandler
from spider_core.drivers.coalesce import Coalescer
from spider_core.drivers.openstack.mapping import describe, described, tags_in, tags_out
from spider_core.calllog import RT_VPC
from spider_core.drivers.openstack.session import OpenStackError, OpenStackNotFound, OsSession, status_of
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, SubnetInfo, VPCInfo, VPCReqInfo

IN_USE_WAIT = 60.0  # seconds a delete retries while the blocking ports belong to resources going away


def vpc_not_found(net_id: str) -> DriverNotFound:
    return OpenStackNotFound(f"NetworkNotFound: Network {net_id} could not be found.", error_type="NetworkNotFound")


async def external_network(s: OsSession, name: str = "") -> str:
    """The id of the external network floating IPs come from ('' when the cloud has none)."""
    async def fetch() -> str:
        nets = await s.list_all(RT_VPC, name, "network", "/networks?router:external=True", "networks")
        nets = [n for n in nets if n.get("router:external")]
        nets.sort(key=lambda n: (n.get("name") != "public", n.get("name", "")))
        return nets[0]["id"] if nets else ""

    return await s.memo("extnet", 300, fetch)


async def ports_of(s: OsSession, rt: str, name: str, query: str) -> list[dict[str, Any]]:
    return await s.list_all(rt, name, "network", f"/ports?{query}", "ports")


async def subnet_ports(s: OsSession, rt: str, name: str, subnet_id: str) -> list[dict[str, Any]]:
    """Ports with an address on the subnet (filtered here too, in case the cloud ignores the filter)."""
    ports = await ports_of(s, rt, name, f"fixed_ips=subnet_id%3D{subnet_id}")
    return [p for p in ports if any(ip.get("subnet_id") == subnet_id for ip in p.get("fixed_ips") or [])]


async def retry_in_use(s: OsSession, rt: str, name: str, action: Any, blockers: Any,
                       timeout: float = IN_USE_WAIT) -> Any:
    """Run ``action()``; on 409 *InUse retry with backoff (bounded) while ``blockers()`` says every
    blocking port belongs to something being deleted. Any other 409 cause is raised at once."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        try:
            return await action()
        except OpenStackError as exc:
            if status_of(exc) != 409 or time.monotonic() >= deadline:
                raise
            if not await blockers():
                raise
        await asyncio.sleep(delay)
        delay = min(2.0, delay * 1.6)


async def ports_going_away(s: OsSession, rt: str, name: str, ports: list[dict[str, Any]]) -> bool:
    """True when every port that blocks a delete belongs to a server being deleted (or gone) or to a
    load balancer being deleted (or gone). Neutron-owned ports (DHCP, router) do not block."""
    servers: dict[str, dict[str, Any]] | None = None
    if sum(1 for p in ports if str(p.get("device_owner") or "").startswith("compute:")) > 3:
        # many VMs: one list instead of a GET per port (a server missing from it is gone)
        listed = await s.list_all(rt, name, "compute", "/servers/detail", "servers")
        servers = {srv["id"]: srv for srv in listed}
    for p in ports:
        owner = str(p.get("device_owner") or "")
        device = str(p.get("device_id") or "")
        if owner.startswith("network:") and owner not in ("network:floatingip",):
            continue
        if owner.startswith("compute:") and device:
            if servers is not None:
                server = servers.get(device)
                if server is None:
                    continue
            else:
                try:
                    server = (await s.call(rt, name, "compute", "GET", f"/servers/{device}"))["server"]
                except DriverNotFound:
                    continue
            if str(server.get("OS-EXT-STS:task_state") or "").lower() in ("deleting", "soft-deleting") or \
                    str(server.get("status", "")).upper() in ("DELETED", "SOFT_DELETED"):
                continue
            return False
        if "octavia" in owner.lower() or str(p.get("name", "")).startswith("octavia-lb-"):
            lb_id = device.removeprefix("lb-") if device else str(p.get("name", "")).removeprefix("octavia-lb-")
            try:
                lb = (await s.call(rt, name, "load-balancer", "GET", f"/lbaas/loadbalancers/{lb_id}"))["loadbalancer"]
            except DriverError:
                continue
            if str(lb.get("provisioning_status", "")).upper() in ("PENDING_DELETE", "DELETED"):
                continue
            return False
        return False  # an unattached port, or one of something that is not going away
    return True


BATCH = 100  # ids per coalesced GET (keeps the query string near 4 KB)


def id_query(key: str, ids: list[str]) -> str:
    return "&".join(f"{key}={quote(i, safe='')}" for i in ids)


class OsVpcHandler(VPCHandler):
    def __init__(self, session: OsSession, *, max_inflight: int = 4) -> None:
        self.s = session
        # Spider lists VPCs by getting each one: concurrent gets become one filtered list call
        self._get = Coalescer(self._fetch, vpc_not_found, max_inflight=max_inflight, max_batch=BATCH)

    # ---- mapping
    def _subnet_info(self, sn: dict[str, Any]) -> SubnetInfo:
        doc = described(sn.get("description"))
        return SubnetInfo(iid=IID(sn.get("name", ""), sn["id"]), zone=str(doc.get("Zone") or self.s.zone),
                          ipv4_cidr=sn.get("cidr", ""), tags=tags_out(doc))

    def _vpc_info(self, net: dict[str, Any], subnets: list[dict[str, Any]]) -> VPCInfo:
        doc = described(net.get("description"))
        order = {sid: i for i, sid in enumerate(net.get("subnets") or [])}
        subnets = sorted(subnets, key=lambda sn: (order.get(sn["id"], len(order)), sn.get("created_at", "")))
        cidr = str(doc.get("IPv4_CIDR") or "") or (subnets[0].get("cidr", "") if subnets else "")
        return VPCInfo(iid=IID(net.get("name", ""), net["id"]), ipv4_cidr=cidr,
                       subnets=[self._subnet_info(sn) for sn in subnets], tags=tags_out(doc))

    # ---- routers (optional)
    async def _routers_supported(self) -> bool:
        return self.s.features.get("routers", True)

    async def _router_for(self, net_id: str, name: str) -> dict[str, Any] | None:
        if not await self._routers_supported():
            return None
        try:
            routers = await self.s.list_all(RT_VPC, name, "network", f"/routers?name={quote(name)}", "routers")
        except OpenStackNotFound:
            self.s.features["routers"] = False
            return None
        for r in routers:
            if described(r.get("description")).get("Network") == net_id:
                return r
        return None

    async def _create_router(self, net_id: str, name: str) -> str:
        if not await self._routers_supported():
            return ""
        ext = await external_network(self.s, name)
        if not ext:
            return ""
        try:
            router = (await self.s.call(RT_VPC, name, "network", "POST", "/routers", {"router": {
                "name": name, "description": describe(Network=net_id),
                "external_gateway_info": {"network_id": ext}}}))["router"]
        except OpenStackNotFound:
            self.s.features["routers"] = False
            return ""
        return router["id"]

    async def _attach(self, router_id: str, subnet_id: str, name: str) -> None:
        if router_id:
            await self.s.call(RT_VPC, name, "network", "PUT", f"/routers/{router_id}/add_router_interface",
                              {"subnet_id": subnet_id})

    async def _detach(self, router_id: str, subnet_id: str, name: str) -> None:
        if router_id:
            try:
                await self.s.call(RT_VPC, name, "network", "PUT", f"/routers/{router_id}/remove_router_interface",
                                  {"subnet_id": subnet_id})
            except DriverNotFound:
                pass

    # ---- subnets
    async def _create_subnet(self, net_id: str, subnet: SubnetInfo) -> dict[str, Any]:
        body = {"subnet": {"network_id": net_id, "name": subnet.iid.name_id, "cidr": subnet.ipv4_cidr,
                           "ip_version": 6 if ":" in subnet.ipv4_cidr else 4, "enable_dhcp": True,
                           "description": describe(Zone=subnet.zone or self.s.zone, Tags=tags_in(subnet.tags))}}
        return (await self.s.call(RT_VPC, subnet.iid.name_id, "network", "POST", "/subnets", body))["subnet"]

    async def _subnets(self, net_id: str, name: str) -> list[dict[str, Any]]:
        return await self.s.list_all(RT_VPC, name, "network", f"/subnets?network_id={net_id}", "subnets")

    async def _delete_subnet(self, subnet_id: str, name: str, router_id: str = "") -> None:
        await self._detach(router_id, subnet_id, name)

        async def action() -> None:
            await self.s.call(RT_VPC, name, "network", "DELETE", f"/subnets/{subnet_id}")

        async def blockers() -> bool:
            return await ports_going_away(self.s, RT_VPC, name, await subnet_ports(self.s, RT_VPC, name, subnet_id))

        try:
            await retry_in_use(self.s, RT_VPC, name, action, blockers)
        except DriverNotFound:
            pass

    # ---- handler
    async def create_vpc(self, req: VPCReqInfo) -> VPCInfo:
        name = req.iid.name_id
        net = (await self.s.call(RT_VPC, name, "network", "POST", "/networks", {"network": {
            "name": name, "admin_state_up": True,
            "description": describe(IPv4_CIDR=req.ipv4_cidr, Tags=tags_in(req.tags))}}))["network"]
        subnets: list[dict[str, Any]] = []
        router_id = ""
        try:
            for sn in req.subnets:
                subnets.append(await self._create_subnet(net["id"], sn))
            if subnets:
                router_id = await self._create_router(net["id"], name)
                for sn in subnets:
                    await self._attach(router_id, sn["id"], name)
        except DriverError:
            await self._cleanup(net["id"], [sn["id"] for sn in subnets], router_id, name)
            raise
        net["subnets"] = [sn["id"] for sn in subnets]
        return self._vpc_info(net, subnets)

    async def _cleanup(self, net_id: str, subnet_ids: list[str], router_id: str, name: str) -> None:
        for sid in subnet_ids:
            try:
                await self._delete_subnet(sid, name, router_id)
            except DriverError:
                pass
        if router_id:
            try:
                await self.s.call(RT_VPC, name, "network", "DELETE", f"/routers/{router_id}")
            except DriverError:
                pass
        try:
            await self.s.call(RT_VPC, name, "network", "DELETE", f"/networks/{net_id}")
        except DriverError:
            pass

    async def _network(self, iid: IID) -> dict[str, Any]:
        if not iid.system_id:
            raise vpc_not_found(iid.name_id)
        try:
            return (await self.s.call(RT_VPC, iid.name_id, "network", "GET", f"/networks/{iid.system_id}"))["network"]
        except OpenStackError as exc:
            if status_of(exc) == 400:  # malformed id
                raise vpc_not_found(iid.system_id) from None
            raise

    async def get_vpc(self, iid: IID) -> VPCInfo:
        if not iid.system_id:
            raise vpc_not_found(iid.name_id)
        return await self._get.get(iid.system_id)

    async def _fetch(self, ids: list[str]) -> dict[str, object]:
        if len(ids) == 1:
            try:
                net = await self._network(IID("", ids[0]))
            except DriverNotFound:
                return {}
            return {net["id"]: self._vpc_info(net, await self._subnets(net["id"], ""))}
        nets = await self.s.list_all(RT_VPC, "", "network", "/networks?" + id_query("id", ids), "networks")
        if not nets:
            return {}
        subnets = await self.s.list_all(RT_VPC, "", "network",
                                        "/subnets?" + id_query("network_id", [n["id"] for n in nets]), "subnets")
        by_net: dict[str, list[dict[str, Any]]] = {}
        for sn in subnets:
            by_net.setdefault(sn.get("network_id", ""), []).append(sn)
        return {n["id"]: self._vpc_info(n, by_net.get(n["id"], [])) for n in nets if n.get("id") in ids}

    async def _project_query(self) -> str:
        """``?project_id=`` of the token's project: Neutron shows an admin every project's networks."""
        project = await self.s.project_id()
        return f"?project_id={project}" if project else ""

    async def _own_networks(self, query: str) -> list[dict[str, Any]]:
        nets = await self.s.list_all(RT_VPC, "", "network", f"/networks{query}", "networks")
        return [n for n in nets
                if not n.get("router:external") and not (n.get("shared") and not described(n.get("description")))]

    async def list_vpc(self) -> list[VPCInfo]:
        query = await self._project_query()
        nets = await self._own_networks(query)
        if not nets:
            return []
        subnets = await self.s.list_all(RT_VPC, "", "network", f"/subnets{query}", "subnets")
        by_net: dict[str, list[dict[str, Any]]] = {}
        for sn in subnets:
            by_net.setdefault(sn.get("network_id", ""), []).append(sn)
        return [self._vpc_info(n, by_net.get(n["id"], [])) for n in nets]

    async def list_iid(self) -> list[IID]:
        return [IID(n.get("name", ""), n["id"]) for n in await self._own_networks(await self._project_query())]

    async def delete_vpc(self, iid: IID) -> bool:
        net = await self._network(iid)
        name = iid.name_id
        router = await self._router_for(net["id"], name)
        router_id = router["id"] if router else ""
        for sn in await self._subnets(net["id"], name):
            await self._delete_subnet(sn["id"], name, router_id)
        if router_id:
            try:
                await self.s.call(RT_VPC, name, "network", "DELETE", f"/routers/{router_id}")
            except DriverNotFound:
                pass

        async def action() -> None:
            await self.s.call(RT_VPC, name, "network", "DELETE", f"/networks/{net['id']}")

        async def blockers() -> bool:
            ports = await ports_of(self.s, RT_VPC, name, f"network_id={net['id']}")
            return await ports_going_away(self.s, RT_VPC, name, [p for p in ports if p.get("network_id") == net["id"]])

        await retry_in_use(self.s, RT_VPC, name, action, blockers)
        return True

    async def add_subnet(self, vpc_iid: IID, subnet: SubnetInfo) -> VPCInfo:
        net = await self._network(vpc_iid)
        sn = await self._create_subnet(net["id"], subnet)
        router = await self._router_for(net["id"], vpc_iid.name_id)
        if router:
            try:
                await self._attach(router["id"], sn["id"], vpc_iid.name_id)
            except DriverError:
                await self._delete_subnet(sn["id"], vpc_iid.name_id)
                raise
        return await self.get_vpc(vpc_iid)

    async def remove_subnet(self, vpc_iid: IID, subnet_iid: IID) -> bool:
        net = await self._network(vpc_iid)
        subnet_id = subnet_iid.system_id
        subnets = await self._subnets(net["id"], vpc_iid.name_id)
        if not subnet_id:
            found = [sn for sn in subnets if sn.get("name") == subnet_iid.name_id]
            if not found:
                raise OpenStackNotFound(f"SubnetNotFound: Subnet {subnet_iid.name_id} could not be found.")
            subnet_id = found[0]["id"]
        elif subnet_id not in {sn["id"] for sn in subnets}:
            raise OpenStackNotFound(f"SubnetNotFound: Subnet {subnet_id} could not be found in network "
                                    f"{net['id']}.")
        router = await self._router_for(net["id"], vpc_iid.name_id)

        await self._detach(router["id"] if router else "", subnet_id, subnet_iid.name_id)

        async def action() -> None:
            await self.s.call(RT_VPC, subnet_iid.name_id, "network", "DELETE", f"/subnets/{subnet_id}")

        async def blockers() -> bool:
            return await ports_going_away(self.s, RT_VPC, subnet_iid.name_id,
                                          await subnet_ports(self.s, RT_VPC, subnet_iid.name_id, subnet_id))

        await retry_in_use(self.s, RT_VPC, subnet_iid.name_id, action, blockers)
        return True


