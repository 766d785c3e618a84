"""VMs (contract 7.6, 7.7): start, get/list, status, control, terminate, register."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, Collection

from spider_core import errors, ids, lockplan
from spider_core.intents import recorded
from spider_core.calllog import call_log
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import IID, VMAction, VMInfo, VMReqInfo, VMStatus, VMStatusInfo
from spider_core.services.common import (
    DISK,
    KEY,
    MYIMAGE,
    SG,
    SUBNET,
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
from spider_core.services import common, imagespec
from spider_core.services.connection import cloud_os_meta
from spider_core.services.context import Conn, Spider
from spider_core.wire import kvs_in

log = logging.getLogger(__name__)

STATUS_WORDS = {s.value for s in VMStatus}


async def _names(sp: Spider, conn_name: str) -> NameMap:
    return await NameMap.load(sp, conn_name, [VPC.rtype, SUBNET.rtype, SG.rtype, KEY.rtype, DISK.rtype,
                                              MYIMAGE.rtype, "nic"])


def platform_word(platform: str) -> str:
    """CB-Spider's Platform values: ``LINUX/UNIX`` or ``WINDOWS`` (drivers say Linux/UNIX, LINUX_UNIX...)."""
    if not platform:
        return ""
    return "WINDOWS" if platform.strip().lower().startswith("windows") else "LINUX/UNIX"


def user_vm(row: IIDRow, info: VMInfo, names: NameMap, *, name_nics: bool = True) -> VMInfo:
    """Map a driver's VMInfo to user names and fill CB-Spider's derived fields (7.6 step 12-13)."""
    windows = info.platform.lower().startswith("windows")
    public_ip = info.public_ip
    ssh = info.ssh_access_point or (f"{public_ip}:{3389 if windows else 22}" if public_ip else "")
    nics = info.nics
    if name_nics:
        nics = [replace(n, iid=IID(names.user("nic", n.iid).name_id or ("default" if i == 0 else f"default-{i}"),
                                   n.iid.system_id),
                        subnet_iid=names.user(SUBNET.rtype, n.subnet_iid) if n.subnet_iid.system_id else n.subnet_iid)
                for i, n in enumerate(info.nics)]
    image_id = info.image_iid.system_id or info.image_iid.name_id
    my_image = names.user(MYIMAGE.rtype, IID("", image_id)) if image_id else IID()
    return replace(
        info,
        iid=user_iid(row),
        image_type="MyImage" if my_image.name_id else (info.image_type or "PublicImage"),
        image_iid=my_image if my_image.name_id else IID(image_id, image_id),
        data_disk_iids=[names.user(DISK.rtype, d) for d in info.data_disk_iids],
        platform=platform_word(info.platform),
        vpc_iid=names.user(VPC.rtype, info.vpc_iid),
        subnet_iid=names.user(SUBNET.rtype, info.subnet_iid),
        security_group_iids=[names.user(SG.rtype, s) for s in info.security_group_iids],
        keypair_iid=names.user(KEY.rtype, info.keypair_iid),
        vm_user_id=info.vm_user_id or ("Administrator" if windows else "cb-user"),
        ssh_access_point=ssh,
        nics=nics,
        network_interface=info.network_interface or (nics[0].iid.system_id if nics else ""),
    )


def stub(row: IIDRow) -> VMInfo:
    return VMInfo(IID(row.name, row.system_id), image_type="")


def _root_disk(conn: Conn, disk_type: str, disk_size: str) -> tuple[str, str]:
    disk_type = (disk_type or "").strip()
    if disk_type.lower() in ("", "default"):
        disk_type = ""
    elif disk_type.upper().startswith("TYPE") and disk_type[4:].isdecimal():
        types = [t for t in cloud_os_meta(conn.provider)["RootDiskType"] if t]
        index = int(disk_type[4:]) - 1
        if not 0 <= index < len(types):
            raise SpiderError(f"{disk_type} is not a valid Root Disk Type: {conn.provider} has {types}!")
        disk_type = types[index]
    disk_size = (disk_size or "").strip()
    if disk_size.lower() in ("", "default"):
        disk_size = ""
    elif not disk_size.isdecimal() or int(disk_size) <= 0:
        raise SpiderError(f"{disk_size} is not a valid Root Disk Size: it must be a positive integer (GB)!")
    return disk_type, disk_size


