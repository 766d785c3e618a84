"""Network interfaces (CB-Spider's NICManager): create in a subnet, attach to / detach from a VM,
secondary private IPs, the guest OS script an attach needs, delete, register."""

from __future__ import annotations

from dataclasses import replace

from spider_core import lockplan
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import IID, NetworkInterfaceInfo, NICReqInfo
from spider_core.services import leaf
from spider_core.services.common import NIC, SG, SUBNET, VM, VPC, NameMap, drive, driver_iid, handler, lookup, \
    require_conn, required, user_iid
from spider_core.services.context import Spider
from spider_core.wire import kvs_in

NOT_FOUND = "NotFound"


def user_nic(row: IIDRow, info: NetworkInterfaceInfo, names: NameMap) -> NetworkInterfaceInfo:
    return replace(info, iid=user_iid(row) if row.name else info.iid,
                   vpc_iid=names.user(VPC.rtype, info.vpc_iid), subnet_iid=names.user(SUBNET.rtype, info.subnet_iid),
                   security_group_iids=[names.user(SG.rtype, s) for s in info.security_group_iids],
                   owner_vm=names.user(VM.rtype, info.owner_vm) if info.owner_vm.system_id else IID())


def _stub(row: IIDRow) -> NetworkInterfaceInfo:
    return NetworkInterfaceInfo(IID(row.name, row.system_id), status=NOT_FOUND)


LEAF = leaf.Leaf(NIC, "get_nic", "list_nic", "delete_nic", _stub, user_nic)
service = leaf.Service(LEAF)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> NetworkInterfaceInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vpc_name = required(req.get("VPCName"), "NICReqInfo", "VPCName")
    subnet_name = required(req.get("SubnetName"), "NICReqInfo", "SubnetName")
    sg_names = [required(s, "NICReqInfo", "SecurityGroupNames") for s in req.get("SecurityGroupNames") or []]
    tags = kvs_in(req.get("TagList"))
    plan = lockplan.nic_create(sp.locks.mode, name, vpc_name, subnet_name, sg_names)
    found: dict[str, object] = {}

    async def checks() -> None:
        found["vpc"] = await lookup(sp, conn_name, VPC, vpc_name)
        found["subnet"] = await lookup(sp, conn_name, SUBNET, subnet_name, owner_vpc=vpc_name)
        found["sgs"] = [await lookup(sp, conn_name, SG, s) for s in sg_names]

    async def call(conn, uuid: str):
        nic_req = NICReqInfo(IID(uuid, ""), driver_iid(found["vpc"]), driver_iid(found["subnet"]),
                             [driver_iid(r) for r in found["sgs"]], tags)
        return await handler(conn, NIC).create_nic(nic_req)

    return await leaf.create(sp, LEAF, conn_name, name, id_mode, plan, call, checks=checks)


async def list_all(sp: Spider, conn_name: str) -> list[NetworkInterfaceInfo]:
    return await leaf.list_all(sp, LEAF, conn_name)


async def get(sp: Spider, conn_name: str, name: str) -> NetworkInterfaceInfo:
    return await leaf.get(sp, LEAF, conn_name, name)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    return await leaf.delete(sp, LEAF, conn_name, name, force)


async def attach(sp: Spider, conn_name: str, name: str, vm_name: str) -> NetworkInterfaceInfo:
    require_conn(conn_name)
    name = leaf.require_name(name)
    vm_name = required(vm_name, "NICAttachRequest", "VMName")
    plan = lockplan.uses_vm(sp.locks.mode, "nic", name, vm_name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row = await lookup(sp, conn_name, NIC, name)
        vm_row = await lookup(sp, conn_name, VM, vm_name)
        conn = await sp.connection(conn_name)
        info = await drive(handler(conn, NIC).attach_nic(driver_iid(row), driver_iid(vm_row)))
        return user_nic(row, info, await leaf.names(sp, conn_name))


async def _change(sp: Spider, conn_name: str, name: str, method: str, *args: str):
    require_conn(conn_name)
    name = leaf.require_name(name)
    async with sp.locks.write(NIC.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, NIC, name)
        conn = await sp.connection(conn_name)
        out = await drive(getattr(handler(conn, NIC), method)(driver_iid(row), *args))
        if isinstance(out, NetworkInterfaceInfo):
            return user_nic(row, out, await leaf.names(sp, conn_name))
        return out


async def detach(sp: Spider, conn_name: str, name: str) -> bool:
    return await _change(sp, conn_name, name, "detach_nic")


async def add_private_ip(sp: Spider, conn_name: str, name: str, private_ip: str) -> NetworkInterfaceInfo:
    return await _change(sp, conn_name, name, "add_private_ip", (private_ip or "").strip())


async def remove_private_ip(sp: Spider, conn_name: str, name: str, private_ip: str) -> bool:
    if not (private_ip or "").strip():
        raise SpiderError("privateIP is empty!")
    return await _change(sp, conn_name, name, "remove_private_ip", private_ip.strip())


async def os_config_script(sp: Spider, conn_name: str, name: str) -> str:
    require_conn(conn_name)
    name = leaf.require_name(name)
    async with sp.locks.read(NIC.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, NIC, name)
        conn = await sp.connection(conn_name)
        return await drive(handler(conn, NIC).get_nic_os_config_script(driver_iid(row)))
