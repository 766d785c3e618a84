"""Network load balancers (contract 6.7, 7.8)."""

from __future__ import annotations

from typing import Collection

from spider_core import errors, ids, lockplan
from spider_core.intents import recorded
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import (
    IID,
    HealthCheckerInfo,
    HealthInfo,
    ListenerInfo,
    NLBInfo,
    NLBReqInfo,
    VMGroupInfo,
)
from spider_core.services.common import (
    NLB,
    VM,
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
from spider_core.services.context import Conn, Spider
from spider_core.wire import kvs_in

# (interval, timeout, threshold) when the request says "default"; AWS and Azure leave timeout to the CSP.
_HC_DEFAULTS = {"TCP": (10, 10, 3), "HTTP": (10, 6, 3), "HTTPS": (10, 6, 3), "UDP": (10, 10, 3)}
_CSP_TIMEOUT = ("AWS", "AZURE", "MOCK")


def _hc_value(text: str | None, default: int) -> int:
    text = (text or "").strip()
    if text.lower() in ("", "default", "-1"):
        return default
    try:
        return int(text)
    except ValueError:
        raise SpiderError(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def health_checker_in(conn: Conn, req: dict) -> HealthCheckerInfo:
    protocol = (req.get("Protocol") or "").strip().upper()
    interval, timeout, threshold = _HC_DEFAULTS.get(protocol, (10, 10, 3))
    if conn.provider in _CSP_TIMEOUT:
        timeout = -1
    return HealthCheckerInfo(protocol, (req.get("Port") or "").strip(), _hc_value(req.get("Interval"), interval),
                             _hc_value(req.get("Timeout"), timeout), _hc_value(req.get("Threshold"), threshold))


def listener_in(req: dict) -> ListenerInfo:
    return ListenerInfo((req.get("Protocol") or "").strip().upper(), port=(req.get("Port") or "").strip())


async def _vm_rows(sp: Spider, conn_name: str, names: list[str]) -> list[IIDRow]:
    return [await lookup(sp, conn_name, VM, n) for n in names]


def _vm_names(value: object, type_name: str) -> list[str]:
    """Member VM names from a request: a list of non-empty names (they become lock keys)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.validation(type_name, "VMs")
    return [required(n, type_name, "VMs") for n in value]


async def user_nlb(sp: Spider, conn_name: str, row: IIDRow, info: NLBInfo, vms: NameMap | None = None) -> NLBInfo:
    vms = vms or NameMap(await sp.db.list_iids(conn_name, VM.rtype))
    vpc_row = await sp.db.get_iid(conn_name, VPC.rtype, row.owner_vpc) if row.owner_vpc else None
    group = info.vm_group
    group = VMGroupInfo(group.protocol, group.port, [vms.user(VM.rtype, v) for v in group.vms], group.csp_id,
                        group.key_values)
    return NLBInfo(user_iid(row), user_iid(vpc_row) if vpc_row else IID(row.owner_vpc, info.vpc_iid.system_id),
                   info.type, info.scope, info.listener, group, info.health_checker, info.created_time, info.tags,
                   info.key_values)


async def create(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> NLBInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vpc_name = required(req.get("VPCName"), "NLBReqInfo", "VPCName")
    listener = listener_in(req.get("Listener") or {})
    group_req = req.get("VMGroup")
    if group_req is None:
        group_req = {"Protocol": listener.protocol, "Port": listener.port, "VMs": []}
    conn = await sp.connection(conn_name)
    hc = health_checker_in(conn, req.get("HealthChecker") or {})
    nlbs = handler(conn, NLB)
    vm_names = _vm_names(group_req.get("VMs"), "VMGroupInfo")
    plan = lockplan.nlb_create(sp.locks.mode, name, vpc_name, vm_names, conn.capability.serialize_in_vpc)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        if await sp.db.get_iid(conn_name, NLB.rtype, name, owner_vpc=vpc_name) is not None:
            raise errors.already_exists(NLB.type_word, name, conn_name)
        vm_rows = await _vm_rows(sp, conn_name, vm_names)
        uuid = new_uuid(conn, NLB, name, id_mode)
        nlb_req = NLBReqInfo(IID(uuid, ""), driver_iid(vpc_row), (req.get("Type") or "PUBLIC").upper(),
                             (req.get("Scope") or "REGION").upper(), listener,
                             VMGroupInfo((group_req.get("Protocol") or "").upper(), group_req.get("Port") or "",
                                         [driver_iid(r) for r in vm_rows]),
                             hc, kvs_in(req.get("TagList")))
        async with recorded(sp, "create", NLB.rtype, conn_name, name, owner_vpc=vpc_name,
                            sp_uuid=uuid) as intent:
            created = await drive(nlbs.create_nlb(nlb_req))
            row = IIDRow(conn_name, NLB.rtype, name, ids.spider_system_id(uuid, created.iid.system_id),
                         owner_vpc=vpc_name)
            await store_or_rollback(sp, [row], lambda: nlbs.delete_nlb(created.iid),
                                    f"Network Load Balancer '{name}'", intent)
        return await user_nlb(sp, conn_name, row, created)


async def get(sp: Spider, conn_name: str, name: str) -> NLBInfo:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("nlbName")
    async with sp.locks.read(NLB.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, NLB, name)
        conn = await sp.connection(conn_name)
        return await user_nlb(sp, conn_name, row, await drive(handler(conn, NLB).get_nlb(driver_iid(row))))


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[NLBInfo]:
    conn = await sp.connection(require_conn(conn_name))
    rows = only_named(await sp.db.list_iids(conn_name, NLB.rtype), only)
    vms = NameMap(await sp.db.list_iids(conn_name, VM.rtype))
    nlbs = handler(conn, NLB)

    async def one(row: IIDRow) -> NLBInfo:
        async with sp.locks.read(NLB.lock_family, conn_name, row.name):
            try:
                info = await drive(nlbs.get_nlb(driver_iid(row)))
            except SpiderError as exc:
                if errors.is_not_found(exc):
                    return NLBInfo(IID(row.name, row.system_id), IID(row.owner_vpc, ""))
                raise
        return await user_nlb(sp, conn_name, row, info, vms)

    return await gather_bounded(rows, one)


async def delete(sp: Spider, conn_name: str, name: str, force: bool) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(NLB.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, NLB, name)
        conn = await sp.connection(conn_name)
        async with recorded(sp, "delete", NLB.rtype, conn_name, name, owner_vpc=row.owner_vpc,
                            system_id=row.system_id) as intent:
            if not await delete_with_driver(sp, conn, NLB, row, force, handler(conn, NLB).delete_nlb):
                return False
            await sp.db.delete_iids([(conn_name, NLB.rtype, row.owner_vpc, name)], intent=intent.id)
            intent.closed = True
        return True


async def _with_nlb(sp: Spider, conn_name: str, name: str):
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("nlbName")
    row = await lookup(sp, conn_name, NLB, name)
    conn = await sp.connection(conn_name)
    return row, handler(conn, NLB), conn


async def add_vms(sp: Spider, conn_name: str, name: str, vm_names: list[str]) -> NLBInfo:
    vm_names = _vm_names(vm_names, "NLBAddRemoveVMReq")
    plan = lockplan.nlb_members(sp.locks.mode, name, vm_names)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row, nlbs, _ = await _with_nlb(sp, conn_name, name)
        vm_rows = await _vm_rows(sp, conn_name, vm_names)
        await drive(nlbs.add_vms(driver_iid(row), [driver_iid(r) for r in vm_rows]))
        return await user_nlb(sp, conn_name, row, await drive(nlbs.get_nlb(driver_iid(row))))


async def remove_vms(sp: Spider, conn_name: str, name: str, vm_names: list[str]) -> bool:
    vm_names = _vm_names(vm_names, "NLBAddRemoveVMReq")
    plan = lockplan.nlb_members(sp.locks.mode, name, vm_names)
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        row, nlbs, _ = await _with_nlb(sp, conn_name, name)
        vm_rows = await _vm_rows(sp, conn_name, vm_names)
        return await drive(nlbs.remove_vms(driver_iid(row), [driver_iid(r) for r in vm_rows]))


async def change_listener(sp: Spider, conn_name: str, name: str, req: dict) -> NLBInfo:
    async with sp.locks.write(NLB.lock_family, conn_name, name):
        row, nlbs, _ = await _with_nlb(sp, conn_name, name)
        await drive(nlbs.change_listener(driver_iid(row), listener_in(req)))
        return await user_nlb(sp, conn_name, row, await drive(nlbs.get_nlb(driver_iid(row))))


async def change_vm_group(sp: Spider, conn_name: str, name: str, req: dict) -> NLBInfo:
    async with sp.locks.write(NLB.lock_family, conn_name, name):
        row, nlbs, _ = await _with_nlb(sp, conn_name, name)
        group = VMGroupInfo((req.get("Protocol") or "").strip().upper(), (req.get("Port") or "").strip())
        await drive(nlbs.change_vm_group_info(driver_iid(row), group))
        return await user_nlb(sp, conn_name, row, await drive(nlbs.get_nlb(driver_iid(row))))


async def change_health_checker(sp: Spider, conn_name: str, name: str, req: dict) -> NLBInfo:
    async with sp.locks.write(NLB.lock_family, conn_name, name):
        row, nlbs, conn = await _with_nlb(sp, conn_name, name)
        await drive(nlbs.change_health_checker_info(driver_iid(row), health_checker_in(conn, req)))
        return await user_nlb(sp, conn_name, row, await drive(nlbs.get_nlb(driver_iid(row))))


async def health(sp: Spider, conn_name: str, name: str) -> HealthInfo:
    async with sp.locks.write(NLB.lock_family, conn_name, name):
        row, nlbs, _ = await _with_nlb(sp, conn_name, name)
        info = await drive(nlbs.get_vm_group_health(driver_iid(row)))
        vms = NameMap(await sp.db.list_iids(conn_name, VM.rtype))
        return HealthInfo([vms.user(VM.rtype, v) for v in info.all_vms],
                          [vms.user(VM.rtype, v) for v in info.healthy_vms],
                          [vms.user(VM.rtype, v) for v in info.unhealthy_vms])


async def register(sp: Spider, conn_name: str, req: dict) -> NLBInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    vpc_name = required(req.get("VPCName"), "NLBReqInfo", "VPCName")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    async with sp.locks.read(VPC.lock_family, conn_name, vpc_name):
        await lookup(sp, conn_name, VPC, vpc_name)
        async with sp.locks.write(NLB.lock_family, conn_name, name):
            if await sp.db.get_iid(conn_name, NLB.rtype, name, owner_vpc=vpc_name) is not None:
                raise errors.already_exists(NLB.type_word, name, conn_name)
            info = await drive(handler(conn, NLB).get_nlb(IID(csp_id, csp_id)))
            row = IIDRow(conn_name, NLB.rtype, name, ids.spider_system_id(csp_id, info.iid.system_id or csp_id),
                         owner_vpc=vpc_name)
            await sp.db.insert_iids([row])
            return await user_nlb(sp, conn_name, row, info)


async def owner_vpc(sp: Spider, conn_name: str, csp_id: str) -> IID:
    """The VPC a CSP load balancer belongs to; NameId is '' when that VPC is not registered."""
    return await common.owner_vpc_of(sp, conn_name, NLB, csp_id, "get_nlb")


async def delete_csp(sp: Spider, conn_name: str, csp_id: str) -> bool:
    nlbs, iid = await csp_target(sp, conn_name, NLB, csp_id)
    return await drive(nlbs.delete_nlb(iid))


async def all_info(sp: Spider, conn_name: str) -> dict:
    vms = NameMap(await sp.db.list_iids(require_conn(conn_name), VM.rtype))

    async def to_user(row: IIDRow, info: NLBInfo) -> NLBInfo:
        return await user_nlb(sp, conn_name, row, info, vms)

    return await common.all_info(sp, conn_name, NLB, "list_nlb", to_user)


async def unregister(sp: Spider, conn_name: str, name: str) -> bool:
    """Remove only the MetaDB row; the CSP resource stays."""
    return await common.unregister(sp, conn_name, NLB, name)