async def start(sp: Spider, conn_name: str, req: dict, id_mode: str | None) -> VMInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    image_name = required(req.get("ImageName"), "VMReqInfo", "ImageName")
    spec = required(req.get("VMSpecName"), "VMReqInfo", "VMSpecName")
    vpc_name = required(req.get("VPCName"), "VMReqInfo", "VPCName")
    subnet_name = required(req.get("SubnetName"), "VMReqInfo", "SubnetName")
    sg_names = req.get("SecurityGroupNames") or []
    if not sg_names or not isinstance(sg_names, list):
        raise errors.validation("VMReqInfo", "SecurityGroupNames")
    sg_names = [required(s, "VMReqInfo", "SecurityGroupNames") for s in sg_names]
    key_name = required(req.get("KeyPairName"), "VMReqInfo", "KeyPairName")
    image_type = (req.get("ImageType") or "PublicImage").strip()
    if image_type.lower() not in ("publicimage", "myimage", "public", "my", ""):
        raise SpiderError(f"{image_type} is not a valid ImageType (PublicImage or MyImage)!")
    image_type = "MyImage" if image_type.lower().startswith("my") else "PublicImage"
    if image_type == "MyImage" and (req.get("RootDiskType") or req.get("RootDiskSize")):
        raise SpiderError("A MyImage based VM cannot set RootDiskType or RootDiskSize!")
    disk_names = [required(d, "VMReqInfo", "DataDiskNames") for d in req.get("DataDiskNames") or []]
    conn = await sp.connection(conn_name)
    root_type, root_size = _root_disk(conn, req.get("RootDiskType", ""), req.get("RootDiskSize", ""))
    vms = handler(conn, VM)
    plan = lockplan.vm_start(sp.locks.mode, name, vpc_name, subnet_name, sg_names, key_name,
                             conn.capability.serialize_in_vpc, image=image_name if image_type == "MyImage" else "",
                             disks=disk_names)
    started = time.monotonic()
    async with sp.locks.hold(conn_name, plan.needs, exact=plan.exact):
        if await sp.db.get_iid(conn_name, VM.rtype, name) is not None:
            raise errors.already_exists(VM.type_word, name, conn_name)
        subnet_row = await lookup(sp, conn_name, SUBNET, subnet_name, owner_vpc=vpc_name)
        vpc_row = await lookup(sp, conn_name, VPC, vpc_name)
        sg_rows = [await lookup(sp, conn_name, SG, s) for s in sg_names]
        key_row = await lookup(sp, conn_name, KEY, key_name)
        disk_rows = [await lookup(sp, conn_name, DISK, d) for d in disk_names]
        if disk_rows and conn.cloud.disk is None:
            raise errors.NotSupported(f"{conn.provider} driver does not support Disk handling!")
        image_iid = IID(image_name, image_name)
        if image_type == "MyImage":
            image_iid = driver_iid(await lookup(sp, conn_name, MYIMAGE, image_name))
        elif conn.cloud.image is not None:
            try:  # CB-Spider ignores this check's errors (MOCK answers "not supported yet!")
                await drive(conn.cloud.image.check_windows_image(image_iid))
            except SpiderError as exc:
                log.debug("windows image check for %s: %s", image_name, exc.message)
        uuid = new_uuid(conn, VM, name, id_mode)
        vm_req = VMReqInfo(IID(uuid, ""), image_type, image_iid, spec, driver_iid(vpc_row), driver_iid(subnet_row),
                           [driver_iid(r) for r in sg_rows], driver_iid(key_row), root_type, root_size, [],
                           req.get("VMUserId", ""), req.get("VMUserPasswd", ""), kvs_in(req.get("TagList")),
                           zone=subnet_row.zone)
        async with recorded(sp, "create", VM.rtype, conn_name, name, sp_uuid=uuid,
                            detail={"zone": subnet_row.zone}) as intent:
            with call_log.timed(cloud_os=conn.provider, region_zone=conn.region_zone, resource_type="VM",
                                resource_name=name, api="CB-Spider:StartVM()", connection=conn_name):
                info = await drive(vms.start_vm(vm_req))
                info = await _wait_for_public_ip(sp, conn, info)
            row = IIDRow(conn_name, VM.rtype, name, ids.spider_system_id(uuid, info.iid.system_id),
                         zone=subnet_row.zone or info.zone)
            await store_or_rollback(sp, [row], lambda: vms.terminate_vm(info.iid), f"VM '{name}'", intent)
        if disk_rows:
            info = await _attach_data_disks(conn, info, disk_rows)
        await _record_recent(sp, conn, req, image_name, spec, subnet_row.zone, time.monotonic() - started)
        return user_vm(row, info, await _names(sp, conn_name))


