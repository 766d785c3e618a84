"""MyImages (CB-Spider's MyImageManager): a VM snapshotted into a machine image, list/get/delete, register.
A VM started with ``ImageType: MyImage`` names one of these (``services.vm``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Collection

from spider_core import lockplan
from spider_core.metadb import IIDRow
from spider_core.model import IID, MyImageInfo
from spider_core.services import leaf
from spider_core.services.common import MYIMAGE, VM, NameMap, driver_iid, handler, lookup, require_conn, required, \
    user_iid
from spider_core.services.context import Spider
from spider_core.wire import kvs_in


def user_image(row: IIDRow, info: MyImageInfo, names: NameMap) -> MyImageInfo:
    source = names.user(VM.rtype, info.source_vm) if info.source_vm.system_id else info.source_vm
    return replace(info, iid=user_iid(row) if row.name else info.iid, source_vm=source)


def _stub(row: IIDRow) -> MyImageInfo:
    return MyImageInfo(IID(row.name, row.system_id))


LEAF = leaf.Leaf(MYIMAGE, "get_my_image", "list_my_image", "delete_my_image", _stub, user_image)
service = leaf.Service(LEAF)


async def snapshot(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> MyImageInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vm_name = required(req.get("SourceVM"), "MyImageInfo", "SourceVM")
    tags = kvs_in(req.get("TagList"))
    plan = lockplan.uses_vm(sp.locks.mode, "image", name, vm_name)
    source: list[IIDRow] = []

    async def checks() -> None:
        source.append(await lookup(sp, conn_name, VM, vm_name))

    async def call(conn, uuid: str):
        return await handler(conn, MYIMAGE).snapshot_vm(MyImageInfo(IID(uuid, ""), driver_iid(source[0]), tags=tags))

    return await leaf.create(sp, LEAF, conn_name, name, id_mode, plan, call, checks=checks)


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[MyImageInfo]:
    return await leaf.list_all(sp, LEAF, conn_name, only)


async def get(sp: Spider, conn_name: str, name: str) -> MyImageInfo:
    return await leaf.get(sp, LEAF, conn_name, name)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    return await leaf.delete(sp, LEAF, conn_name, name, force)
