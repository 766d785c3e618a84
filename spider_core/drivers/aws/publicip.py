"""Public IP handler: Elastic IPs (allocate, describe, associate with an instance or ENI, release)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from spider_core.calllog import RT_PUBLICIP
from spider_core.drivers.aws.session import AwsSession, name_tag, tag_spec, user_tags
from spider_core.drivers.base import PublicIPHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, PublicIPInfo

CREATED_TAG = "CreatedTime"  # EC2 does not report when an address was allocated; the driver records it


def eip_not_found(allocation_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidAllocationID.NotFound: The allocation ID '{allocation_id}' does not exist")


class AwsPublicIPHandler(PublicIPHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    def _info(self, a: dict[str, Any]) -> PublicIPInfo:
        tags = a.get("Tags") or []
        associated = bool(a.get("AssociationId"))
        created = next((t.get("Value", "") for t in tags if t.get("Key") == CREATED_TAG), "")
        kvs = [KeyValue("AllocationId", a["AllocationId"]), KeyValue("Domain", a.get("Domain", ""))]
        if associated:
            kvs.append(KeyValue("AssociationId", a["AssociationId"]))
        return PublicIPInfo(iid=IID(name_tag(tags), a["AllocationId"]), public_ip_address=a.get("PublicIp", ""),
                            status="Associated" if associated else "Available",
                            owned_vm=IID("", a["InstanceId"]) if a.get("InstanceId") else IID(),
                            owned_nic=IID("", a["NetworkInterfaceId"]) if a.get("NetworkInterfaceId") else IID(),
                            owned_private_ip=a.get("PrivateIpAddress", "") if associated else "",
                            created_time=created, tags=[t for t in user_tags(tags) if t.key != CREATED_TAG],
                            key_values=kvs)

    async def _address(self, iid: IID) -> dict[str, Any]:
        alloc = iid.system_id or iid.name_id
        out = await self.s.ec2(RT_PUBLICIP, alloc, "describe_addresses",
                               Filters=[{"Name": "allocation-id", "Values": [alloc]}])
        if not out.get("Addresses"):
            raise eip_not_found(alloc)
        return out["Addresses"][0]

    async def create_public_ip(self, req: PublicIPInfo) -> PublicIPInfo:
        tags = tag_spec("elastic-ip", req.iid.name_id, req.tags)
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        tags[0]["Tags"].append({"Key": CREATED_TAG, "Value": now})
        out = await self.s.ec2(RT_PUBLICIP, req.iid.name_id, "allocate_address", Domain="vpc",
                               TagSpecifications=tags)
        return self._info(await self._address(IID(req.iid.name_id, out["AllocationId"])))

    async def list_public_ip(self) -> list[PublicIPInfo]:
        out = await self.s.ec2(RT_PUBLICIP, "", "describe_addresses")
        return [self._info(a) for a in out.get("Addresses", []) if a.get("AllocationId")]

    async def get_public_ip(self, iid: IID) -> PublicIPInfo:
        return self._info(await self._address(iid))

    async def delete_public_ip(self, iid: IID) -> bool:
        addr = await self._address(iid)
        if addr.get("AssociationId"):
            raise DriverError(f"InvalidIPAddress.InUse: Address {addr.get('PublicIp')} is associated; "
                              "disassociate it first")
        await self.s.ec2(RT_PUBLICIP, iid.name_id, "release_address", AllocationId=addr["AllocationId"])
        return True

    async def associate_public_ip(self, iid: IID, vm_iid: IID, nic_iid: IID, private_ip: str) -> PublicIPInfo:
        addr = await self._address(iid)
        kwargs: dict[str, Any] = {"AllocationId": addr["AllocationId"]}
        if nic_iid.system_id:
            kwargs["NetworkInterfaceId"] = nic_iid.system_id
        elif vm_iid.system_id:
            kwargs["InstanceId"] = vm_iid.system_id
        else:
            raise DriverError("AWS associates an Elastic IP with a VM or a NIC: give one")
        if private_ip:
            kwargs["PrivateIpAddress"] = private_ip
        await self.s.ec2(RT_PUBLICIP, iid.name_id, "associate_address", **kwargs)
        return self._info(await self._address(iid))

    async def disassociate_public_ip(self, iid: IID) -> bool:
        addr = await self._address(iid)
        if not addr.get("AssociationId"):
            raise DriverError(f"InvalidAssociationID.NotFound: Address {addr.get('PublicIp')} is not associated")
        await self.s.ec2(RT_PUBLICIP, iid.name_id, "disassociate_address", AssociationId=addr["AssociationId"])
        return True

    async def list_iid(self) -> list[IID]:
        out = await self.s.ec2(RT_PUBLICIP, "", "describe_addresses")
        return [IID(name_tag(a.get("Tags")), a["AllocationId"]) for a in out.get("Addresses", [])
                if a.get("AllocationId")]