async def _attach_data_disks(conn: Conn, info: VMInfo, disk_rows: list[IIDRow]) -> VMInfo:
    """Attach the request's data disks to the new VM (the VM is stored already: a failed attach is
    reported and the VM stays, as a driver's failed attach would leave it)."""
    for row in disk_rows:
        await drive(handler(conn, DISK).attach_disk(driver_iid(row), info.iid))
    return await drive(handler(conn, VM).get_vm(info.iid))


async def _record_recent(sp: Spider, conn: Conn, req: dict, image: str, spec: str, zone: str, seconds: float) -> None:
    """CB-Spider keeps a "recent" record per image+spec after each successful start (never fails the start)."""
    try:
        await imagespec.record_start(sp, conn.provider, conn.info.region, zone, image, spec, seconds, {})
    except Exception:  # noqa: BLE001 - a statistics write must not fail a VM that is running
        log.exception("recording the recent image+spec of a VM start failed")


async def _wait_for_public_ip(sp: Spider, conn: Conn, info: VMInfo) -> VMInfo:
    """Poll until the VM has a PublicIP, then (for drivers that ask) until SSH answers; only logged on timeout."""
    vms = handler(conn, VM)
    deadline = time.monotonic() + sp.settings.vm_ip_timeout
    while not info.public_ip and time.monotonic() < deadline:
        await asyncio.sleep(sp.settings.vm_ip_poll_interval)
        try:
            info = await drive(vms.get_vm(info.iid))
        except SpiderError as exc:
            log.warning("waiting for PublicIP of %s: %s", info.iid.name_id, exc.message)
    if not info.public_ip:
        log.warning("VM %s has no PublicIP after %.0f s", info.iid.name_id, sp.settings.vm_ip_timeout)
    elif conn.capability.probe_ssh_after_start and not info.platform.lower().startswith("windows"):
        host, _, port = (info.ssh_access_point or f"{info.public_ip}:22").rpartition(":")
        if not await _probe_ssh(host, int(port or 22), sp.settings.vm_ssh_probe_timeout):
            log.warning("VM %s: SSH on %s:%s not ready after %.0f s", info.iid.name_id, host, port,
                        sp.settings.vm_ssh_probe_timeout)
    return info


