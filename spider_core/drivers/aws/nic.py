"""NIC handler: ENIs (create in a subnet, attach/detach, secondary private IPs, delete). AWS brings
attached interfaces and addresses up by DHCP, so the guest OS script is empty (CB-Spider's AWS driver)."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_NIC
from spider_core.drivers.aws.session import AwsSession, name_tag, paged, tag_spec, user_tags
from spider_core.drivers.base import NICHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, NetworkInterfaceInfo, NICReqInfo

_STATUS = {"available": "Available", "in-use": "Attached", "attaching": "Attached", "detaching": "Available"}
CREATED_TAG = "CreatedTime"


def eni_not_found(eni_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidNetworkInterfaceID.NotFound: The networkInterface ID '{eni_id}' does not exist")


class AwsNICHandler(NICHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    def _info(self, eni: dict[str, Any]) -> NetworkInterfaceInfo:
        tags = eni.get("TagSet") or eni.get("Tags") or []
        addrs = sorted(eni.get("PrivateIpAddresses", []), key=lambda a: not a.get("Primary"))
        private_ips = [a["PrivateIpAddress"] for a in addrs if a.get("PrivateIpAddress")]
        public_ips = [a.get("Association", {}).get("PublicIp", "") for a in addrs]
        attachment = eni.get("Attachment") or {}
        attached = attachment.get("Status") in ("attaching", "attached") and attachment.get("InstanceId")
        return NetworkInterfaceInfo(
            iid=IID(name_tag(tags), eni["NetworkInterfaceId"]), vpc_iid=IID("", eni.get("VpcId", "")),
            subnet_iid=IID("", eni.get("SubnetId", "")),
            security_group_iids=[IID(g.get("GroupName", ""), g["GroupId"]) for g in eni.get("Groups", [])],
            private_ip=eni.get("PrivateIpAddress", "") or (private_ips[0] if private_ips else ""),
            private_ips=private_ips, public_ips=public_ips if any(public_ips) else [],
            public_ip=(eni.get("Association") or {}).get("PublicIp", ""),
            owner_vm=IID("", attachment["InstanceId"]) if attached else IID(),
            device_index=int(attachment.get("DeviceIndex", 0)) if attached else 0,
            mac_address=eni.get("MacAddress", ""), status="Attached" if attached else _STATUS.get(
                eni.get("Status", ""), "Error"),
            created_time=next((t.get("Value", "") for t in tags if t.get("Key") == CREATED_TAG), ""),
            tags=[t for t in user_tags(tags) if t.key != CREATED_TAG],
            key_values=[KeyValue("AvailabilityZone", eni.get("AvailabilityZone", ""))])

    async def _eni(self, iid: IID) -> dict[str, Any]:
        eni_id = iid.system_id or iid.name_id
        found = await paged(self.s, RT_NIC, eni_id, "ec2", "describe_network_interfaces", "NetworkInterfaces",
                            Filters=[{"Name": "network-interface-id", "Values": [eni_id]}])
        if not found:
            raise eni_not_found(eni_id)
        return found[0]

    async def create_nic(self, req: NICReqInfo) -> NetworkInterfaceInfo:
        from datetime import datetime, timezone
        tags = tag_spec("network-interface", req.iid.name_id, req.tags)
        tags[0]["Tags"].append({"Key": CREATED_TAG, "Value": datetime.now(timezone.utc).replace(microsecond=0)
                                .isoformat().replace("+00:00", "Z")})
        kwargs: dict[str, Any] = {"SubnetId": req.subnet_iid.system_id, "TagSpecifications": tags,
                                  "Description": req.iid.name_id}
        if req.security_group_iids:
            kwargs["Groups"] = [g.system_id for g in req.security_group_iids]
        out = await self.s.ec2(RT_NIC, req.iid.name_id, "create_network_interface", **kwargs)
        return self._info(await self._eni(IID(req.iid.name_id, out["NetworkInterface"]["NetworkInterfaceId"])))

    async def list_nic(self) -> list[NetworkInterfaceInfo]:
        return [self._info(e) for e in await paged(self.s, RT_NIC, "", "ec2", "describe_network_interfaces",
                                                   "NetworkInterfaces")]

    async def get_nic(self, iid: IID) -> NetworkInterfaceInfo:
        return self._info(await self._eni(iid))

    async def delete_nic(self, iid: IID) -> bool:
        eni = await self._eni(iid)
        await self.s.ec2(RT_NIC, iid.name_id, "delete_network_interface", NetworkInterfaceId=eni["NetworkInterfaceId"])
        return True

    async def attach_nic(self, iid: IID, vm_iid: IID) -> NetworkInterfaceInfo:
        eni = await self._eni(iid)
        out = await self.s.ec2(RT_NIC, iid.name_id, "describe_instances", InstanceIds=[vm_iid.system_id])
        instances = [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]
        if not instances:
            raise DriverNotFound(f"InvalidInstanceID.NotFound: The instance ID '{vm_iid.system_id}' does not exist")
        used = {int(n.get("Attachment", {}).get("DeviceIndex", 0)) for n in instances[0].get("NetworkInterfaces", [])}
        index = next(i for i in range(1, 64) if i not in used)
        await self.s.ec2(RT_NIC, iid.name_id, "attach_network_interface", NetworkInterfaceId=eni["NetworkInterfaceId"],
                         InstanceId=vm_iid.system_id, DeviceIndex=index)
        return self._info(await self._eni(iid))

    async def detach_nic(self, iid: IID) -> bool:
        eni = await self._eni(iid)
        attachment = eni.get("Attachment") or {}
        if not attachment.get("AttachmentId"):
            raise DriverError(f"IncorrectState: {eni['NetworkInterfaceId']} is not attached")
        await self.s.ec2(RT_NIC, iid.name_id, "detach_network_interface", AttachmentId=attachment["AttachmentId"])
        return True

    async def add_private_ip(self, iid: IID, private_ip: str) -> NetworkInterfaceInfo:
        eni = await self._eni(iid)
        kwargs: dict[str, Any] = {"NetworkInterfaceId": eni["NetworkInterfaceId"]}
        if private_ip:
            kwargs["PrivateIpAddresses"] = [private_ip]
        else:
            kwargs["SecondaryPrivateIpAddressCount"] = 1
        await self.s.ec2(RT_NIC, iid.name_id, "assign_private_ip_addresses", **kwargs)
        return self._info(await self._eni(iid))

    async def remove_private_ip(self, iid: IID, private_ip: str) -> bool:
        eni = await self._eni(iid)
        secondary = [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", []) if not a.get("Primary")]
        if private_ip not in secondary:
            raise DriverError(f"InvalidParameterValue: {private_ip} is not a secondary private IP of "
                              f"{eni['NetworkInterfaceId']}")
        await self.s.ec2(RT_NIC, iid.name_id, "unassign_private_ip_addresses",
                         NetworkInterfaceId=eni["NetworkInterfaceId"], PrivateIpAddresses=[private_ip])
        return True

    async def get_nic_os_config_script(self, iid: IID) -> str:
        await self._eni(iid)
        return ""

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(e.get("TagSet") or e.get("Tags")), e["NetworkInterfaceId"])
                for e in await paged(self.s, RT_NIC, "", "ec2", "describe_network_interfaces", "NetworkInterfaces")]
