"""Disk handler: EBS volumes (create, describe, modify size, attach/detach, delete)."""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

from spider_core.calllog import RT_DISK
from spider_core.drivers.aws.session import AwsSession, name_tag, paged, tag_spec, user_tags
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.base import DiskHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, DiskInfo, DiskStatus, KeyValue

_STATUS = {"creating": DiskStatus.CREATING, "available": DiskStatus.AVAILABLE, "in-use": DiskStatus.ATTACHED,
           "deleting": DiskStatus.DELETING, "deleted": DiskStatus.DELETING, "error": DiskStatus.ERROR}
# data volume device names, as CB-Spider's AWS driver picks them (/dev/sdf ... /dev/sdp)
DEVICES = [f"/dev/sd{c}" for c in string.ascii_lowercase[5:16]]


def disk_not_found(volume_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidVolume.NotFound: The volume '{volume_id}' does not exist.")


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


class AwsDiskHandler(DiskHandler):
    def __init__(self, session: AwsSession, view: AwsView) -> None:
        self.s = session
        self.view = view

    def _info(self, vol: dict[str, Any]) -> DiskInfo:
        attachments = [a for a in vol.get("Attachments", []) if a.get("State") in ("attaching", "attached")]
        owner = IID("", attachments[0]["InstanceId"]) if attachments else IID()
        status = _STATUS.get(vol.get("State", ""), DiskStatus.ERROR)
        if status == DiskStatus.ATTACHED and not attachments:
            status = DiskStatus.AVAILABLE
        kvs = [KeyValue("VolumeId", vol["VolumeId"]), KeyValue("Encrypted", str(vol.get("Encrypted", False)).lower())]
        if attachments:
            kvs.append(KeyValue("Device", attachments[0].get("Device", "")))
        return DiskInfo(iid=IID(name_tag(vol.get("Tags")), vol["VolumeId"]),
                        zone=self.view.zone_out(vol.get("AvailabilityZone", "")),
                        disk_type=self.view.disk_type_out(vol.get("VolumeType", "")), disk_size=str(vol.get("Size", "")),
                        status=status.value, owner_vm=owner, created_time=_time(vol.get("CreateTime")),
                        tags=user_tags(vol.get("Tags")), key_values=kvs)

    async def _volume(self, iid: IID) -> dict[str, Any]:
        volume_id = iid.system_id or iid.name_id
        vols = await paged(self.s, RT_DISK, volume_id, "ec2", "describe_volumes", "Volumes",
                           Filters=[{"Name": "volume-id", "Values": [volume_id]}])
        if not vols:
            raise disk_not_found(volume_id)
        return vols[0]

    async def create_disk(self, req: DiskInfo) -> DiskInfo:
        size = req.disk_size or self.view.default_disk_size
        try:
            gb = int(size)
        except ValueError:
            raise DriverError(f"invalid DiskSize '{req.disk_size}'") from None
        kwargs: dict[str, Any] = {"AvailabilityZone": self.view.zone_in(req.zone), "Size": gb,
                                  "VolumeType": self.view.disk_type_in(req.disk_type),
                                  "TagSpecifications": tag_spec("volume", req.iid.name_id, req.tags)}
        if not kwargs["AvailabilityZone"]:
            zones = await self.s.ec2(RT_DISK, req.iid.name_id, "describe_availability_zones")
            kwargs["AvailabilityZone"] = zones["AvailabilityZones"][0]["ZoneName"]
        vol = await self.s.ec2(RT_DISK, req.iid.name_id, "create_volume", **kwargs)
        info = self._info(vol)
        info.iid = IID(req.iid.name_id, vol["VolumeId"])
        return info

    async def list_disk(self) -> list[DiskInfo]:
        return [self._info(v) for v in await paged(self.s, RT_DISK, "", "ec2", "describe_volumes", "Volumes")]

    async def get_disk(self, iid: IID) -> DiskInfo:
        return self._info(await self._volume(iid))

    async def change_disk_size(self, iid: IID, size: str) -> bool:
        await self._volume(iid)
        await self.s.ec2(RT_DISK, iid.name_id, "modify_volume", VolumeId=iid.system_id, Size=int(size))
        return True

    async def delete_disk(self, iid: IID) -> bool:
        vol = await self._volume(iid)
        await self.s.ec2(RT_DISK, iid.name_id, "delete_volume", VolumeId=vol["VolumeId"])
        return True

    async def attach_disk(self, iid: IID, vm_iid: IID) -> DiskInfo:
        vol = await self._volume(iid)
        out = await self.s.ec2(RT_DISK, iid.name_id, "describe_instances", InstanceIds=[vm_iid.system_id])
        instances = [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]
        if not instances:
            raise DriverNotFound(f"InvalidInstanceID.NotFound: The instance ID '{vm_iid.system_id}' does not exist")
        used = {b.get("DeviceName") for b in instances[0].get("BlockDeviceMappings", [])}
        device = next((d for d in DEVICES if d not in used), None)
        if device is None:
            raise DriverError(f"{vm_iid.system_id} has no free device name for another volume")
        await self.s.ec2(RT_DISK, iid.name_id, "attach_volume", VolumeId=vol["VolumeId"],
                         InstanceId=vm_iid.system_id, Device=device)
        return self._info(await self._volume(iid))

    async def detach_disk(self, iid: IID, vm_iid: IID) -> bool:
        vol = await self._volume(iid)
        await self.s.ec2(RT_DISK, iid.name_id, "detach_volume", VolumeId=vol["VolumeId"],
                         InstanceId=vm_iid.system_id)
        return True

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(v.get("Tags")), v["VolumeId"])
                for v in await paged(self.s, RT_DISK, "", "ec2", "describe_volumes", "Volumes")]
