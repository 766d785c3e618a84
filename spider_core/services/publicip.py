"""Public IPs (CB-Spider's PublicIPManager): allocate, associate with a VM or NIC, disassociate, release."""

from __future__ import annotations

from dataclasses import replace
from typing import Collection

from spider_core import lockplan
from spider_core.errors import SpiderError
from spider_core.lockplan import Plan
from spider_core.metadb import IIDRow
from spider_core.model import IID, PublicIPInfo
from spider_core.services import leaf
from spider_core.services.common import NIC, PUBLICIP, VM, NameMap, drive, driver_iid, handler, lookup, \
    require_conn, required, user_iid
from spider_core.services.context import Spider
from spider_core.splock import Need
from spider_core.wire import kvs_in

NOT_FOUND = "NotFound"


def user_public_ip(row: IIDRow, info: PublicIPInfo, names: NameMap) -> PublicIPInfo:
    vm = names.user(VM.rtype, info.owned_vm) if info.owned_vm.system_id else IID()
    nic = IID()
    if info.owned_nic.system_id:
        nic = names.user(NIC.rtype, info.owned_nic)
        if not nic.name_id:  # CB-Spider: an unregistered NIC is named by its CSP id
            nic = IID(info.owned_nic.system_id, info.owned_nic.system_id)
    return replace(info, iid=user_iid(row) if row.name else info.iid, owned_vm=vm, owned_nic=nic)


def _stub(row: IIDRow) -> PublicIPInfo:
    return PublicIPInfo(IID(row.name, row.system_id), status=NOT_FOUND)


LEAF = leaf.Leaf(PUBLICIP, "get_public_ip", "list_public_ip", "delete_public_ip", _stub, user_public_ip)
service = leaf.Service(LEAF)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> PublicIPInfo:
    require_conn(conn_name)
    name = (req.get("Name") or "").strip()
    if not name:
        raise SpiderError("PublicIP Name is empty!")
    name = required(name, "IID", "NameId")
    tags = kvs_in(req.get("TagList"))

    async def call(conn, uuid: str):
        return await handler(conn, PUBLICIP).create_public_ip(PublicIPInfo(IID(uuid, ""), tags=tags))

    return await leaf.create(sp, LEAF, conn_name, name, id_mode, Plan((Need("publicip", name, True),)), call)


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[PublicIPInfo]:
    return await leaf.list_all(sp, LEAF, conn_name, only)


async def get(sp: Spider, conn_name: str, name: str) -> PublicIPInfo:
    return await leaf.get(sp, LEAF, conn_name, name)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    return await leaf.delete(sp, LEAF, conn_name, name, force)


async def associate(sp: Spider, conn_name: str, name: str, req: dict) -> PublicIPInfo:
    require_conn(conn_name)
    name = required(name, "IID", "NameId")
    vm_name = (req.get("VMName") or "").strip()
    nic_name = (req.get("NICName") or "").strip()
    private_ip = (req.get("PrivateIP") or "").strip()
    if not vm_name and not nic_name:
        raise SpiderError("VMName or NICName is required to associate Public IP "
                          f"'{name}'!")
    plan = lockplan.public_ip_associate(sp.locks.mode, name, vm_name, nic_name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row = await lookup(sp, conn_name, PUBLICIP, name)
        vm_iid = IID()
        if vm_name:
            vm_row = await sp.db.get_iid(conn_name, VM.rtype, vm_name)
            if vm_row is None:
                raise SpiderError(f"VM '{vm_name}' not found in connection '{conn_name}': "
                                  f"VM '{vm_name}' does not exist")
            vm_iid = driver_iid(vm_row)
        nic_iid = IID()
        if nic_name:  # CB-Spider: an unregistered NIC name is passed on as a CSP id
            nic_row = await sp.db.get_iid(conn_name, NIC.rtype, nic_name)
            nic_iid = driver_iid(nic_row) if nic_row else IID(nic_name, nic_name)
        conn = await sp.connection(conn_name)
        info = await drive(handler(conn, PUBLICIP).associate_public_ip(driver_iid(row), vm_iid, nic_iid, private_ip))
        return user_public_ip(row, info, await leaf.names(sp, conn_name))


async def disassociate(sp: Spider, conn_name: str, name: str) -> bool:
    require_conn(conn_name)
    name = required(name, "IID", "NameId")
    async with sp.locks.write(PUBLICIP.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, PUBLICIP, name)
        conn = await sp.connection(conn_name)
        return await drive(handler(conn, PUBLICIP).disassociate_public_ip(driver_iid(row)))
