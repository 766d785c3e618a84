"""Public IP handler: Neutron floating IPs from the external network (CB-Spider's OpenStack driver); the
Spider name is kept in the description, association is the floating IP's ``port_id``/``fixed_ip_address``."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_PUBLICIP
from spider_core.drivers.base import PublicIPHandler
from spider_core.drivers.openstack.mapping import describe, described
from spider_core.drivers.openstack.session import OpenStackNotFound, OsSession
from spider_core.drivers.openstack.vpc import external_network
from spider_core.errors import DriverError
from spider_core.model import IID, KeyValue, PublicIPInfo

OWNER = "spidertwin-publicip"


class OsPublicIPHandler(PublicIPHandler):
    def __init__(self, session: OsSession) -> None:
        self.s = session

    async def _info(self, f: dict[str, Any], name: str) -> PublicIPInfo:
        meta = described(f.get("description"))
        vm = IID()
        if f.get("port_id"):
            port = (await self.s.call(RT_PUBLICIP, name, "network", "GET", f"/ports/{f['port_id']}"))["port"]
            if str(port.get("device_owner", "")).startswith("compute:") and port.get("device_id"):
                vm = IID("", port["device_id"])
        return PublicIPInfo(iid=IID(meta.get("Name", ""), f["id"]), public_ip_address=f.get("floating_ip_address", ""),
                            status="Associated" if f.get("port_id") else "Available", owned_vm=vm,
                            owned_nic=IID("", f["port_id"]) if f.get("port_id") else IID(),
                            owned_private_ip=f.get("fixed_ip_address") or "" if f.get("port_id") else "",
                            created_time=str(f.get("created_at", "") or ""),
                            tags=[KeyValue(k, str(v)) for k, v in (meta.get("Tags") or {}).items()],
                            key_values=[KeyValue("FloatingNetworkId", f.get("floating_network_id", "")),
                                        KeyValue("Status", str(f.get("status", "")))])

    async def _fip(self, iid: IID) -> dict[str, Any]:
        fid = iid.system_id or iid.name_id
        try:
            return (await self.s.call(RT_PUBLICIP, iid.name_id or fid, "network", "GET",
                                      f"/floatingips/{fid}"))["floatingip"]
        except OpenStackNotFound:
            raise OpenStackNotFound(f"FloatingIPNotFound: Floating IP {fid} could not be found.") from None

    async def create_public_ip(self, req: PublicIPInfo) -> PublicIPInfo:
        ext = await external_network(self.s, req.iid.name_id)
        if not ext:
            raise DriverError("this OpenStack cloud has no external network: no floating IP can be allocated")
        body = {"floating_network_id": ext, "description": describe(
            Owner=OWNER, Name=req.iid.name_id, Tags={kv.key: kv.value for kv in req.tags if kv.key})}
        f = (await self.s.call(RT_PUBLICIP, req.iid.name_id, "network", "POST", "/floatingips",
                               {"floatingip": body}))["floatingip"]
        info = await self._info(f, req.iid.name_id)
        info.iid = IID(req.iid.name_id, f["id"])
        return info

    async def _all(self) -> list[dict[str, Any]]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        return await self.s.list_all(RT_PUBLICIP, "", "network", f"/floatingips{query}", "floatingips")

    async def list_public_ip(self) -> list[PublicIPInfo]:
        return [await self._info(f, "") for f in await self._all()]

    async def get_public_ip(self, iid: IID) -> PublicIPInfo:
        return await self._info(await self._fip(iid), iid.name_id)

    async def delete_public_ip(self, iid: IID) -> bool:
        f = await self._fip(iid)
        if f.get("port_id"):
            raise DriverError(f"Floating IP {f.get('floating_ip_address')} is associated: disassociate it first")
        await self.s.call(RT_PUBLICIP, iid.name_id, "network", "DELETE", f"/floatingips/{f['id']}")
        return True

    async def associate_public_ip(self, iid: IID, vm_iid: IID, nic_iid: IID, private_ip: str) -> PublicIPInfo:
        f = await self._fip(iid)
        port_id = nic_iid.system_id
        if not port_id:
            if not vm_iid.system_id:
                raise DriverError("OpenStack associates a floating IP with a port: give a NIC or a VM")
            ports = await self.s.list_all(RT_PUBLICIP, iid.name_id, "network", f"/ports?device_id={vm_iid.system_id}",
                                          "ports")
            if not ports:
                raise DriverError(f"VM {vm_iid.system_id} has no port for a floating IP")
            port_id = sorted(ports, key=lambda p: (p.get("created_at", "") or "", p["id"]))[0]["id"]
        body: dict[str, Any] = {"port_id": port_id}
        if private_ip:
            body["fixed_ip_address"] = private_ip
        out = (await self.s.call(RT_PUBLICIP, iid.name_id, "network", "PUT", f"/floatingips/{f['id']}",
                                 {"floatingip": body}))["floatingip"]
        return await self._info(out, iid.name_id)

    async def disassociate_public_ip(self, iid: IID) -> bool:
        f = await self._fip(iid)
        if not f.get("port_id"):
            raise DriverError(f"Floating IP {f.get('floating_ip_address')} is not associated")
        await self.s.call(RT_PUBLICIP, iid.name_id, "network", "PUT", f"/floatingips/{f['id']}",
                          {"floatingip": {"port_id": None}})
        return True

    async def list_iid(self) -> list[IID]:
        return [IID(described(f.get("description")).get("Name", ""), f["id"]) for f in await self._all()]
