"""VPC and subnet operations (contract 7.1-7.3): validate -> lock -> MetaDB -> driver -> MetaDB."""

from __future__ import annotations

from typing import Collection

from spider_core import errors, ids, lockplan
from spider_core.intents import recorded
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import IID, SubnetInfo, VPCInfo, VPCReqInfo
from spider_core.services.common import (
    NLB,
    SG,
    SUBNET,
    VPC,
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
from spider_core.services.context import Conn, Spider
from spider_core.wire import kvs_in


def _subnet_req(conn: Conn, item: dict, id_mode: str | None) -> SubnetInfo:
    name = required(item.get("Name"), "IID", "NameId")
    cidr = required(item.get("IPv4_CIDR"), "SubnetInfo", "IPv4_CIDR")
    zone = (item.get("Zone") or "").strip()
    if zone and zone != conn.info.zone and not conn.capability.zone_based_control:
        raise SpiderError(f"{conn.provider} does not support zone-based control: subnet zone '{zone}' "
                          f"differs from the connection's zone '{conn.info.zone}'")
    return SubnetInfo(IID(new_uuid(conn, SUBNET, name, id_mode), ""), zone, cidr, kvs_in(item.get("TagList")))


def user_vpc(row: IIDRow, info: VPCInfo, subnet_rows: list[IIDRow]) -> VPCInfo:
    """The user view: VPC IID from the row; subnets only where a MetaDB row of this VPC matches."""
    subnets: list[SubnetInfo] = []
    for sub in info.subnets or []:
        match = next((r for r in subnet_rows if sub.iid.system_id and sub.iid.system_id in r.system_id), None)
        if match is None:
            continue
        subnets.append(SubnetInfo(user_iid(match), sub.zone or match.zone, sub.ipv4_cidr, sub.tags, sub.key_values))
    return VPCInfo(user_iid(row), info.ipv4_cidr, subnets, info.tags, info.key_values)


def stub(row: IIDRow) -> VPCInfo:
    return VPCInfo(IID(row.name, row.system_id), "", None)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> VPCInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    conn = await sp.connection(conn_name)
    subnet_items = req.get("SubnetInfoList") or []
    names = [required(i.get("Name"), "IID", "NameId") for i in subnet_items]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise errors.already_exists(SUBNET.type_word, dup, conn_name)
    vpcs = handler(conn, VPC)
    plan = lockplan.vpc_create(sp.locks.mode, name, conn_name, conn.capability.single_vpc)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact, defer_cluster=True):
        if conn.capability.single_vpc:
            if await sp.db.get_iid(conn_name, VPC.rtype, name) is not None:
                raise errors.already_exists(VPC.type_word, name, conn_name)
            if await sp.db.count_iids(VPC.rtype, conn_name) > 0:
                raise SpiderError(f"{conn.provider} supports a single VPC per connection; one already exists")
        subnets = [_subnet_req(conn, i, id_mode) for i in subnet_items]
        user_names = {s.iid.name_id: n for s, n in zip(subnets, names)}
        vpc_uuid = new_uuid(conn, VPC, name, id_mode)
        planned = [[user_names[s.iid.name_id], s.iid.name_id, s.zone] for s in subnets]
        async with recorded(sp, "create", VPC.rtype, conn_name, name, sp_uuid=vpc_uuid,
                            detail={"subnets": planned}, refuse_existing=VPC.type_word) as intent:
            created = await drive(vpcs.create_vpc(VPCReqInfo(IID(vpc_uuid, ""), (req.get("IPv4_CIDR") or "").strip(),
                                                             subnets, kvs_in(req.get("TagList")))))
            rows = [IIDRow(conn_name, VPC.rtype, name, ids.spider_system_id(vpc_uuid, created.iid.system_id))]
            zone_of = {s.iid.name_id: s.zone for s in subnets}
            for sub in created.subnets or []:
                user = user_names.get(sub.iid.name_id)
                if user is None:
                    continue
                rows.append(IIDRow(conn_name, SUBNET.rtype, user,
                                   ids.spider_system_id(sub.iid.name_id, sub.iid.system_id),
                                   owner_vpc=name, zone=sub.zone or zone_of.get(sub.iid.name_id, "")))
            await store_or_rollback(sp, rows, lambda: vpcs.delete_vpc(created.iid), f"VPC '{name}'", intent)
        return user_vpc(rows[0], created, rows[1:])


