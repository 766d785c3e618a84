"""Connection-wide operations: destroy, AnyCall, capability and CSP-name lookups."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from spider_core import errors
from spider_core.drivers.base import DriverCapability
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import AnyCallInfo, KeyValue
from spider_core.services import disk, keypair, myimage, nic, nlb, publicip, security, vm, vpc
from spider_core.services.common import (DISK, KEY, KINDS, MYIMAGE, NIC, NLB, PUBLICIP, SG, VM, VPC, Kind, drive,
                                         lookup, require_conn, user_iid)
from spider_core.services.context import Spider

# Dependency order; types within a group are deleted in parallel (contract 7.9).
# A terminated VM lets go of its disks, NICs and public IPs, so those follow the VMs.
DESTROY_ORDER: list[list[Kind]] = [[MYIMAGE, NLB], [VM], [DISK, NIC, PUBLICIP], [KEY, SG], [VPC]]

_DELETE: dict[str, Callable[[Spider, str, str, bool], Awaitable[Any]]] = {
    NLB.rtype: nlb.delete, VM.rtype: vm.terminate, KEY.rtype: keypair.delete, SG.rtype: security.delete,
    VPC.rtype: vpc.delete, MYIMAGE.rtype: myimage.delete, DISK.rtype: disk.delete, NIC.rtype: nic.delete,
    PUBLICIP.rtype: publicip.delete,
}


async def destroy(sp: Spider, conn_name: str) -> dict:
    """Delete every registered resource of a connection, retrying failures, and report per type."""
    require_conn(conn_name)
    await sp.connection(conn_name)
    results: list[dict] = []
    for group in DESTROY_ORDER:
        outcomes = await asyncio.gather(*(_destroy_type(sp, conn_name, k) for k in group))
        results.extend(o for o in outcomes if o is not None)
    if not results:
        return {"IsAllDestroyed": True, "DeletedAllListByResourceType": None}
    return {"IsAllDestroyed": all(r["IsAllDeleted"] for r in results), "DeletedAllListByResourceType": results}


async def _destroy_type(sp: Spider, conn_name: str, kind: Kind) -> dict | None:
    rows = await sp.db.list_iids(conn_name, kind.rtype)
    if not rows:
        return None
    deleted: list[IIDRow] = []
    failed: dict[str, str] = {}
    pending = rows
    for attempt in range(max(1, sp.settings.destroy_retries)):
        if attempt:
            await asyncio.sleep(sp.settings.destroy_retry_delay)
        outcomes = await asyncio.gather(*(_DELETE[kind.rtype](sp, conn_name, r.name, False) for r in pending),
                                        return_exceptions=True)
        retry: list[IIDRow] = []
        for row, outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException) or outcome is False:
                failed[row.name] = (outcome.message if isinstance(outcome, SpiderError)
                                    else str(outcome) if isinstance(outcome, BaseException) else "driver returned false")
                retry.append(row)
            else:
                failed.pop(row.name, None)
                deleted.append(row)
        if not retry:
            break
        pending = retry
    return {"ResourceType": kind.rtype, "IsAllDeleted": not failed,
            "DeletedIIDList": [user_iid(r) for r in deleted],
            "RemainedErrorInfoList": [{"Name": n, "ErrorMsg": m} for n, m in failed.items()]}


async def any_call(sp: Spider, conn_name: str, req: dict) -> AnyCallInfo:
    conn = await sp.connection(require_conn(conn_name))
    if conn.cloud.any_call is None:
        raise errors.NotSupported(f"{conn.provider} driver does not support AnyCall!")
    call = AnyCallInfo(req.get("FID", ""), [KeyValue(i.get("Key", ""), i.get("Value", ""))
                                            for i in req.get("IKeyValueList") or []])
    return await drive(conn.cloud.any_call.any_call(call))


async def capability(sp: Spider, conn_name: str) -> DriverCapability:
    conn = await sp.connection(require_conn(conn_name))
    return conn.capability


def _kind(resource_type: str) -> Kind:
    kind = KINDS.get((resource_type or "").strip().lower())
    if kind is None:
        raise SpiderError(f"{resource_type}: unsupported ResourceType (use one of {', '.join(KINDS)})")
    return kind


async def csp_resource_name(sp: Spider, conn_name: str, resource_type: str, name: str) -> str:
    require_conn(conn_name)
    row = await lookup(sp, conn_name, _kind(resource_type), name)
    return user_iid(row).system_id


_GETTERS: dict[str, Callable[[Spider, str, str], Awaitable[Any]]] = {
    VPC.rtype: vpc.get, SG.rtype: security.get, KEY.rtype: keypair.get, VM.rtype: vm.get, NLB.rtype: nlb.get,
    DISK.rtype: disk.get, MYIMAGE.rtype: myimage.get, PUBLICIP.rtype: publicip.get, NIC.rtype: nic.get,
}


async def csp_resource_info(sp: Spider, conn_name: str, resource_type: str, name: str) -> tuple[str, Any]:
    kind = _kind(resource_type)
    getter = _GETTERS.get(kind.rtype)
    if getter is None:
        raise SpiderError(f"{resource_type}: resource info is not available for this type")
    return kind.rtype, await getter(sp, require_conn(conn_name), name)
