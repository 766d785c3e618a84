"""VM handler: EC2 instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spider_core.drivers.coalesce import Coalescer
from spider_core.calllog import RT_VM
from spider_core.drivers.aws.session import AwsSession, name_tag, paged, tag_spec, user_tags
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.base import VMHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, NICInfo, VMAction, VMInfo, VMReqInfo, VMStatus, VMStatusInfo

VM_USER = "cb-user"
EBS_TYPES = {"standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"}

STATUS = {
    "pending": VMStatus.CREATING,
    "running": VMStatus.RUNNING,
    "stopping": VMStatus.SUSPENDING,
    "stopped": VMStatus.SUSPENDED,
    "shutting-down": VMStatus.TERMINATING,
    "terminated": VMStatus.TERMINATED,
}


def vm_not_found(instance_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidInstanceID.NotFound: The instance ID '{instance_id}' does not exist")


def vm_status(instance: dict[str, Any]) -> VMStatus:
    return STATUS.get(instance.get("State", {}).get("Name", ""), VMStatus.FAILED)


def _rfc3339(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value or "")


class AwsVmHandler(VMHandler):
    def __init__(self, session: AwsSession, view: AwsView, *, max_inflight: int = 1,
                 with_volumes: bool = True) -> None:
        self.s = session
        self.view = view
        self.with_volumes = with_volumes
        self._raw = Coalescer(self._fetch_raw, vm_not_found, max_inflight=max_inflight)
        self._full = Coalescer(self._fetch_full, vm_not_found, max_inflight=max_inflight)

    # ---- mapping
    def _info(self, inst: dict[str, Any], volume: dict[str, Any] | None = None) -> VMInfo:
        public_ip = inst.get("PublicIpAddress", "") or ""
        private_ip = inst.get("PrivateIpAddress", "") or ""
        nics: list[NICInfo] = []
        for eni in sorted(inst.get("NetworkInterfaces", []),
                          key=lambda e: e.get("Attachment", {}).get("DeviceIndex", 0)):
            pubs = [eni["Association"]["PublicIp"]] if eni.get("Association", {}).get("PublicIp") else []
            nics.append(NICInfo(iid=IID("", eni.get("NetworkInterfaceId", "")),
                                device_index=int(eni.get("Attachment", {}).get("DeviceIndex", 0)),
                                private_ips=[p["PrivateIpAddress"] for p in eni.get("PrivateIpAddresses", [])
                                             if p.get("PrivateIpAddress")] or
                                ([eni["PrivateIpAddress"]] if eni.get("PrivateIpAddress") else []),
                                public_ips=pubs, mac_address=eni.get("MacAddress", ""),
                                subnet_iid=IID("", eni.get("SubnetId", ""))))
        groups = list(inst.get("SecurityGroups") or [])
        if not groups:  # some EC2 implementations only report them on the ENI
            seen = set()
            for eni in inst.get("NetworkInterfaces", []):
                for g in eni.get("Groups", []):
                    if g["GroupId"] not in seen:
                        seen.add(g["GroupId"])
                        groups.append(g)
        root = inst.get("RootDeviceName", "") or ""
        platform = "Windows" if str(inst.get("Platform", "")).lower() == "windows" else "Linux/UNIX"
        kvs = [KeyValue("State", inst.get("State", {}).get("Name", "")),
               KeyValue("Architecture", str(inst.get("Architecture", "")))]
        return VMInfo(
            iid=IID(name_tag(inst.get("Tags")), inst["InstanceId"]),
            start_time=_rfc3339(inst.get("LaunchTime")),
            region=self.view.region,
            zone=self.view.zone_out(inst.get("Placement", {}).get("AvailabilityZone", "")),
            image_iid=self.view.image_iid(inst.get("ImageId", "")),
            vmspec_name=self.view.spec_name(inst.get("InstanceType", "")),
            vpc_iid=IID("", inst.get("VpcId", "") or ""),
            subnet_iid=IID("", inst.get("SubnetId", "") or ""),
            security_group_iids=[IID(g.get("GroupName", ""), g["GroupId"]) for g in groups],
            keypair_iid=IID(inst.get("KeyName", "") or "", inst.get("KeyName", "") or ""),
            root_disk_type=(volume or {}).get("VolumeType", ""),
            root_disk_size=str((volume or {}).get("Size", "")),
            root_device_name=root, vm_boot_disk=root, vm_block_disk=root,
            data_disk_iids=[IID("", b["Ebs"]["VolumeId"]) for b in inst.get("BlockDeviceMappings", [])
                            if b.get("DeviceName") != root and b.get("Ebs", {}).get("VolumeId")],
            vm_user_id=VM_USER,
            nics=nics, network_interface=nics[0].iid.system_id if nics else "",
            public_ip=public_ip, public_ips=[public_ip] if public_ip else [],
            public_dns=inst.get("PublicDnsName", "") or "",
            private_ip=private_ip, private_ips=[private_ip] if private_ip else [],
            private_dns=inst.get("PrivateDnsName", "") or "",
            platform=platform,
            ssh_access_point=f"{public_ip}:22" if public_ip else "",
            tags=user_tags(inst.get("Tags")), key_values=kvs)

    # ---- describe
    async def _describe(self, label: str, ids: list[str] | None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if ids is not None:
            # Filters, not InstanceIds: one unknown id must not fail a coalesced batch.
            kwargs["Filters"] = [{"Name": "instance-id", "Values": ids}]
        reservations = await paged(self.s, RT_VM, label, "ec2", "describe_instances", "Reservations", **kwargs)
        return [i for r in reservations for i in r.get("Instances", [])
                if i.get("State", {}).get("Name") != "terminated"]

    async def _volumes(self, label: str, instances: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Root volume per instance id (one describe_volumes for all)."""
        want: dict[str, str] = {}
        for inst in instances:
            root = inst.get("RootDeviceName")
            for bdm in inst.get("BlockDeviceMappings", []):
                if bdm.get("DeviceName") == root and bdm.get("Ebs", {}).get("VolumeId"):
                    want[bdm["Ebs"]["VolumeId"]] = inst["InstanceId"]
        if not self.with_volumes or not want:
            return {}
        try:
            vols = await paged(self.s, RT_VM, label, "ec2", "describe_volumes", "Volumes",
                               Filters=[{"Name": "volume-id", "Values": list(want)}])
        except DriverError:
            return {}
        return {want[v["VolumeId"]]: v for v in vols if v["VolumeId"] in want}

    @staticmethod
    def _label(ids: list[str]) -> str:
        return ids[0] if len(ids) == 1 else f"{len(ids)} VMs"

    async def _fetch_raw(self, ids: list[str]) -> dict[str, object]:
        return {i["InstanceId"]: i for i in await self._describe(self._label(ids), ids)}

    async def _fetch_full(self, ids: list[str]) -> dict[str, object]:
        label = self._label(ids)
        instances = await self._describe(label, ids)
        vols = await self._volumes(label, instances)
        return {i["InstanceId"]: self._info(i, vols.get(i["InstanceId"])) for i in instances}

    # ---- handler
    async def start_vm(self, req: VMReqInfo) -> VMInfo:
        # a MyImage is an AMI of this account: its CSP id is the AMI id
        image_id = req.image_iid.system_id if req.image_type == "MyImage" else await self.view.image_id(req.image_iid)
        instance_type = await self.view.instance_type(req.vmspec_name)
        kwargs: dict[str, Any] = {
            "ImageId": image_id, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
            "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": req.subnet_iid.system_id,
                                   "Groups": [g.system_id for g in req.security_group_iids],
                                   "AssociatePublicIpAddress": True}],
            "TagSpecifications": tag_spec("instance", req.iid.name_id, req.tags),
        }
        key = req.keypair_iid.system_id or req.keypair_iid.name_id
        if key:
            kwargs["KeyName"] = key
        disk_type = req.root_disk_type.strip().lower()
        disk_size = req.root_disk_size.strip()
        ebs: dict[str, Any] = {}
        if disk_type in EBS_TYPES:
            ebs["VolumeType"] = disk_type
        if disk_size and disk_size.lower() != "default":
            try:
                ebs["VolumeSize"] = int(disk_size)
            except ValueError:
                raise DriverError(f"invalid RootDiskSize '{req.root_disk_size}'") from None
        if ebs:
            images = (await self.s.ec2(RT_VM, req.iid.name_id, "describe_images",
                                       ImageIds=[image_id]))["Images"]
            root = (images[0].get("RootDeviceName") if images else "") or "/dev/xvda"
            kwargs["BlockDeviceMappings"] = [{"DeviceName": root, "Ebs": ebs}]
        out = await self.s.ec2(RT_VM, req.iid.name_id, "run_instances", **kwargs)
        inst = out["Instances"][0]
        info = self._info(inst, {"VolumeType": ebs.get("VolumeType", ""), "Size": ebs.get("VolumeSize", "")})
        if not info.iid.name_id:
            info.iid = IID(req.iid.name_id, inst["InstanceId"])
        # what the caller gave us is better than blanks
        info.vpc_iid = IID(req.vpc_iid.name_id, info.vpc_iid.system_id or req.vpc_iid.system_id)
        info.subnet_iid = IID(req.subnet_iid.name_id, info.subnet_iid.system_id or req.subnet_iid.system_id)
        if req.image_type == "MyImage":
            info.image_iid = IID(image_id, image_id)
        else:
            info.image_iid = req.image_iid if req.image_iid.name_id else info.image_iid
        info.vmspec_name = req.vmspec_name or info.vmspec_name
        return info

    async def _instance(self, iid: IID) -> dict[str, Any]:
        if not iid.system_id:
            raise vm_not_found(iid.name_id)
        return await self._raw.get(iid.system_id)  # type: ignore[return-value]

    async def control_vm(self, iid: IID, action: VMAction) -> VMStatus:
        action = VMAction(action)
        if action == VMAction.SUSPEND:
            await self._instance(iid)
            await self.s.ec2(RT_VM, iid.name_id, "stop_instances", InstanceIds=[iid.system_id])
            return VMStatus.SUSPENDING
        if action == VMAction.RESUME:
            await self._instance(iid)
            await self.s.ec2(RT_VM, iid.name_id, "start_instances", InstanceIds=[iid.system_id])
            return VMStatus.RESUMING
        status = vm_status(await self._instance(iid))
        if status in (VMStatus.SUSPENDED, VMStatus.SUSPENDING):
            raise DriverError(f"reboot not supported in {status.value.upper()} status")
        await self.s.ec2(RT_VM, iid.name_id, "reboot_instances", InstanceIds=[iid.system_id])
        return VMStatus.REBOOTING

    async def terminate_vm(self, iid: IID) -> VMStatus:
        if not iid.system_id:
            raise vm_not_found(iid.name_id)
        await self.s.ec2(RT_VM, iid.name_id, "terminate_instances", InstanceIds=[iid.system_id])
        return VMStatus.TERMINATING

    async def get_vm_status(self, iid: IID) -> VMStatus:
        return vm_status(await self._instance(iid))

    async def list_vm_status(self) -> list[VMStatusInfo]:
        return [VMStatusInfo(IID(name_tag(i.get("Tags")), i["InstanceId"]), vm_status(i).value)
                for i in await self._describe("", None)]

    async def get_vm(self, iid: IID) -> VMInfo:
        if not iid.system_id:
            raise vm_not_found(iid.name_id)
        return await self._full.get(iid.system_id)  # type: ignore[return-value]

    async def list_vm(self) -> list[VMInfo]:
        instances = await self._describe("", None)
        vols = await self._volumes("", instances)
        return [self._info(i, vols.get(i["InstanceId"])) for i in instances]

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(i.get("Tags")), i["InstanceId"]) for i in await self._describe("", None)]
