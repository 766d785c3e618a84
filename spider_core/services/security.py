"""Security groups and their rules (contract 7.4 and 8)."""

from __future__ import annotations

from typing import Collection

from spider_core import errors, ids, lockplan
from spider_core.intents import recorded
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import IID, SecurityInfo, SecurityReqInfo, SecurityRule, normalise_rule
from spider_core.services.common import (
    SG,
    VPC,
    NameMap,
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
from spider_core.wire import kvs_in, rule_in


def rules_in(items: list[dict] | None) -> list[SecurityRule]:
    """The request's rules, normalised; the same rule twice in one request is refused before any
    cloud call (clouds answer it with an error after creating the first copy, leaving half a change)."""
    rules = [normalise_rule(rule_in(i)) for i in items or []]
    seen: set[SecurityRule] = set()
    for r in rules:
        if r in seen:
            raise SpiderError(f"The rule list names the same rule twice: {{Direction:{r.direction}, "
                              f"IPProtocol:{r.ip_protocol}, FromPort:{r.from_port}, ToPort:{r.to_port}, "
                              f"CIDR:{r.cidr}}}")
        seen.add(r)
    return rules


def user_sg(row: IIDRow, info: SecurityInfo, vpc_iid: IID) -> SecurityInfo:
    rules = None if info.rules is None else [normalise_rule(r) for r in info.rules]
    return SecurityInfo(user_iid(row), vpc_iid, rules, info.tags, info.key_values)


async def _vpc_iid(sp: Spider, conn_name: str, row: IIDRow) -> IID:
    vpc_row = await sp.db.get_iid(conn_name, VPC.rtype, row.owner_vpc) if row.owner_vpc else None
    return user_iid(vpc_row) if vpc_row else IID(row.owner_vpc, "")


def stub(row: IIDRow, vpc_iid: IID) -> SecurityInfo:
    return SecurityInfo(IID(row.name, row.system_id), vpc_iid, None)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> SecurityInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vpc_name = required(req.get("VPCName"), "IID", "VPCName")
    if "SecurityRules" not in req:
        raise SpiderError("resources.SecurityReqInfo:SecurityRules's input value is empty!")
    rules = rules_in(req.get("SecurityRules"))
    conn = await sp.connection(conn_name)
    sgs = handler(conn, SG)
    plan = lockplan.sg_create(sp.locks.mode, vpc_name, name, conn.capability.serialize_in_vpc)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        uuid = new_uuid(conn, SG, name, id_mode)
        async with recorded(sp, "create", SG.rtype, conn_name, name, owner_vpc=vpc_name, sp_uuid=uuid,
                            refuse_existing=SG.type_word) as intent:
            created = await drive(sgs.create_security(SecurityReqInfo(IID(uuid, ""), driver_iid(vpc_row), rules,
                                                                      kvs_in(req.get("TagList")))))
            row = IIDRow(conn_name, SG.rtype, name, ids.spider_system_id(uuid, created.iid.system_id),
                         owner_vpc=vpc_name)
            await store_or_rollback(sp, [row], lambda: sgs.delete_security(created.iid),
                                    f"Security Group '{name}'", intent)
        return user_sg(row, created, user_iid(vpc_row))


async def get(sp: Spider, conn_name: str, name: str) -> SecurityInfo:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("sgName")
    async with sp.locks.read(SG.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, SG, name)
        conn = await sp.connection(conn_name)
        info = await drive(handler(conn, SG).get_security(driver_iid(row)))
        return user_sg(row, info, await _vpc_iid(sp, conn_name, row))


async def list_all(sp: Spider, conn_name: str, vpc_name: str | None = None,
                   only: Collection[str] | None = None) -> list[SecurityInfo]:
    conn = await sp.connection(require_conn(conn_name))
    rows = only_named(await sp.db.list_iids(conn_name, SG.rtype, owner_vpc=vpc_name), only)
    vpc_rows = {r.name: r for r in await sp.db.list_iids(conn_name, VPC.rtype)}
    sgs = handler(conn, SG)

    async def one(row: IIDRow) -> SecurityInfo:
        vpc_row = vpc_rows.get(row.owner_vpc)
        vpc_iid = user_iid(vpc_row) if vpc_row else IID(row.owner_vpc, "")
        async with sp.locks.read(SG.lock_family, conn_name, row.name):
            try:
                info = await drive(sgs.get_security(driver_iid(row)))
            except SpiderError as exc:
                if errors.is_not_found(exc):
                    return stub(row, vpc_iid)
                raise
        return user_sg(row, info, vpc_iid)

    return await gather_bounded(rows, one)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(SG.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, SG, name)
        conn = await sp.connection(conn_name)
        async with recorded(sp, "delete", SG.rtype, conn_name, name, owner_vpc=row.owner_vpc,
                            system_id=row.system_id) as intent:
            if not await delete_with_driver(sp, conn, SG, row, force, handler(conn, SG).delete_security):
                return False
            await sp.db.delete_iids([(conn_name, SG.rtype, row.owner_vpc, name)], intent=intent.id)
            intent.closed = True
        return True


async def _change_rules(sp: Spider, conn_name: str, name: str, req: dict, method: str) -> tuple[IIDRow, object]:
    """AddRules/RemoveRules: W(sg); the SG must be registered (``The Security Group 'x' does not exist!``)."""
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("sgName")
    rules = rules_in(req.get("RuleInfoList"))
    conn = await sp.connection(conn_name)
    async with sp.locks.write(SG.lock_family, conn_name, name):
        row = await sp.db.get_iid(conn_name, SG.rtype, name)
        if row is None:
            raise errors.the_type_does_not_exist(SG.type_word, name)
        return row, await drive(getattr(handler(conn, SG), method)(driver_iid(row), rules))


async def add_rules(sp: Spider, conn_name: str, name: str, req: dict) -> SecurityInfo:
    row, info = await _change_rules(sp, conn_name, name, req, "add_rules")
    return user_sg(row, info, await _vpc_iid(sp, conn_name, row))


async def remove_rules(sp: Spider, conn_name: str, name: str, req: dict) -> bool:
    _, ok = await _change_rules(sp, conn_name, name, req, "remove_rules")
    return bool(ok)


async def register(sp: Spider, conn_name: str, req: dict) -> SecurityInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    vpc_name = (req.get("VPCName") or "").strip()
    conn = await sp.connection(conn_name)
    sgs = handler(conn, SG)

    plan = lockplan.sg_register(sp.locks.mode, vpc_name, name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        if vpc_name:
            await lookup(sp, conn_name, VPC, vpc_name)
        if await sp.db.get_iid(conn_name, SG.rtype, name) is not None:
            raise errors.already_exists(SG.type_word, name, conn_name)
        info = await drive(sgs.get_security(IID(csp_id, csp_id)))
        owner = vpc_name
        if not owner:
            vpc_row = await sp.db.find_iid_by_csp_id(conn_name, VPC.rtype, info.vpc_iid.system_id)
            owner = vpc_row.name if vpc_row else ""
        row = IIDRow(conn_name, SG.rtype, name, ids.spider_system_id(csp_id, info.iid.system_id or csp_id),
                     owner_vpc=owner)
        await sp.db.insert_iids([row])
        return user_sg(row, info, await _vpc_iid(sp, conn_name, row))


async def owner_vpc(sp: Spider, conn_name: str, csp_id: str) -> IID:
    """The VPC a CSP security group belongs to; NameId is '' when that VPC is not registered."""
    return await common.owner_vpc_of(sp, conn_name, SG, csp_id, "get_security")


async def delete_csp(sp: Spider, conn_name: str, csp_id: str) -> bool:
    sgs, iid = await csp_target(sp, conn_name, SG, csp_id)
    return await drive(sgs.delete_security(iid))


async def all_info(sp: Spider, conn_name: str) -> dict:
    vpcs = NameMap(await sp.db.list_iids(require_conn(conn_name), VPC.rtype))

    async def to_user(row: IIDRow, info: SecurityInfo) -> SecurityInfo:
        return user_sg(row, info, vpcs.user(VPC.rtype, info.vpc_iid))

    return await common.all_info(sp, conn_name, SG, "list_security", to_user)


async def unregister(sp: Spider, conn_name: str, name: str) -> bool:
    """Remove only the MetaDB row; the CSP resource stays."""
    return await common.unregister(sp, conn_name, SG, name)