async def get(sp: Spider, conn_name: str, name: str) -> VPCInfo:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("nameID")
    async with sp.locks.read(VPC.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, VPC, name)
        conn = await sp.connection(conn_name)
        info = await drive(handler(conn, VPC).get_vpc(driver_iid(row)))
        return user_vpc(row, info, await sp.db.list_iids(conn_name, SUBNET.rtype, owner_vpc=name))


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[VPCInfo]:
    """Every VPC of the connection, or only the ones named in ``only``."""
    conn = await sp.connection(require_conn(conn_name))
    rows = only_named(await sp.db.list_iids(conn_name, VPC.rtype), only)
    subnet_rows = await sp.db.list_iids(conn_name, SUBNET.rtype)
    by_owner: dict[str, list[IIDRow]] = {}
    for r in subnet_rows:
        by_owner.setdefault(r.owner_vpc, []).append(r)
    vpcs = handler(conn, VPC)

    async def one(row: IIDRow) -> VPCInfo:
        async with sp.locks.read(VPC.lock_family, conn_name, row.name):
            try:
                info = await drive(vpcs.get_vpc(driver_iid(row)))
            except SpiderError as exc:
                if errors.is_not_found(exc):
                    return stub(row)
                raise
            return user_vpc(row, info, by_owner.get(row.name, []))

    return await gather_bounded(rows, one)


async def _refuse_if_in_use(sp: Spider, conn_name: str, name: str) -> None:
    """The lock hierarchy's "in use" answer from the MetaDB: security groups and NLBs registered in the
    VPC would be left pointing at nothing (a cloud may delete the VPC anyway: SGs are per project in
    OpenStack, CB-Spider's mock has no check). VMs are the cloud's to refuse (their rows name no VPC)."""
    users = [(kind, row.name) for kind in (SG, NLB)
             for row in await sp.db.list_iids(conn_name, kind.rtype, owner_vpc=name)]
    if users:
        listed = ", ".join(f"{kind.type_word} '{n}'" for kind, n in users[:5]) + (", ..." if len(users) > 5 else "")
        raise SpiderError(f"VPC '{name}' is in use in connection '{conn_name}' and cannot be deleted: it has "
                          f"dependencies ({listed}); delete them first, or use force")


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(VPC.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, VPC, name)
        if sp.locks.mode == "sponge" and not force:
            await _refuse_if_in_use(sp, conn_name, name)
        conn = await sp.connection(conn_name)
        async with recorded(sp, "delete", VPC.rtype, conn_name, name, system_id=row.system_id) as intent:
            ok = await delete_with_driver(sp, conn, VPC, row, force, handler(conn, VPC).delete_vpc)
            if not ok:
                return False
            await sp.db.delete_iid_with_children(conn_name, VPC.rtype, name, "", SUBNET.rtype, intent=intent.id)
            intent.closed = True
        return True


async def add_subnet(sp: Spider, conn_name: str, vpc_name: str, req: dict, id_mode: str | None) -> VPCInfo:
    require_conn(conn_name)
    if not vpc_name:
        raise errors.empty_input("vpcName")
    sub_name = required(req.get("Name"), "IID", "NameId")
    conn = await sp.connection(conn_name)
    vpcs = handler(conn, VPC)
    plan = lockplan.subnet_change(sp.locks.mode, vpc_name, sub_name, conn.capability.serialize_in_vpc)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        sub = _subnet_req(conn, req, id_mode)
        async with recorded(sp, "create", SUBNET.rtype, conn_name, sub_name, owner_vpc=vpc_name,
                            sp_uuid=sub.iid.name_id, detail={"zone": sub.zone}, refuse_existing=SUBNET.type_word,
                            existing_in=vpc_name) as intent:
            info = await drive(vpcs.add_subnet(driver_iid(vpc_row), sub))
            created = next((s for s in info.subnets or [] if s.iid.name_id == sub.iid.name_id), None)
            if created is None:
                raise SpiderError(f"{conn.provider} driver did not return the new subnet '{sub_name}'")
            row = IIDRow(conn_name, SUBNET.rtype, sub_name,
                         ids.spider_system_id(sub.iid.name_id, created.iid.system_id),
                         owner_vpc=vpc_name, zone=created.zone or sub.zone)
            await store_or_rollback(sp, [row], lambda: vpcs.remove_subnet(driver_iid(vpc_row), created.iid),
                                    f"Subnet '{sub_name}'", intent)
        return user_vpc(vpc_row, info, await sp.db.list_iids(conn_name, SUBNET.rtype, owner_vpc=vpc_name))


async def get_subnet(sp: Spider, conn_name: str, vpc_name: str, name: str) -> SubnetInfo:
    if not conn_name or not vpc_name or not name:
        raise SpiderError("Missing required parameters", status=400)
    vpc = await get(sp, conn_name, vpc_name)
    for sub in vpc.subnets or []:
        if sub.iid.name_id == name:
            return sub
    raise SpiderError("Subnet not found", status=404)


