"""The operations the VM-side families share (disk, MyImage, public IP, NIC): one resource per name in a
connection, no owner VPC row. Each family describes itself once in a ``Leaf`` (its kind, driver method
names, stub and user view) and gets get / list / delete / register / CSP delete / all-info from here, so
the four families follow the same CB-Spider rules (contract 7.1-7.3) without four copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection

from spider_core import errors, ids
from spider_core.errors import SpiderError
from spider_core.intents import recorded
from spider_core.lockplan import Plan
from spider_core.metadb import IIDRow
from spider_core.model import IID
from spider_core.services import common
from spider_core.services.common import (
    Kind,
    NameMap,
    delete_with_driver,
    drive,
    driver_iid,
    gather_bounded,
    handler,
    lookup,
    new_uuid,
    only_named,
    require_conn,
    required,
    store_or_rollback,
)
from spider_core.services.context import Conn, Spider

# the rows user views name: a disk's owner VM, a NIC's VPC/subnet/SGs, a public IP's NIC...
NAMED_TYPES = ["vpc", "subnet", "sg", "keypair", "vm", "nlb", "nic", "disk", "myimage", "publicip"]


@dataclass(frozen=True)
class Leaf:
    kind: Kind
    get: str                                         # driver method: get by driver IID
    list: str                                        # driver method: every resource at the CSP
    delete: str                                      # driver method: delete by driver IID
    stub: Callable[[IIDRow], Any]                    # list entry for a row the CSP no longer has
    to_user: Callable[[IIDRow, Any, NameMap], Any]   # driver info -> user view (names from the MetaDB)


async def names(sp: Spider, conn_name: str) -> NameMap:
    return await NameMap.load(sp, conn_name, NAMED_TYPES)


def require_name(name: str) -> str:
    if not name or not name.strip():
        raise errors.empty_input("nameID")
    return name.strip()


async def create(sp: Spider, leaf: Leaf, conn_name: str, name: str, id_mode: str | None, plan: Plan,
                 call: Callable[[Conn, str], Awaitable[Any]], *, zone: str = "",
                 checks: Callable[[], Awaitable[None]] | None = None) -> Any:
    """Lock, refuse a duplicate, record the intent, ``call(conn, spUUID)`` the CSP, store the row (or roll
    the CSP resource back) and answer the user view."""
    conn = await sp.connection(require_conn(conn_name))
    target = handler(conn, leaf.kind)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        if await sp.db.get_iid(conn_name, leaf.kind.rtype, name) is not None:
            raise errors.already_exists(leaf.kind.type_word, name, conn_name)
        if checks is not None:
            await checks()
        uuid = new_uuid(conn, leaf.kind, name, id_mode)
        async with recorded(sp, "create", leaf.kind.rtype, conn_name, name, sp_uuid=uuid,
                            detail={"zone": zone}) as intent:
            info = await drive(call(conn, uuid))
            row = IIDRow(conn_name, leaf.kind.rtype, name, ids.spider_system_id(uuid, info.iid.system_id),
                         zone=zone or getattr(info, "zone", "") or "")
            await store_or_rollback(sp, [row], lambda: getattr(target, leaf.delete)(info.iid),
                                    f"{leaf.kind.type_word} '{name}'", intent)
        return leaf.to_user(row, info, await names(sp, conn_name))


async def get(sp: Spider, leaf: Leaf, conn_name: str, name: str) -> Any:
    require_conn(conn_name)
    name = require_name(name)
    async with sp.locks.read(leaf.kind.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, leaf.kind, name)
        conn = await sp.connection(conn_name)
        info = await drive(getattr(handler(conn, leaf.kind), leaf.get)(driver_iid(row)))
        return leaf.to_user(row, info, await names(sp, conn_name))


async def list_all(sp: Spider, leaf: Leaf, conn_name: str, only: Collection[str] | None = None) -> list[Any]:
    """Every resource of the kind, or only the ``only`` names (one page of an AdminWeb table)."""
    conn = await sp.connection(require_conn(conn_name))
    target = handler(conn, leaf.kind)
    rows = only_named(await sp.db.list_iids(conn_name, leaf.kind.rtype), only)
    if not rows:
        return []
    mapping = await names(sp, conn_name)

    async def one(row: IIDRow) -> Any:
        async with sp.locks.read(leaf.kind.lock_family, conn_name, row.name):
            try:
                info = await drive(getattr(target, leaf.get)(driver_iid(row)))
            except SpiderError as exc:
                if errors.is_not_found(exc):
                    return leaf.stub(row)
                raise
            return leaf.to_user(row, info, mapping)

    return await gather_bounded(rows, one)


async def delete(sp: Spider, leaf: Leaf, conn_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    name = require_name(name)
    async with sp.locks.write(leaf.kind.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, leaf.kind, name)
        conn = await sp.connection(conn_name)
        target = handler(conn, leaf.kind)
        async with recorded(sp, "delete", leaf.kind.rtype, conn_name, name, system_id=row.system_id) as intent:
            ok = await delete_with_driver(sp, conn, leaf.kind, row, force, getattr(target, leaf.delete))
            if not ok:
                return False
            await sp.db.delete_iids([(conn_name, leaf.kind.rtype, "", name)], intent=intent.id)
            intent.closed = True
        return True


async def register(sp: Spider, leaf: Leaf, conn_name: str, req: dict, zone: str = "") -> Any:
    """Adopt a CSP resource under a user name (the driver is asked with NameId = SystemId = CSPId)."""
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    async with sp.locks.write(leaf.kind.lock_family, conn_name, name):
        if await sp.db.get_iid(conn_name, leaf.kind.rtype, name) is not None:
            raise errors.already_exists(leaf.kind.type_word, name, conn_name)
        info = await drive(getattr(handler(conn, leaf.kind), leaf.get)(IID(csp_id, csp_id)))
        row = IIDRow(conn_name, leaf.kind.rtype, name,
                     ids.spider_system_id(csp_id, info.iid.system_id or csp_id),
                     zone=zone or getattr(info, "zone", "") or "")
        await sp.db.insert_iids([row])
        return leaf.to_user(row, info, await names(sp, conn_name))


async def unregister(sp: Spider, leaf: Leaf, conn_name: str, name: str) -> bool:
    return await common.unregister(sp, conn_name, leaf.kind, name)


async def delete_csp(sp: Spider, leaf: Leaf, conn_name: str, csp_id: str) -> bool:
    target, iid = await common.csp_target(sp, conn_name, leaf.kind, csp_id)
    return await drive(getattr(target, leaf.delete)(iid))


async def all_info(sp: Spider, leaf: Leaf, conn_name: str) -> dict:
    mapping = await names(sp, require_conn(conn_name))

    async def to_user(row: IIDRow, info: Any) -> Any:
        return leaf.to_user(row, info, mapping)

    lists = await common.all_info(sp, conn_name, leaf.kind, leaf.list, to_user)
    lists["OnlyCSPInfoList"] = [leaf.to_user(IIDRow(conn_name, leaf.kind.rtype, "", i.iid.system_id), i, mapping)
                                for i in lists["OnlyCSPInfoList"]]
    return lists


class Service:
    """The management routes' view of a leaf family (``rest.management.add`` calls these by name)."""

    def __init__(self, leaf: Leaf, register_zone: bool = False) -> None:
        self.leaf = leaf
        self.register_zone = register_zone

    async def all_info(self, sp: Spider, conn_name: str) -> dict:
        return await all_info(sp, self.leaf, conn_name)

    async def delete_csp(self, sp: Spider, conn_name: str, csp_id: str) -> bool:
        return await delete_csp(sp, self.leaf, conn_name, csp_id)

    async def register(self, sp: Spider, conn_name: str, req: dict) -> Any:
        zone = (req.get("Zone") or "").strip() if self.register_zone else ""
        return await register(sp, self.leaf, conn_name, req, zone)

    async def unregister(self, sp: Spider, conn_name: str, name: str) -> bool:
        return await unregister(sp, self.leaf, conn_name, name)
