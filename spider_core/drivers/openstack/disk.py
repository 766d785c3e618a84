"""Disk handler: Cinder v3 volumes; attachments through Nova's ``os-volume_attachments`` (what CB-Spider's
OpenStack driver does). Creates, attaches, detaches and resizes wait until the volume settles."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_DISK
from spider_core.drivers.base import DiskHandler
from spider_core.drivers.openstack.session import OpenStackError, OpenStackNotFound, OsSession, wait_until
from spider_core.model import IID, DiskInfo, DiskStatus, KeyValue

_STATUS = {"creating": DiskStatus.CREATING, "downloading": DiskStatus.CREATING, "available": DiskStatus.AVAILABLE,
           "reserved": DiskStatus.AVAILABLE, "attaching": DiskStatus.ATTACHED, "in-use": DiskStatus.ATTACHED,
           "detaching": DiskStatus.ATTACHED, "extending": DiskStatus.AVAILABLE, "deleting": DiskStatus.DELETING,
           "maintenance": DiskStatus.AVAILABLE}
STEADY = {"available", "in-use", "error", "error_extending", "error_deleting"}
DEFAULT_SIZE = "1"  # GB; CB-Spider's OpenStack meta: DiskSize default|1|...
SETTLE_TIMEOUT = 300.0


class OsDiskHandler(DiskHandler):
    def __init__(self, session: OsSession, *, poll_interval: float = 0.2) -> None:
        self.s = session
        self.poll_interval = poll_interval

    def _info(self, v: dict[str, Any]) -> DiskInfo:
        attachments = v.get("attachments") or []
        status = _STATUS.get(str(v.get("status", "")), DiskStatus.ERROR)
        kvs = [KeyValue("VolumeId", v["id"]), KeyValue("Bootable", str(v.get("bootable", "false")))]
        if attachments:
            kvs.append(KeyValue("Device", attachments[0].get("device", "") or ""))
        meta = v.get("metadata") or {}
        return DiskInfo(iid=IID(v.get("name") or "", v["id"]), zone=v.get("availability_zone", "") or "",
                        disk_type=v.get("volume_type", "") or "", disk_size=str(v.get("size", "")),
                        status=status.value,
                        owner_vm=IID("", attachments[0].get("server_id", "")) if attachments else IID(),
                        created_time=str(v.get("created_at", "") or ""),
                        tags=[KeyValue(k, str(val)) for k, val in meta.items()], key_values=kvs)

    async def _volume(self, iid: IID) -> dict[str, Any]:
        vid = iid.system_id or iid.name_id
        try:
            return (await self.s.call(RT_DISK, iid.name_id or vid, "volume", "GET", f"/volumes/{vid}"))["volume"]
        except OpenStackNotFound:
            raise OpenStackNotFound(f"VolumeNotFound: Volume {vid} could not be found.") from None

    async def _settled(self, iid: IID, what: str, want: set[str] | None = None) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            v = await self._volume(iid)
            status = str(v.get("status", ""))
            if status.startswith("error"):
                raise OpenStackError(f"Volume {iid.system_id} went to {status} while {what}", error_type="VolumeError")
            return v if status in (want or STEADY) else None

        return await wait_until(check, timeout=SETTLE_TIMEOUT, interval=self.poll_interval,
                                what=f"volume {iid.name_id or iid.system_id} {what}")

    async def create_disk(self, req: DiskInfo) -> DiskInfo:
        body: dict[str, Any] = {"name": req.iid.name_id, "size": int(req.disk_size or DEFAULT_SIZE)}
        if req.disk_type:
            body["volume_type"] = req.disk_type
        zone = req.zone or self.s.zone
        if zone:
            body["availability_zone"] = zone
        if req.tags:
            body["metadata"] = {kv.key[:255]: kv.value[:255] for kv in req.tags if kv.key}
        v = (await self.s.call(RT_DISK, req.iid.name_id, "volume", "POST", "/volumes", {"volume": body}))["volume"]
        info = self._info(await self._settled(IID(req.iid.name_id, v["id"]), "being created", {"available"}))
        info.iid = IID(req.iid.name_id, v["id"])
        return info

    async def list_disk(self) -> list[DiskInfo]:
        return [self._info(v) for v in await self.s.list_all(RT_DISK, "", "volume", "/volumes/detail", "volumes")]

    async def get_disk(self, iid: IID) -> DiskInfo:
        return self._info(await self._volume(iid))

    async def change_disk_size(self, iid: IID, size: str) -> bool:
        # microversion 3.42: an in-use (attached) volume may grow too
        await self.s.call(RT_DISK, iid.name_id, "volume", "POST", f"/volumes/{iid.system_id}/action",
                          {"os-extend": {"new_size": int(size)}}, api="POST volume/volumes/action:os-extend",
                          headers={"OpenStack-API-Version": "volume 3.42"})
        await self._settled(iid, "being extended")
        return True

    async def delete_disk(self, iid: IID) -> bool:
        await self._volume(iid)
        await self.s.call(RT_DISK, iid.name_id, "volume", "DELETE", f"/volumes/{iid.system_id}")
        return True

    async def attach_disk(self, iid: IID, vm_iid: IID) -> DiskInfo:
        await self._volume(iid)
        await self.s.call(RT_DISK, iid.name_id, "compute", "POST", f"/servers/{vm_iid.system_id}/os-volume_attachments",
                          {"volumeAttachment": {"volumeId": iid.system_id}})
        return self._info(await self._settled(iid, "being attached", {"in-use"}))

    async def detach_disk(self, iid: IID, vm_iid: IID) -> bool:
        await self.s.call(RT_DISK, iid.name_id, "compute", "DELETE",
                          f"/servers/{vm_iid.system_id}/os-volume_attachments/{iid.system_id}")
        await self._settled(iid, "being detached", {"available"})
        return True

    async def list_iid(self) -> list[IID]:
        return [IID(v.get("name") or "", v["id"])
                for v in await self.s.list_all(RT_DISK, "", "volume", "/volumes", "volumes")]
