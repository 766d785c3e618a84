"""Network load balancer handler: Octavia.

One NLB = a load balancer (VIP on the VPC's first subnet) + one listener + one pool (ROUND_ROBIN,
the VM group) + its members (the VMs' private IPs on the VM group port; a member's name is the
server id) + one health monitor. A PUBLIC NLB gets a floating IP on the VIP port (the listener IP).

Octavia answers 409 while a load balancer is PENDING_*: every change waits for ACTIVE first and
after. What Octavia has no field for (NLB type, the VM group port, the health-check port) is kept in
the load balancer's and pool's descriptions and the monitor's name.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from spider_core.drivers.base import NLBHandler
from spider_core.drivers.openstack.mapping import (describe, described, member_healthy, monitor_protocol,
                                                   monitor_type, tags_in, tags_out)
from spider_core.calllog import RT_NLB
from spider_core.drivers.openstack.session import (OpenStackError, OpenStackNotFound, OsSession, status_of, wait_until)
from spider_core.drivers.openstack.vpc import external_network
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import (IID, HealthCheckerInfo, HealthInfo, KeyValue, ListenerInfo, NLBInfo, NLBReqInfo,
                               VMGroupInfo)

LB_TIMEOUT = 300.0
DEFAULT_INTERVAL = 10
DEFAULT_TIMEOUT = 5
DEFAULT_THRESHOLD = 3
HC_NAME_MARK = "-hc-port-"


def nlb_not_found(name: str) -> DriverNotFound:
    return OpenStackNotFound(f"LoadBalancerNotFound: Load Balancer {name} not found.",
                             error_type="LoadBalancerNotFound")


def _int(value: Any, default: int) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        return default
    return v if v > 0 else default


def _port(value: str, what: str) -> int:
    try:
        port = int(str(value).strip())
    except (TypeError, ValueError):
        raise DriverError(f"invalid {what} port '{value}': must be an integer") from None
    if not 1 <= port <= 65535:
        raise DriverError(f"invalid {what} port '{value}': must be 1..65535")
    return port


def _protocol(value: str, default: str = "TCP") -> str:
    p = (value or default).strip().upper()
    if p not in ("TCP", "UDP", "HTTP", "HTTPS", "SCTP"):
        raise DriverError(f"unsupported protocol '{value}' (TCP or UDP)")
    return p


class OsNlbHandler(NLBHandler):
    def __init__(self, session: OsSession, *, lb_timeout: float = LB_TIMEOUT, poll_interval: float = 0.5) -> None:
        self.s = session
        self.lb_timeout = lb_timeout
        self.poll_interval = poll_interval

    # ---- low level
    async def _get(self, name: str, path: str, key: str) -> Any:
        return (await self.s.call(RT_NLB, name, "load-balancer", "GET", path))[key]

    async def _lb(self, iid: IID) -> dict[str, Any]:
        if not iid.system_id:
            raise nlb_not_found(iid.name_id)
        try:
            return await self._get(iid.name_id, f"/lbaas/loadbalancers/{iid.system_id}", "loadbalancer")
        except OpenStackError as exc:
            if status_of(exc) == 400:
                raise nlb_not_found(iid.system_id) from None
            raise

    async def _wait_active(self, lb_id: str, name: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            lb = await self._get(name, f"/lbaas/loadbalancers/{lb_id}", "loadbalancer")
            status = str(lb.get("provisioning_status", "")).upper()
            if status == "ERROR":
                raise OpenStackError(f"load balancer {name} went to ERROR", error_type="LoadBalancerError")
            return lb if status == "ACTIVE" else None

        return await wait_until(check, timeout=self.lb_timeout, interval=self.poll_interval,
                                max_interval=max(self.poll_interval, 2.0), what=f"load balancer {name} to be ACTIVE")

    async def _change(self, lb_id: str, name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run one mutation while the LB is ACTIVE (retrying a 409 after waiting), then wait again."""
        await self._wait_active(lb_id, name)
        for attempt in range(4):
            try:
                out = await fn()
                break
            except OpenStackError as exc:
                if status_of(exc) != 409 or attempt == 3:
                    raise
                await self._wait_active(lb_id, name)
        await self._wait_active(lb_id, name)
        return out

    async def _post(self, lb_id: str, name: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        async def fn() -> dict[str, Any]:
            return (await self.s.call(RT_NLB, name, "load-balancer", "POST", path, {key: body}))[key]
        return await self._change(lb_id, name, fn)

    async def _delete(self, lb_id: str, name: str, path: str) -> None:
        async def fn() -> None:
            try:
                await self.s.call(RT_NLB, name, "load-balancer", "DELETE", path)
            except DriverNotFound:
                pass
        await self._change(lb_id, name, fn)

    async def _put(self, lb_id: str, name: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        async def fn() -> dict[str, Any]:
            return (await self.s.call(RT_NLB, name, "load-balancer", "PUT", path, {key: body}))[key]
        return await self._change(lb_id, name, fn)

    async def _listener(self, lb: dict[str, Any], name: str) -> dict[str, Any] | None:
        ids = [x.get("id") for x in lb.get("listeners") or []]
        if not ids:
            return None
        try:
            return await self._get(name, f"/lbaas/listeners/{ids[0]}", "listener")
        except DriverNotFound:
            return None

    async def _pool(self, lb: dict[str, Any], listener: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        ids = [listener["default_pool_id"]] if listener and listener.get("default_pool_id") else []
        ids += [x.get("id") for x in lb.get("pools") or [] if x.get("id") not in ids]
        for pid in ids:
            try:
                return await self._get(name, f"/lbaas/pools/{pid}", "pool")
            except DriverNotFound:
                continue
        return None

    async def _members(self, pool_id: str, name: str) -> list[dict[str, Any]]:
        return await self.s.list_all(RT_NLB, name, "load-balancer", f"/lbaas/pools/{pool_id}/members", "members")

    async def _monitor(self, pool: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        if not pool or not pool.get("healthmonitor_id"):
            return None
        try:
            return await self._get(name, f"/lbaas/healthmonitors/{pool['healthmonitor_id']}", "healthmonitor")
        except DriverNotFound:
            return None

    async def _vip_fip(self, lb: dict[str, Any], name: str) -> dict[str, Any] | None:
        port = lb.get("vip_port_id")
        if not port:
            return None
        fips = await self.s.list_all(RT_NLB, name, "network", f"/floatingips?port_id={port}", "floatingips")
        fips = [f for f in fips if f.get("port_id") == port]
        return fips[0] if fips else None

    async def _vm_address(self, vm: IID, name: str) -> tuple[str, str]:
        """(private IP, subnet id) of a VM's first port."""
        ports = await self.s.list_all(RT_NLB, name, "network", f"/ports?device_id={vm.system_id}", "ports")
        ports = sorted((p for p in ports if p.get("device_id") == vm.system_id),
                       key=lambda p: p.get("created_at", "") or "")
        for p in ports:
            for ip in p.get("fixed_ips") or []:
                if ip.get("ip_address") and ":" not in ip["ip_address"]:
                    return ip["ip_address"], ip.get("subnet_id", "")
        raise OpenStackNotFound(f"VM {vm.name_id or vm.system_id} has no private IP (no port found)")

    # ---- mapping
    @staticmethod
    def _group_port(pool: dict[str, Any], members: list[dict[str, Any]]) -> str:
        port = described(pool.get("description")).get("Port")
        if port:
            return str(port)
        return str(members[0].get("protocol_port", "")) if members else ""

    @staticmethod
    def _hc(monitor: dict[str, Any] | None, group_port: str) -> HealthCheckerInfo:
        if monitor is None:
            return HealthCheckerInfo()
        name = str(monitor.get("name") or "")
        port = name.rsplit(HC_NAME_MARK, 1)[1] if HC_NAME_MARK in name else group_port
        return HealthCheckerInfo(protocol=monitor_protocol(str(monitor.get("type", ""))), port=port,
                                 interval=int(monitor.get("delay", -1)), timeout=int(monitor.get("timeout", -1)),
                                 threshold=int(monitor.get("max_retries", -1)), csp_id=monitor["id"])

    @staticmethod
    def _member_iid(m: dict[str, Any]) -> IID:
        return IID("", str(m.get("name") or m.get("address") or ""))

    async def _info(self, lb: dict[str, Any]) -> NLBInfo:
        name = lb.get("name", "")
        listener = await self._listener(lb, name)
        pool = await self._pool(lb, listener, name)
        members = await self._members(pool["id"], name) if pool else []
        monitor = await self._monitor(pool, name)
        fip = await self._vip_fip(lb, name)
        doc = described(lb.get("description"))
        ip = (fip or {}).get("floating_ip_address") or lb.get("vip_address", "")
        li = ListenerInfo()
        if listener:
            li = ListenerInfo(protocol=str(listener.get("protocol", "")), ip=ip,
                              port=str(listener.get("protocol_port", "")), csp_id=listener["id"])
        group = VMGroupInfo()
        if pool:
            gport = self._group_port(pool, members)
            group = VMGroupInfo(protocol=str(pool.get("protocol", "")), port=gport,
                                vms=[self._member_iid(m) for m in members], csp_id=pool["id"])
        kvs = [KeyValue("ProvisioningStatus", str(lb.get("provisioning_status", ""))),
               KeyValue("OperatingStatus", str(lb.get("operating_status", ""))),
               KeyValue("VipAddress", str(lb.get("vip_address", "")))]
        nlb_type = str(doc.get("Type") or ("PUBLIC" if fip else "INTERNAL"))
        return NLBInfo(iid=IID(name, lb["id"]), vpc_iid=IID("", str(lb.get("vip_network_id", ""))),
                       type=nlb_type, scope="REGION", listener=li, vm_group=group,
                       health_checker=self._hc(monitor, group.port), created_time=str(lb.get("created_at", "")),
                       tags=tags_out(doc), key_values=kvs)

    # ---- create
    async def _add_members(self, lb_id: str, pool_id: str, name: str, vms: list[IID], port: int,
                           monitor_port: int | None) -> None:
        addresses = await asyncio.gather(*(self._vm_address(v, name) for v in vms))
        for vm, (address, subnet) in zip(vms, addresses):
            body: dict[str, Any] = {"name": vm.system_id, "address": address, "protocol_port": port}
            if subnet:
                body["subnet_id"] = subnet
            if monitor_port and monitor_port != port:
                body["monitor_port"] = monitor_port
            await self._post(lb_id, name, f"/lbaas/pools/{pool_id}/members", "member", body)

    def _monitor_body(self, name: str, pool_id: str, hc: HealthCheckerInfo, group_port: int) -> dict[str, Any]:
        delay = _int(hc.interval, DEFAULT_INTERVAL)
        timeout = min(_int(hc.timeout, DEFAULT_TIMEOUT), delay)
        retries = min(10, _int(hc.threshold, DEFAULT_THRESHOLD))
        hc_port = _port(hc.port, "HealthChecker") if str(hc.port or "").strip() else group_port
        body: dict[str, Any] = {"name": f"{name}{HC_NAME_MARK}{hc_port}", "type": monitor_type(hc.protocol),
                                "delay": delay, "timeout": timeout, "max_retries": retries}
        if pool_id:
            body["pool_id"] = pool_id
        if body["type"] in ("HTTP", "HTTPS"):
            body.update(http_method="GET", url_path="/", expected_codes="200")
        return body

    async def create_nlb(self, req: NLBReqInfo) -> NLBInfo:
        name = req.iid.name_id
        lproto = _protocol(req.listener.protocol)
        lport = _port(req.listener.port, "listener")
        group = req.vm_group
        gproto = _protocol(group.protocol, lproto)
        gport = _port(group.port, "VM group") if str(group.port or "").strip() else lport
        hc = req.health_checker
        hc_port = _port(hc.port, "HealthChecker") if str(hc.port or "").strip() else gport
        monitor_type(hc.protocol)  # validate before creating anything
        public = req.type.strip().upper() != "INTERNAL"
        net_id = req.vpc_iid.system_id
        if not net_id:
            raise OpenStackNotFound(f"NetworkNotFound: VPC {req.vpc_iid.name_id} has no network id")
        net = (await self.s.call(RT_NLB, name, "network", "GET", f"/networks/{net_id}"))["network"]
        subnets = net.get("subnets") or []
        if not subnets:
            raise DriverError(f"VPC '{req.vpc_iid.name_id or net_id}' has no subnet for the NLB")
        lb = (await self.s.call(RT_NLB, name, "load-balancer", "POST", "/lbaas/loadbalancers", {"loadbalancer": {
            "name": name, "vip_subnet_id": subnets[0],
            "description": describe(Type="PUBLIC" if public else "INTERNAL", Tags=tags_in(req.tags))}}))[
            "loadbalancer"]
        lb_id = lb["id"]
        try:
            listener = await self._post(lb_id, name, "/lbaas/listeners", "listener", {
                "name": name, "loadbalancer_id": lb_id, "protocol": lproto, "protocol_port": lport})
            pool = await self._post(lb_id, name, "/lbaas/pools", "pool", {
                "name": name, "listener_id": listener["id"], "protocol": gproto, "lb_algorithm": "ROUND_ROBIN",
                "description": describe(Port=str(gport))})
            if group.vms:
                await self._add_members(lb_id, pool["id"], name, list(group.vms), gport, hc_port)
            monitor = await self._post(lb_id, name, "/lbaas/healthmonitors", "healthmonitor",
                                       self._monitor_body(name, pool["id"], hc, gport))
            lb = await self._wait_active(lb_id, name)
            fip = await self._public_ip(lb, name) if public else None
        except DriverError:
            try:
                await self._teardown(lb_id, name)
            except DriverError:
                pass
            raise
        ip = (fip or {}).get("floating_ip_address") or lb.get("vip_address", "")
        return NLBInfo(iid=IID(name, lb_id), vpc_iid=req.vpc_iid, type="PUBLIC" if public else "INTERNAL",
                       scope="REGION",
                       listener=ListenerInfo(protocol=lproto, ip=ip, port=str(lport), csp_id=listener["id"]),
                       vm_group=VMGroupInfo(protocol=gproto, port=str(gport), vms=list(group.vms), csp_id=pool["id"]),
                       health_checker=self._hc(monitor, str(gport)), created_time=str(lb.get("created_at", "")),
                       tags=list(req.tags),
                       key_values=[KeyValue("VipAddress", str(lb.get("vip_address", "")))])

    async def _public_ip(self, lb: dict[str, Any], name: str) -> dict[str, Any] | None:
        ext = await external_network(self.s, name)
        if not ext or not lb.get("vip_port_id"):
            return None
        return (await self.s.call(RT_NLB, name, "network", "POST", "/floatingips", {"floatingip": {
            "floating_network_id": ext, "port_id": lb["vip_port_id"],
            "description": describe(Owner="spidertwin-nlb")}}))["floatingip"]

    # ---- delete
    async def _teardown(self, lb_id: str, name: str) -> None:
        try:
            lb = await self._get(name, f"/lbaas/loadbalancers/{lb_id}", "loadbalancer")
        except DriverNotFound:
            return
        fip = await self._vip_fip(lb, name)
        if fip:
            try:
                await self.s.call(RT_NLB, name, "network", "DELETE", f"/floatingips/{fip['id']}")
            except DriverNotFound:
                pass

        async def fn() -> None:
            try:
                await self.s.call(RT_NLB, name, "load-balancer", "DELETE", f"/lbaas/loadbalancers/{lb_id}?cascade=true")
            except DriverNotFound:
                pass

        try:
            await self._wait_active(lb_id, name)
        except DriverNotFound:
            return
        except DriverError:
            pass  # ERROR or stuck: try the delete anyway
        await fn()

        async def gone() -> bool:
            try:
                await self._get(name, f"/lbaas/loadbalancers/{lb_id}", "loadbalancer")
            except DriverNotFound:
                return True
            return False

        await wait_until(gone, timeout=self.lb_timeout, interval=self.poll_interval,
                         max_interval=max(self.poll_interval, 2.0), what=f"load balancer {name} to be deleted")

    async def delete_nlb(self, iid: IID) -> bool:
        lb = await self._lb(iid)
        await self._teardown(lb["id"], iid.name_id or lb.get("name", ""))
        return True

    # ---- reads
    async def get_nlb(self, iid: IID) -> NLBInfo:
        return await self._info(await self._lb(iid))

    async def _all(self) -> list[dict[str, Any]]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        lbs = await self.s.list_all(RT_NLB, "", "load-balancer", f"/lbaas/loadbalancers{query}", "loadbalancers")
        return [lb for lb in lbs if not project or lb.get("project_id", project) == project]

    async def list_nlb(self) -> list[NLBInfo]:
        return list(await asyncio.gather(*(self._info(lb) for lb in await self._all())))

    async def list_iid(self) -> list[IID]:
        return [IID(lb.get("name", ""), lb["id"]) for lb in await self._all()]

    # ---- VM group
    async def _group(self, nlb_iid: IID) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
        lb = await self._lb(nlb_iid)
        name = lb.get("name", "")
        listener = await self._listener(lb, name)
        pool = await self._pool(lb, listener, name)
        if pool is None:
            raise DriverError(f"{nlb_iid.name_id} NLB has no VM group (pool)")
        return lb, listener, pool

    async def add_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> VMGroupInfo:
        lb, _, pool = await self._group(nlb_iid)
        name = lb.get("name", "")
        members = await self._members(pool["id"], name)
        current = [self._member_iid(m).system_id for m in members]
        for v in vm_iids:
            if v.system_id in current:
                raise DriverError(f"{name} NLB already has this VM: {{{v.name_id} {v.system_id}}}!! "
                                  f"#### {name} NLB has {current}!!")
        gport = int(self._group_port(pool, members) or 0) or None
        if gport is None:
            raise DriverError(f"{name} NLB: the VM group port is unknown")
        monitor = await self._monitor(pool, name)
        hc_port = int(self._hc(monitor, str(gport)).port or gport) if monitor else gport
        await self._add_members(lb["id"], pool["id"], name, vm_iids, gport, hc_port)
        members = await self._members(pool["id"], name)
        return VMGroupInfo(protocol=str(pool.get("protocol", "")), port=str(gport),
                           vms=[self._member_iid(m) for m in members], csp_id=pool["id"])

    async def remove_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> bool:
        lb, _, pool = await self._group(nlb_iid)
        name = lb.get("name", "")
        members = await self._members(pool["id"], name)
        by_vm = {self._member_iid(m).system_id: m for m in members}
        for v in vm_iids:
            if v.system_id not in by_vm:
                raise DriverError(f"{name} NLB does not have this VM: {{{v.name_id} {v.system_id}}}!! "
                                  f"#### {name} NLB has {list(by_vm)}!!")
        for v in vm_iids:
            await self._delete(lb["id"], name, f"/lbaas/pools/{pool['id']}/members/{by_vm[v.system_id]['id']}")
        return True

    async def get_vm_group_health(self, nlb_iid: IID) -> HealthInfo:
        lb, _, pool = await self._group(nlb_iid)
        info = HealthInfo()
        for m in await self._members(pool["id"], lb.get("name", "")):
            iid = self._member_iid(m)
            info.all_vms.append(iid)
            (info.healthy_vms if member_healthy(m) else info.unhealthy_vms).append(iid)
        return info

    # ---- changes
    async def change_listener(self, nlb_iid: IID, listener: ListenerInfo) -> ListenerInfo:
        """Octavia cannot change a listener's protocol or port: the listener is made anew on the pool."""
        lb, old, pool = await self._group(nlb_iid)
        name = lb.get("name", "")
        if old is None:
            raise DriverError(f"{name} NLB has no listener")
        proto = _protocol(listener.protocol, str(old.get("protocol", "TCP")))
        port = _port(listener.port, "listener") if str(listener.port or "").strip() else int(old["protocol_port"])
        current = old
        if proto != str(old.get("protocol", "")).upper() or port != int(old.get("protocol_port", 0)):
            await self._delete(lb["id"], name, f"/lbaas/listeners/{old['id']}")
            current = await self._post(lb["id"], name, "/lbaas/listeners", "listener", {
                "name": name, "loadbalancer_id": lb["id"], "protocol": proto, "protocol_port": port,
                "default_pool_id": pool["id"]})
        fip = await self._vip_fip(lb, name)
        return ListenerInfo(protocol=str(current.get("protocol", proto)), port=str(current.get("protocol_port", port)),
                            ip=(fip or {}).get("floating_ip_address") or lb.get("vip_address", ""),
                            csp_id=current["id"])

    async def change_vm_group_info(self, nlb_iid: IID, vm_group: VMGroupInfo) -> VMGroupInfo:
        """Pool protocol and member ports are immutable in Octavia: a new pool with the same members and
        monitor replaces the old one behind the listener."""
        lb, listener, old = await self._group(nlb_iid)
        name = lb.get("name", "")
        members = await self._members(old["id"], name)
        old_port = self._group_port(old, members)
        proto = _protocol(vm_group.protocol, str(old.get("protocol", "TCP")))
        port = _port(vm_group.port, "VM group") if str(vm_group.port or "").strip() else int(old_port or 0)
        if proto == str(old.get("protocol", "")).upper() and str(port) == str(old_port):
            return VMGroupInfo(protocol=proto, port=str(port), vms=[self._member_iid(m) for m in members],
                               csp_id=old["id"])
        monitor = await self._monitor(old, name)
        hc = self._hc(monitor, old_port)
        if hc.port == old_port:
            hc.port = str(port)  # the health check followed the group port: keep following it
        lb_id = lb["id"]
        pool_body: dict[str, Any] = {"name": name, "protocol": proto, "lb_algorithm": old.get("lb_algorithm")
                                     or "ROUND_ROBIN", "description": describe(Port=str(port))}
        if listener is not None:
            # one default pool per listener: detach the old one first
            await self._put(lb_id, name, f"/lbaas/listeners/{listener['id']}", "listener", {"default_pool_id": None})
            pool_body["listener_id"] = listener["id"]
        else:
            pool_body["loadbalancer_id"] = lb_id
        new = await self._post(lb_id, name, "/lbaas/pools", "pool", pool_body)
        for m in members:
            body = {"name": m.get("name") or "", "address": m["address"], "protocol_port": port}
            if m.get("subnet_id"):
                body["subnet_id"] = m["subnet_id"]
            if hc.port and int(hc.port) != port:
                body["monitor_port"] = int(hc.port)
            await self._post(lb_id, name, f"/lbaas/pools/{new['id']}/members", "member", body)
        if monitor is not None:
            await self._post(lb_id, name, "/lbaas/healthmonitors", "healthmonitor",
                             self._monitor_body(name, new["id"], hc, port))
        await self._delete(lb_id, name, f"/lbaas/pools/{old['id']}")
        members = await self._members(new["id"], name)
        return VMGroupInfo(protocol=proto, port=str(port), vms=[self._member_iid(m) for m in members],
                           csp_id=new["id"])

    async def change_health_checker_info(self, nlb_iid: IID,
                                         health_checker: HealthCheckerInfo) -> HealthCheckerInfo:
        lb, _, pool = await self._group(nlb_iid)
        name = lb.get("name", "")
        members = await self._members(pool["id"], name)
        gport = self._group_port(pool, members)
        monitor = await self._monitor(pool, name)
        current = self._hc(monitor, gport)
        want = HealthCheckerInfo(
            protocol=health_checker.protocol or current.protocol or "TCP",
            port=str(health_checker.port or "").strip() or current.port or gport,
            interval=health_checker.interval if _int(health_checker.interval, 0) else current.interval,
            timeout=health_checker.timeout if _int(health_checker.timeout, 0) else current.timeout,
            threshold=health_checker.threshold if _int(health_checker.threshold, 0) else current.threshold)
        body = self._monitor_body(name, "", want, int(gport or 0) or _port(want.port, "HealthChecker"))
        lb_id = lb["id"]
        if monitor is None or monitor_type(want.protocol) != str(monitor.get("type", "")).upper():
            if monitor is not None:
                await self._delete(lb_id, name, f"/lbaas/healthmonitors/{monitor['id']}")
            body["pool_id"] = pool["id"]
            out = await self._post(lb_id, name, "/lbaas/healthmonitors", "healthmonitor", body)
        else:
            body.pop("type", None)
            out = await self._put(lb_id, name, f"/lbaas/healthmonitors/{monitor['id']}", "healthmonitor", body)
        if want.port != current.port and members:
            mport = int(want.port)
            for m in members:
                await self._put(lb_id, name, f"/lbaas/pools/{pool['id']}/members/{m['id']}", "member",
                                {"monitor_port": None if str(mport) == gport else mport})
        return self._hc(out, gport)
