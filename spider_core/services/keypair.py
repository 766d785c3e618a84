"""Key pairs (contract 7.5): the private key is returned once, on create; reads hide both keys."""

from __future__ import annotations

from typing import Collection

from spider_core import errors, ids
from spider_core.intents import recorded
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import HIDDEN, IID, KeyPairInfo, KeyPairReqInfo
from spider_core.services.common import (
    KEY,
    delete_with_driver,
    drive,
    driver_iid,
    handler,
    lookup,
    new_uuid,
    only_named,
    require_conn,
    required,
    store_or_rollback,
    csp_target,
    gather_bounded,
    user_iid,
)
from spider_core.services import common
from spider_core.services.context import Spider
from spider_core.wire import kvs_in


def user_key(row: IIDRow, info: KeyPairInfo, hide: bool) -> KeyPairInfo:
    public, private = (HIDDEN, HIDDEN) if hide else (info.public_key, info.private_key)
    return KeyPairInfo(user_iid(row), info.fingerprint, public, private, info.vm_user_id, info.tags,
                       info.key_values)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> KeyPairInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    tags = kvs_in(req.get("TagList"))
    for kv in tags:
        if not kv.key.strip() or not kv.value.strip():
            raise errors.validation("KeyValue", "Key" if not kv.key.strip() else "Value")
    conn = await sp.connection(conn_name)
    keys = handler(conn, KEY)
    async with sp.locks.write(KEY.lock_family, conn_name, name):
        uuid = new_uuid(conn, KEY, name, id_mode)
        async with recorded(sp, "create", KEY.rtype, conn_name, name, sp_uuid=uuid,
                            refuse_existing=KEY.type_word) as intent:
            created = await drive(keys.create_key(KeyPairReqInfo(IID(uuid, ""), tags)))
            row = IIDRow(conn_name, KEY.rtype, name, ids.spider_system_id(uuid, created.iid.system_id))
            await store_or_rollback(sp, [row], lambda: keys.delete_key(created.iid), f"VM KeyPair '{name}'", intent)
        return user_key(row, created, hide=False)


async def get(sp: Spider, conn_name: str, name: str) -> KeyPairInfo:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("nameID")
    async with sp.locks.read(KEY.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, KEY, name)
        conn = await sp.connection(conn_name)
        return user_key(row, await drive(handler(conn, KEY).get_key(driver_iid(row))), hide=True)


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[KeyPairInfo]:
    conn = await sp.connection(require_conn(conn_name))
    rows = only_named(await sp.db.list_iids(conn_name, KEY.rtype), only)
    keys = handler(conn, KEY)

    async def one(row: IIDRow) -> KeyPairInfo:
        async with sp.locks.read(KEY.lock_family, conn_name, row.name):
            try:
                return user_key(row, await drive(keys.get_key(driver_iid(row))), hide=True)
            except SpiderError as exc:
                if errors.is_not_found(exc):
                    return KeyPairInfo(IID(row.name, row.system_id))
                raise

    return await gather_bounded(rows, one)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(KEY.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, KEY, name)
        conn = await sp.connection(conn_name)
        async with recorded(sp, "delete", KEY.rtype, conn_name, name, system_id=row.system_id) as intent:
            if not await delete_with_driver(sp, conn, KEY, row, force, handler(conn, KEY).delete_key):
                return False
            await sp.db.delete_iids([(conn_name, KEY.rtype, "", name)], intent=intent.id)
            intent.closed = True
        return True


async def register(sp: Spider, conn_name: str, req: dict) -> KeyPairInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    async with sp.locks.write(KEY.lock_family, conn_name, name):
        if await sp.db.get_iid(conn_name, KEY.rtype, name) is not None:
            raise errors.already_exists(KEY.type_word, name, conn_name)
        info = await drive(handler(conn, KEY).get_key(IID(csp_id, csp_id)))
        row = IIDRow(conn_name, KEY.rtype, name, ids.spider_system_id(csp_id, info.iid.system_id or csp_id))
        await sp.db.insert_iids([row])
        return user_key(row, info, hide=True)


async def delete_csp(sp: Spider, conn_name: str, csp_id: str) -> bool:
    keys, iid = await csp_target(sp, conn_name, KEY, csp_id)
    return await drive(keys.delete_key(iid))


async def all_info(sp: Spider, conn_name: str) -> dict:
    async def to_user(row: IIDRow, info: KeyPairInfo) -> KeyPairInfo:
        return user_key(row, info, hide=True)

    lists = await common.all_info(sp, conn_name, KEY, "list_key", to_user)
    lists["OnlyCSPInfoList"] = [KeyPairInfo(i.iid, i.fingerprint, HIDDEN, HIDDEN, i.vm_user_id)
                                for i in lists["OnlyCSPInfoList"]]
    return lists


async def unregister(sp: Spider, conn_name: str, name: str) -> bool:
    """Remove only the MetaDB row; the CSP resource stays."""
    return await common.unregister(sp, conn_name, KEY, name)
