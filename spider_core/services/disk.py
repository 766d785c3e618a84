"""Disks (CB-Spider's DiskManager): create, list/get, resize, attach/detach to a VM, delete, register."""

from __future__ import annotations

from dataclasses import replace
from typing import Collection

from spider_core import errors, lockplan
from spider_core.errors import SpiderError
from spider_core.lockplan import Plan
from spider_core.metadb import IIDRow
from spider_core.model import IID, DiskInfo, DiskStatus
from spider_core.services import leaf
from spider_core.services.common import DISK, VM, NameMap, drive, driver_iid, handler, lookup, require_conn, \
    required, user_iid
from spider_core.services.context import Spider
from spider_core.splock import Need
from spider_core.wire import kvs_in


def user_disk(row: IIDRow, info: DiskInfo, names: NameMap) -> DiskInfo:
    owner = names.user(VM.rtype, info.owner_vm) if info.owner_vm.system_id else IID()
    return replace(info, iid=user_iid(row) if row.name else info.iid, zone=info.zone or row.zone, owner_vm=owner)


def _stub(row: IIDRow) -> DiskInfo:
    return DiskInfo(IID(row.name, row.system_id))


LEAF = leaf.Leaf(DISK, "get_disk", "list_disk", "delete_disk", _stub, user_disk)
service = leaf.Service(LEAF, register_zone=True)


def _size(value: str, what: str = "Disk Size") -> str:
    value = (value or "").strip()
    if value.lower() in ("", "default"):
        return ""
    if not value.isdecimal() or int(value) <= 0:
        raise SpiderError(f"{value} is not a valid {what}: it must be a positive integer (GB)!")
    return str(int(value))


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> DiskInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    zone = (req.get("Zone") or "").strip()
    disk_type = (req.get("DiskType") or "").strip()
    disk_type = "" if disk_type.lower() == "default" else disk_type
    size = _size(req.get("DiskSize", ""))
    conn = await sp.connection(conn_name)
    if zone and zone != conn.info.zone and not conn.capability.zone_based_control:
        raise SpiderError(f"{conn_name} does not support Zone-based Control")
    tags = kvs_in(req.get("TagList"))

    async def call(c, uuid: str):
        return await handler(c, DISK).create_disk(DiskInfo(IID(uuid, ""), zone, disk_type, size, tags=tags))

    return await leaf.create(sp, LEAF, conn_name, name, id_mode, Plan((Need("disk", name, True),)), call, zone=zone)


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[DiskInfo]:
    return await leaf.list_all(sp, LEAF, conn_name, only)


async def get(sp: Spider, conn_name: str, name: str) -> DiskInfo:
    return await leaf.get(sp, LEAF, conn_name, name)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    return await leaf.delete(sp, LEAF, conn_name, name, force)


async def change_size(sp: Spider, conn_name: str, name: str, size: str) -> bool:
    require_conn(conn_name)
    name = leaf.require_name(name)
    new_size = _size(size)
    if not new_size:
        raise errors.empty_input("size")
    async with sp.locks.write(DISK.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, DISK, name)
        conn = await sp.connection(conn_name)
        disks = handler(conn, DISK)
        current = await drive(disks.get_disk(driver_iid(row)))
        if current.disk_size.isdecimal() and int(new_size) <= int(current.disk_size):
            raise SpiderError(f"The new size {new_size} GB must be greater than the current size "
                              f"{current.disk_size} GB of Disk '{name}'!")
        return await drive(disks.change_disk_size(driver_iid(row), new_size))


async def _attachment(sp: Spider, conn_name: str, name: str, vm_name: str, attach: bool):
    require_conn(conn_name)
    name = leaf.require_name(name)
    vm_name = required(vm_name, "DiskAttachRequest", "VMName")
    plan = lockplan.uses_vm(sp.locks.mode, "disk", name, vm_name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row = await lookup(sp, conn_name, DISK, name)
        vm_row = await lookup(sp, conn_name, VM, vm_name)
        conn = await sp.connection(conn_name)
        disks = handler(conn, DISK)
        if attach:
            info = await drive(disks.attach_disk(driver_iid(row), driver_iid(vm_row)))
            return user_disk(row, info, await leaf.names(sp, conn_name))
        current = await drive(disks.get_disk(driver_iid(row)))
        if current.status != DiskStatus.ATTACHED.value or \
                (current.owner_vm.system_id and current.owner_vm.system_id != driver_iid(vm_row).system_id):
            raise SpiderError(f"Disk '{name}' is not attached to VM '{vm_name}'!")
        return await drive(disks.detach_disk(driver_iid(row), driver_iid(vm_row)))


async def attach(sp: Spider, conn_name: str, name: str, vm_name: str) -> DiskInfo:
    return await _attachment(sp, conn_name, name, vm_name, True)


async def detach(sp: Spider, conn_name: str, name: str, vm_name: str) -> bool:
    return await _attachment(sp, conn_name, name, vm_name, False)