async def remove_subnet(sp: Spider, conn_name: str, vpc_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    if not vpc_name:
        raise errors.empty_input("vpcName")
    if not name:
        raise errors.empty_input("subnetName")
    conn = await sp.connection(conn_name)
    vpcs = handler(conn, VPC)
    plan = lockplan.subnet_change(sp.locks.mode, vpc_name, name, conn.capability.serialize_in_vpc)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        row = await lookup(sp, conn_name, SUBNET, name, owner_vpc=vpc_name)
        async with recorded(sp, "delete", SUBNET.rtype, conn_name, name, owner_vpc=vpc_name,
                            system_id=row.system_id) as intent:
            ok = await delete_with_driver(sp, conn, SUBNET, row, force,
                                          lambda iid: vpcs.remove_subnet(driver_iid(vpc_row), iid))
            if not ok:
                return False
            await sp.db.delete_iids([(conn_name, SUBNET.rtype, vpc_name, name)], intent=intent.id)
            intent.closed = True
        return True


async def remove_csp_subnet(sp: Spider, conn_name: str, vpc_name: str, csp_id: str) -> bool:
    require_conn(conn_name)
    if not csp_id:
        raise errors.empty_input("cspID")
    async with sp.locks.write(VPC.lock_family, conn_name, vpc_name):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        conn = await sp.connection(conn_name)
        return await drive(handler(conn, VPC).remove_subnet(driver_iid(vpc_row), IID(csp_id, csp_id)))


async def register(sp: Spider, conn_name: str, req: dict) -> VPCInfo:
    """Adopt a CSP VPC under a user name; its subnets become ``<vpcName>-subnet-<index>``."""
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    async with sp.locks.write(VPC.lock_family, conn_name, name):
        if await sp.db.get_iid(conn_name, VPC.rtype, name) is not None:
            raise errors.already_exists(VPC.type_word, name, conn_name)
        info = await drive(handler(conn, VPC).get_vpc(IID(csp_id, csp_id)))
        rows = [IIDRow(conn_name, VPC.rtype, name, ids.spider_system_id(csp_id, info.iid.system_id or csp_id))]
        for index, sub in enumerate(info.subnets or [], start=1):
            rows.append(IIDRow(conn_name, SUBNET.rtype, f"{name}-subnet-{index}",
                               ids.spider_system_id(sub.iid.system_id, sub.iid.system_id), owner_vpc=name,
                               zone=sub.zone))
        await sp.db.insert_iids(rows)
        return user_vpc(rows[0], info, rows[1:])


async def register_subnet(sp: Spider, conn_name: str, req: dict) -> VPCInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vpc_name = required(req.get("VPCName"), "IID", "VPCName")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    plan = lockplan.subnet_adopt(sp.locks.mode, vpc_name, name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        if await sp.db.get_iid(conn_name, SUBNET.rtype, name, vpc_name) is not None:
            raise errors.already_exists(SUBNET.type_word, name, conn_name)
        info = await drive(handler(conn, VPC).get_vpc(driver_iid(vpc_row)))
        sub = next((s for s in info.subnets or [] if s.iid.system_id == csp_id), None)
        if sub is None:
            raise SpiderError(f"Subnet '{csp_id}' does not exist in VPC '{vpc_name}' at the CSP")
        zone = (req.get("Zone") or "").strip() or sub.zone or conn.info.zone
        await sp.db.insert_iids([IIDRow(conn_name, SUBNET.rtype, name, ids.spider_system_id(csp_id, csp_id),
                                        owner_vpc=vpc_name, zone=zone)])
        return user_vpc(vpc_row, info, await sp.db.list_iids(conn_name, SUBNET.rtype, owner_vpc=vpc_name))


async def unregister(sp: Spider, conn_name: str, name: str) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(VPC.lock_family, conn_name, name):
        row = await sp.db.get_iid(conn_name, VPC.rtype, name)
        if row is None:
            raise errors.the_type_does_not_exist(VPC.type_word, name)
        await sp.db.delete_iid_with_children(conn_name, VPC.rtype, name, "", SUBNET.rtype)
    return True


async def unregister_subnet(sp: Spider, conn_name: str, vpc_name: str, name: str) -> bool:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("subnetName")
    owner = vpc_name
    if not owner:  # the lock names the owner VPC: find it first, then read the row again under the lock
        found = await sp.db.get_iid(conn_name, SUBNET.rtype, name, None)
        if found is None:
            raise errors.the_type_does_not_exist(SUBNET.type_word, name)
        owner = found.owner_vpc
    plan = lockplan.subnet_adopt(sp.locks.mode, owner, name)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row = await sp.db.get_iid(conn_name, SUBNET.rtype, name, owner)
        if row is None:
            raise errors.the_type_does_not_exist(SUBNET.type_word, name)
        await sp.db.delete_iids([(conn_name, SUBNET.rtype, row.owner_vpc, name)])
    return True


async def delete_csp(sp: Spider, conn_name: str, csp_id: str) -> bool:
    vpcs, iid = await csp_target(sp, conn_name, VPC, csp_id)
    return await drive(vpcs.delete_vpc(iid))


async def all_info(sp: Spider, conn_name: str) -> dict:
    subnet_rows = await sp.db.list_iids(require_conn(conn_name), SUBNET.rtype)

    async def to_user(row: IIDRow, info: VPCInfo) -> VPCInfo:
        return user_vpc(row, info, [s for s in subnet_rows if s.owner_vpc == row.name])

    return await common.all_info(sp, conn_name, VPC, "list_vpc", to_user)