async def _probe_ssh(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            try:
                banner = await asyncio.wait_for(reader.read(4), 2)
            finally:
                writer.close()
            if banner.startswith(b"SSH"):
                return True
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(2)
    return False


async def get(sp: Spider, conn_name: str, name: str) -> VMInfo:
    require_conn(conn_name)
    if not name:
        raise errors.empty_input("nameID")
    async with sp.locks.read(VM.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, VM, name)
        conn = await sp.connection(conn_name)
        info = await drive(handler(conn, VM).get_vm(driver_iid(row)))
        return user_vm(row, info, await _names(sp, conn_name))


async def _rows_and_handler(sp: Spider, conn_name: str) -> tuple[list[IIDRow], Any]:
    """VM lists read the MetaDB first (an unknown connection has no rows: an empty list, as in
    CB-Spider); the handler is None when the connection cannot be opened (every row becomes a stub)."""
    rows = await sp.db.list_iids(require_conn(conn_name), VM.rtype)
    if not rows:
        return rows, None
    try:
        return rows, handler(await sp.connection(conn_name), VM)
    except SpiderError:
        return rows, None


async def list_all(sp: Spider, conn_name: str, only: Collection[str] | None = None) -> list[VMInfo]:
    """Never fails per VM: any error gives a stub; an unknown connection gives an empty list.
    ``only`` names the VMs to fetch (one page of a long table); None fetches all."""
    rows, vms = await _rows_and_handler(sp, conn_name)
    rows = only_named(rows, only)
    if vms is None:
        return [stub(r) for r in rows]
    names = await _names(sp, conn_name)

    async def one(row: IIDRow) -> VMInfo:
        async with sp.locks.read(VM.lock_family, conn_name, row.name):
            try:
                return user_vm(row, await drive(vms.get_vm(driver_iid(row))), names, name_nics=False)
            except SpiderError:
                return stub(row)

    return await gather_bounded(rows, one)


async def status(sp: Spider, conn_name: str, name: str) -> str:
    """No lock (CB-Spider). Not-found is an error here; the list maps it to NotExist."""
    require_conn(conn_name)
    row = await lookup(sp, conn_name, VM, name)
    conn = await sp.connection(conn_name)
    return (await _known_status(sp, conn, driver_iid(row))).value


async def _known_status(sp: Spider, conn: Conn, iid: IID) -> VMStatus:
    deadline = time.monotonic() + 60
    while True:
        value = await drive(handler(conn, VM).get_vm_status(iid))
        word = value.value if isinstance(value, VMStatus) else str(value)
        if word in STATUS_WORDS or time.monotonic() > deadline:
            return VMStatus(word) if word in STATUS_WORDS else VMStatus.FAILED
        await asyncio.sleep(3)


async def list_status(sp: Spider, conn_name: str) -> list[VMStatusInfo]:
    rows, vms = await _rows_and_handler(sp, conn_name)
    if vms is None:
        return [VMStatusInfo(user_iid(r), VMStatus.NOT_EXIST.value) for r in rows]

    async def one(row: IIDRow) -> VMStatusInfo:
        try:
            value = await drive(vms.get_vm_status(driver_iid(row)))
            word = value.value if isinstance(value, VMStatus) else str(value)
        except SpiderError as exc:
            word = VMStatus.NOT_EXIST.value if errors.is_not_found(exc) else VMStatus.FAILED.value
        return VMStatusInfo(user_iid(row), word)

    return await gather_bounded(rows, one)


async def control(sp: Spider, conn_name: str, name: str, action: str) -> str:
    require_conn(conn_name)
    try:
        act = VMAction((action or "").strip().lower())
    except ValueError:
        raise SpiderError(f"{action} is not a valid action!!") from None
    async with sp.locks.read(VM.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, VM, name)
        conn = await sp.connection(conn_name)
        value = await drive(handler(conn, VM).control_vm(driver_iid(row), act))
        return value.value if isinstance(value, VMStatus) else str(value)


async def terminate(sp: Spider, conn_name: str, name: str, force: bool) -> str:
    require_conn(conn_name)
    async with sp.locks.write(VM.lock_family, conn_name, name):
        row = await lookup(sp, conn_name, VM, name)
        conn = await sp.connection(conn_name)
        vms = handler(conn, VM)
        async with recorded(sp, "delete", VM.rtype, conn_name, name, system_id=row.system_id) as intent:
            with call_log.timed(cloud_os=conn.provider, region_zone=conn.region_zone, resource_type="VM",
                                resource_name=name, api="CB-Spider:TerminateVM()", connection=conn_name):
                outcome = await delete_with_driver(sp, conn, VM, row, force, vms.terminate_vm)
                if outcome is True:  # the driver said not-found (or forced): the VM is gone for us
                    result = VMStatus.TERMINATED.value
                else:
                    result = outcome.value if isinstance(outcome, VMStatus) else str(outcome)
                    result = await _wait_terminated(sp, conn, driver_iid(row), result)
            await sp.db.delete_iids([(conn_name, VM.rtype, "", name)], intent=intent.id)
            intent.closed = True
        return result


async def _wait_terminated(sp: Spider, conn: Conn, iid: IID, answer: str) -> str:
    deadline = time.monotonic() + sp.settings.vm_terminate_timeout
    vms = handler(conn, VM)
    while True:
        try:
            value = await drive(vms.get_vm_status(iid))
        except SpiderError as exc:
            if errors.is_not_found(exc):
                return answer
            log.warning("waiting for %s to terminate: %s", iid.name_id, exc.message)
        else:
            if value == VMStatus.TERMINATED:
                return answer
        if time.monotonic() >= deadline:
            log.warning("VM %s not terminated after %.0f s", iid.name_id, sp.settings.vm_terminate_timeout)
            return answer
        await asyncio.sleep(sp.settings.vm_terminate_poll_interval)


async def register(sp: Spider, conn_name: str, req: dict) -> VMInfo:
    require_conn(conn_name)
    name = required(req.get("Name"), "IID", "NameId")
    csp_id = required(req.get("CSPId"), "IID", "SystemId")
    conn = await sp.connection(conn_name)
    async with sp.locks.write(VM.lock_family, conn_name, name):
        if await sp.db.get_iid(conn_name, VM.rtype, name) is not None:
            raise errors.already_exists(VM.type_word, name, conn_name)
        info = await drive(handler(conn, VM).get_vm(IID(csp_id, csp_id)))
        row = IIDRow(conn_name, VM.rtype, name, ids.spider_system_id(csp_id, info.iid.system_id or csp_id),
                     zone=info.zone)
        await sp.db.insert_iids([row])
        return user_vm(row, info, await _names(sp, conn_name))


async def get_csp(sp: Spider, conn_name: str, csp_id: str) -> VMInfo:
    vms, iid = await csp_target(sp, conn_name, VM, csp_id)
    info = await drive(vms.get_vm(iid))
    row = await sp.db.find_iid_by_csp_id(conn_name, VM.rtype, csp_id)
    return user_vm(row or IIDRow(conn_name, VM.rtype, "", csp_id), info, await _names(sp, conn_name))


async def delete_csp(sp: Spider, conn_name: str, csp_id: str) -> str:
    vms, iid = await csp_target(sp, conn_name, VM, csp_id)
    value = await drive(vms.terminate_vm(iid))
    return value.value if isinstance(value, VMStatus) else str(value)


async def using_resources(sp: Spider, conn_name: str, csp_id: str) -> dict:
    if not conn_name or not csp_id:
        raise SpiderError("ConnectionName and CSPId are required", status=400)
    info = await get_csp(sp, conn_name, csp_id)
    return {"VPC": info.vpc_iid, "SGList": info.security_group_iids, "VMKey": info.keypair_iid}


async def all_info(sp: Spider, conn_name: str) -> dict:
    names = await _names(sp, require_conn(conn_name))

    async def to_user(row: IIDRow, info: VMInfo) -> VMInfo:
        return user_vm(row, info, names)

    lists = await common.all_info(sp, conn_name, VM, "list_vm", to_user)
    lists["OnlyCSPInfoList"] = [user_vm(IIDRow(conn_name, VM.rtype, "", i.iid.system_id), i, names)
                                for i in lists["OnlyCSPInfoList"]]
    return lists


async def unregister(sp: Spider, conn_name: str, name: str) -> bool:
    """Remove only the MetaDB row; the CSP resource stays."""
    return await common.unregister(sp, conn_name, VM, name)
