"""NIC handler: Neutron ports (CB-Spider's OpenStack driver): created in a subnet, attached to a server
through Nova's ``os-interface``, secondary private IPs as extra ``fixed_ips``, and the guest script that
brings a secondary port up with policy-based routing (OpenStack images do not configure it)."""

from __future__ import annotations

import ipaddress
from typing import Any

from spider_core.calllog import RT_NIC
from spider_core.drivers.base import NICHandler
from spider_core.drivers.openstack.mapping import describe, described
from spider_core.drivers.openstack.session import OpenStackNotFound, OsSession, wait_until
from spider_core.errors import DriverError
from spider_core.model import IID, KeyValue, NetworkInterfaceInfo, NICReqInfo

ATTACH_TIMEOUT = 120.0


class OsNICHandler(NICHandler):
    def __init__(self, session: OsSession, *, poll_interval: float = 0.2) -> None:
        self.s = session
        self.poll_interval = poll_interval

    def _info(self, p: dict[str, Any]) -> NetworkInterfaceInfo:
        ips = [f["ip_address"] for f in p.get("fixed_ips") or [] if f.get("ip_address")]
        subnets = [f["subnet_id"] for f in p.get("fixed_ips") or [] if f.get("subnet_id")]
        attached = str(p.get("device_owner", "")).startswith("compute:") and bool(p.get("device_id"))
        meta = described(p.get("description"))
        return NetworkInterfaceInfo(
            iid=IID(p.get("name") or "", p["id"]), vpc_iid=IID("", p.get("network_id", "")),
            subnet_iid=IID("", subnets[0] if subnets else ""),
            security_group_iids=[IID("", g) for g in p.get("security_groups") or []],
            private_ip=ips[0] if ips else "", private_ips=ips,
            owner_vm=IID("", p["device_id"]) if attached else IID(), device_index=0,
            mac_address=p.get("mac_address", ""), status="Attached" if attached else "Available",
            created_time=str(p.get("created_at", "") or ""),
            tags=[KeyValue(k, str(v)) for k, v in (meta.get("Tags") or {}).items()],
            key_values=[KeyValue("PortStatus", str(p.get("status", "")))])

    async def _port(self, iid: IID) -> dict[str, Any]:
        pid = iid.system_id or iid.name_id
        try:
            return (await self.s.call(RT_NIC, iid.name_id or pid, "network", "GET", f"/ports/{pid}"))["port"]
        except OpenStackNotFound:
            raise OpenStackNotFound(f"PortNotFound: Port {pid} could not be found.") from None

    async def create_nic(self, req: NICReqInfo) -> NetworkInterfaceInfo:
        port: dict[str, Any] = {"network_id": req.vpc_iid.system_id, "name": req.iid.name_id,
                                "fixed_ips": [{"subnet_id": req.subnet_iid.system_id}],
                                "description": describe(Owner="spidertwin-nic",
                                                        Tags={kv.key: kv.value for kv in req.tags if kv.key})}
        if req.security_group_iids:
            port["security_groups"] = [g.system_id for g in req.security_group_iids]
        out = (await self.s.call(RT_NIC, req.iid.name_id, "network", "POST", "/ports", {"port": port}))["port"]
        info = self._info(out)
        info.iid = IID(req.iid.name_id, out["id"])
        return info

    async def list_nic(self) -> list[NetworkInterfaceInfo]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        ports = await self.s.list_all(RT_NIC, "", "network", f"/ports{query}", "ports")
        # interfaces, not the network's own ports (DHCP, router, load balancer)
        return [self._info(p) for p in ports
                if not p.get("device_owner") or str(p.get("device_owner")).startswith("compute:")]

    async def get_nic(self, iid: IID) -> NetworkInterfaceInfo:
        return self._info(await self._port(iid))

    async def delete_nic(self, iid: IID) -> bool:
        p = await self._port(iid)
        if str(p.get("device_owner", "")).startswith("compute:") and p.get("device_id"):
            raise DriverError(f"Port {p['id']} is attached to server {p['device_id']}: detach it first")
        await self.s.call(RT_NIC, iid.name_id, "network", "DELETE", f"/ports/{p['id']}")
        return True

    async def _wait(self, iid: IID, attached: bool, what: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            p = await self._port(iid)
            on = str(p.get("device_owner", "")).startswith("compute:") and bool(p.get("device_id"))
            return p if on == attached else None

        return await wait_until(check, timeout=ATTACH_TIMEOUT, interval=self.poll_interval,
                                what=f"port {iid.system_id} {what}")

    async def attach_nic(self, iid: IID, vm_iid: IID) -> NetworkInterfaceInfo:
        p = await self._port(iid)
        await self.s.call(RT_NIC, iid.name_id, "compute", "POST", f"/servers/{vm_iid.system_id}/os-interface",
                          {"interfaceAttachment": {"port_id": p["id"]}})
        info = self._info(await self._wait(iid, True, "to be attached"))
        ports = await self.s.list_all(RT_NIC, iid.name_id, "network", f"/ports?device_id={vm_iid.system_id}", "ports")
        ports.sort(key=lambda q: (q.get("created_at", "") or "", q["id"]))
        order = [q["id"] for q in ports]
        info.device_index = order.index(p["id"]) if p["id"] in order else len(order)
        return info

    async def detach_nic(self, iid: IID) -> bool:
        p = await self._port(iid)
        if not (str(p.get("device_owner", "")).startswith("compute:") and p.get("device_id")):
            raise DriverError(f"Port {p['id']} is not attached to a server")
        await self.s.call(RT_NIC, iid.name_id, "compute", "DELETE", f"/servers/{p['device_id']}/os-interface/{p['id']}")
        await self._wait(iid, False, "to be detached")
        return True

    async def add_private_ip(self, iid: IID, private_ip: str) -> NetworkInterfaceInfo:
        p = await self._port(iid)
        fixed = list(p.get("fixed_ips") or [])
        subnet = fixed[0]["subnet_id"] if fixed else ""
        fixed.append({"subnet_id": subnet, **({"ip_address": private_ip} if private_ip else {})})
        out = await self.s.call(RT_NIC, iid.name_id, "network", "PUT", f"/ports/{p['id']}",
                                {"port": {"fixed_ips": fixed}})
        return self._info(out["port"])

    async def remove_private_ip(self, iid: IID, private_ip: str) -> bool:
        p = await self._port(iid)
        fixed = list(p.get("fixed_ips") or [])
        if private_ip not in [f.get("ip_address") for f in fixed[1:]]:
            raise DriverError(f"{private_ip} is not a secondary private IP of port {p['id']}")
        fips = await self.s.list_all(RT_NIC, iid.name_id, "network", f"/floatingips?port_id={p['id']}", "floatingips")
        for f in fips:  # a public IP on that address goes first (CB-Spider disassociates it)
            if f.get("fixed_ip_address") == private_ip:
                await self.s.call(RT_NIC, iid.name_id, "network", "PUT", f"/floatingips/{f['id']}",
                                  {"floatingip": {"port_id": None}})
        await self.s.call(RT_NIC, iid.name_id, "network", "PUT", f"/ports/{p['id']}",
                          {"port": {"fixed_ips": [f for f in fixed if f.get("ip_address") != private_ip]}})
        return True

    async def get_nic_os_config_script(self, iid: IID) -> str:
        p = await self._port(iid)
        info = self._info(p)
        if not info.private_ips:
            raise DriverError("GetNICOSConfigScript: NIC has no private IPs")
        subnet = (await self.s.call(RT_NIC, iid.name_id, "network", "GET",
                                    f"/subnets/{info.subnet_iid.system_id}"))["subnet"]
        net = ipaddress.ip_network(subnet.get("cidr", f"{info.private_ips[0]}/24"), strict=False)
        gateway = subnet.get("gateway_ip") or str(net.network_address + 1)
        lines = ["# 1. Identify interface name by MAC",
                 f"IFACE=$(ip -o link | grep -i \"{info.mac_address.lower()}\" | head -1 | awk -F': ' '{{print $2}}')",
                 'echo "Target interface: $IFACE"', "",
                 "# 2. Bring up the secondary NIC (no dhclient: it would add a default route to the main table)",
                 "sudo ip link set $IFACE up"]
        lines += [f"sudo ip addr add {ip}/{net.prefixlen} dev $IFACE 2>/dev/null || true" for ip in info.private_ips]
        lines += ["", "# 3. Policy-based routing: traffic from these addresses leaves through this NIC",
                  "sudo ip route flush table 101 2>/dev/null || true"]
        lines += [f"sudo ip rule del from {ip} lookup 101 2>/dev/null || true" for ip in info.private_ips]
        lines += [f"sudo ip route add {net} dev $IFACE src {info.private_ips[0]} table 101",
                  f"sudo ip route add default via {gateway} dev $IFACE table 101"]
        lines += [f"sudo ip rule add from {ip} lookup 101" for ip in info.private_ips]
        return "\n".join(lines) + "\n"

    async def list_iid(self) -> list[IID]:
        return [n.iid for n in await self.list_nic()]
