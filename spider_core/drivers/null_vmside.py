"""The NULL driver's VM-side families: disks, MyImages, tags, public IPs, NICs and prices, in memory.

Same rules as ``drivers.null``: pure dict work, no awaits, a small well-behaved cloud (a disk attaches
to one VM at a time and only grows; an attached disk, NIC or associated public IP cannot be deleted;
a VM's image can be started again as a MyImage)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from spider_core.drivers.base import DiskHandler, MyImageHandler, NICHandler, PriceInfoHandler, PublicIPHandler, \
    TagHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import (IID, DiskInfo, DiskStatus, KeyValue, MyImageInfo, NetworkInterfaceInfo, NICReqInfo,
                               PublicIPInfo, TagInfo, VMPrice)

DEFAULT_DISK_TYPE = "standard"
DEFAULT_DISK_SIZE = "20"
PRODUCT_FAMILIES = ["Compute Instance", "Storage"]
# NULL prices: one per spec, USD per hour
PRICES = {"null-spec-01": "0.0100", "null-spec-02": "0.0200"}


def _copy(obj: Any) -> Any:
    kw = {f: list(getattr(obj, f)) for f in ("tags", "key_values", "private_ips", "public_ips",
                                               "security_group_iids") if hasattr(obj, f)}
    return replace(obj, **kw)


class NullDiskHandler(DiskHandler):
    def __init__(self, cloud: Any, zone: str, now: Any) -> None:
        self.cloud = cloud
        self.zone = zone
        self.now = now

    async def create_disk(self, req: DiskInfo) -> DiskInfo:
        table = self.cloud.disks
        iid = IID(req.iid.name_id, table.new_id())
        disk = DiskInfo(iid=iid, zone=req.zone or self.zone, disk_type=req.disk_type or DEFAULT_DISK_TYPE,
                        disk_size=req.disk_size or DEFAULT_DISK_SIZE, status=DiskStatus.AVAILABLE.value,
                        created_time=self.now(), tags=list(req.tags))
        table.put(iid, disk)
        return _copy(disk)

    async def list_disk(self) -> list[DiskInfo]:
        return [_copy(d) for d in self.cloud.disks.items.values()]

    async def get_disk(self, iid: IID) -> DiskInfo:
        return _copy(self.cloud.disks.find(iid))

    async def change_disk_size(self, iid: IID, size: str) -> bool:
        disk = self.cloud.disks.find(iid)
        if not size.isdecimal() or int(size) <= int(disk.disk_size):
            raise DriverError(f"{iid.system_id} Disk can only grow: {disk.disk_size} GB -> {size} GB")
        disk.disk_size = size
        return True

    async def delete_disk(self, iid: IID) -> bool:
        disk = self.cloud.disks.find(iid)
        if disk.status == DiskStatus.ATTACHED.value:
            raise DriverError(f"VolumeInUse: {disk.iid.system_id} is attached to {disk.owner_vm.system_id}")
        self.cloud.disks.pop(iid)
        return True

    async def attach_disk(self, iid: IID, vm_iid: IID) -> DiskInfo:
        disk = self.cloud.disks.find(iid)
        vm = self.cloud.vms.find(vm_iid)
        if disk.status == DiskStatus.ATTACHED.value:
            raise DriverError(f"VolumeInUse: {disk.iid.system_id} is already attached to {disk.owner_vm.system_id}")
        disk.status, disk.owner_vm = DiskStatus.ATTACHED.value, vm.iid
        vm.data_disk_iids.append(disk.iid)
        return _copy(disk)

    async def detach_disk(self, iid: IID, vm_iid: IID) -> bool:
        disk = self.cloud.disks.find(iid)
        vm = self.cloud.vms.find(vm_iid)
        if disk.owner_vm.system_id != vm.iid.system_id:
            raise DriverError(f"IncorrectState: {disk.iid.system_id} is not attached to {vm.iid.system_id}")
        disk.status, disk.owner_vm = DiskStatus.AVAILABLE.value, IID()
        vm.data_disk_iids[:] = [d for d in vm.data_disk_iids if d.system_id != disk.iid.system_id]
        return True

    async def list_iid(self) -> list[IID]:
        return [d.iid for d in self.cloud.disks.items.values()]


class NullMyImageHandler(MyImageHandler):
    def __init__(self, cloud: Any, now: Any) -> None:
        self.cloud = cloud
        self.now = now

    async def snapshot_vm(self, req: MyImageInfo) -> MyImageInfo:
        vm = self.cloud.vms.find(req.source_vm)
        table = self.cloud.images
        iid = IID(req.iid.name_id, table.new_id().replace("null-", "null-img-"))
        image = MyImageInfo(iid=iid, source_vm=vm.iid, status="Available", created_time=self.now(),
                            tags=list(req.tags))
        table.put(iid, image)
        return _copy(image)

    async def list_my_image(self) -> list[MyImageInfo]:
        return [_copy(i) for i in self.cloud.images.items.values()]

    async def get_my_image(self, iid: IID) -> MyImageInfo:
        return _copy(self.cloud.images.find(iid))

    async def delete_my_image(self, iid: IID) -> bool:
        self.cloud.images.pop(iid)
        return True

    async def list_iid(self) -> list[IID]:
        return [i.iid for i in self.cloud.images.items.values()]


class NullPublicIPHandler(PublicIPHandler):
    def __init__(self, cloud: Any, now: Any) -> None:
        self.cloud = cloud
        self.now = now

    async def create_public_ip(self, req: PublicIPInfo) -> PublicIPInfo:
        table = self.cloud.public_ips
        iid = IID(req.iid.name_id, table.new_id().replace("null-", "null-eip-"))
        pip = PublicIPInfo(iid=iid, public_ip_address=self.cloud.take_public_ip(), status="Available",
                           created_time=self.now(), tags=list(req.tags))
        table.put(iid, pip)
        return _copy(pip)

    async def list_public_ip(self) -> list[PublicIPInfo]:
        return [_copy(p) for p in self.cloud.public_ips.items.values()]

    async def get_public_ip(self, iid: IID) -> PublicIPInfo:
        return _copy(self.cloud.public_ips.find(iid))

    async def delete_public_ip(self, iid: IID) -> bool:
        pip = self.cloud.public_ips.find(iid)
        if pip.status == "Associated":
            raise DriverError(f"InvalidIPAddress.InUse: {pip.public_ip_address} is associated; disassociate it first")
        self.cloud.public_ips.pop(iid)
        self.cloud.free_public_ip(pip.public_ip_address)
        return True

    async def associate_public_ip(self, iid: IID, vm_iid: IID, nic_iid: IID, private_ip: str) -> PublicIPInfo:
        pip = self.cloud.public_ips.find(iid)
        if pip.status == "Associated":
            raise DriverError(f"Resource.AlreadyAssociated: {pip.public_ip_address} is already associated")
        if nic_iid.system_id or nic_iid.name_id:
            nic = self.cloud.nics.find(nic_iid)
            ips = nic.private_ips
            owner_vm = nic.owner_vm
            nic_id = nic.iid
        else:
            vm = self.cloud.vms.find(vm_iid)
            ips = vm.private_ips
            owner_vm = vm.iid
            nic_id = IID("", vm.network_interface)
        target = private_ip or (ips[0] if ips else "")
        if private_ip and private_ip not in ips:
            raise DriverError(f"InvalidParameterValue: {private_ip} is not a private IP of {nic_id.system_id}")
        pip.status, pip.owned_vm, pip.owned_nic, pip.owned_private_ip = "Associated", owner_vm, nic_id, target
        return _copy(pip)

    async def disassociate_public_ip(self, iid: IID) -> bool:
        pip = self.cloud.public_ips.find(iid)
        if pip.status != "Associated":
            raise DriverError(f"InvalidAssociationID.NotFound: {pip.public_ip_address} is not associated")
        pip.status, pip.owned_vm, pip.owned_nic, pip.owned_private_ip = "Available", IID(), IID(), ""
        return True

    async def list_iid(self) -> list[IID]:
        return [p.iid for p in self.cloud.public_ips.items.values()]


class NullNICHandler(NICHandler):
    def __init__(self, cloud: Any, now: Any) -> None:
        self.cloud = cloud
        self.now = now

    def _subnet(self, vpc_iid: IID, subnet_iid: IID) -> Any:
        vpc = self.cloud.vpcs.find(vpc_iid)
        for sub in vpc.subnets or []:
            if sub.iid.system_id == subnet_iid.system_id or (not subnet_iid.system_id and
                                                            sub.iid.name_id == subnet_iid.name_id):
                return vpc, sub
        raise DriverNotFound(f"{subnet_iid.system_id or subnet_iid.name_id} subnet iid does not exist!!")

    async def create_nic(self, req: NICReqInfo) -> NetworkInterfaceInfo:
        vpc, subnet = self._subnet(req.vpc_iid, req.subnet_iid)
        sgs = [self.cloud.sgs.find(s).iid for s in req.security_group_iids]
        table = self.cloud.nics
        iid = IID(req.iid.name_id, table.new_id().replace("null-", "null-eni-"))
        ip = self.cloud.take_private_ip(subnet)
        nic = NetworkInterfaceInfo(iid=iid, vpc_iid=vpc.iid, subnet_iid=subnet.iid, security_group_iids=sgs,
                                   private_ip=ip, private_ips=[ip], mac_address="02:00:" + iid.system_id[-8:-4] + ":"
                                   + iid.system_id[-4:-2] + ":" + iid.system_id[-2:], status="Available",
                                   created_time=self.now(), tags=list(req.tags))
        table.put(iid, nic)
        self.cloud.nic_subnets[iid.system_id] = subnet
        return _copy(nic)

    async def list_nic(self) -> list[NetworkInterfaceInfo]:
        return [_copy(n) for n in self.cloud.nics.items.values()]

    async def get_nic(self, iid: IID) -> NetworkInterfaceInfo:
        return _copy(self.cloud.nics.find(iid))

    async def delete_nic(self, iid: IID) -> bool:
        nic = self.cloud.nics.find(iid)
        if nic.status == "Attached":
            raise DriverError(f"InvalidNetworkInterface.InUse: {nic.iid.system_id} is attached to "
                              f"{nic.owner_vm.system_id}")
        self.cloud.nics.pop(iid)
        return True

    async def attach_nic(self, iid: IID, vm_iid: IID) -> NetworkInterfaceInfo:
        nic = self.cloud.nics.find(iid)
        vm = self.cloud.vms.find(vm_iid)
        if nic.status == "Attached":
            raise DriverError(f"InvalidNetworkInterface.InUse: {nic.iid.system_id} is already attached")
        used = {n.device_index for n in self.cloud.nics.items.values() if n.owner_vm.system_id == vm.iid.system_id}
        nic.device_index = next(i for i in range(1, 64) if i not in used)
        nic.status, nic.owner_vm = "Attached", vm.iid
        return _copy(nic)

    async def detach_nic(self, iid: IID) -> bool:
        nic = self.cloud.nics.find(iid)
        if nic.status != "Attached":
            raise DriverError(f"IncorrectState: {nic.iid.system_id} is not attached")
        nic.status, nic.owner_vm, nic.device_index = "Available", IID(), 0
        return True

    async def add_private_ip(self, iid: IID, private_ip: str) -> NetworkInterfaceInfo:
        nic = self.cloud.nics.find(iid)
        subnet = self.cloud.nic_subnets[nic.iid.system_id]
        if private_ip:
            try:
                inside = ipaddress.ip_address(private_ip) in ipaddress.ip_network(subnet.ipv4_cidr, strict=False)
            except ValueError:
                inside = False
            if not inside:
                raise DriverError(f"InvalidParameterValue: {private_ip} is not an address of subnet {subnet.ipv4_cidr}")
            if private_ip in nic.private_ips:
                raise DriverError(f"InvalidParameterValue: {private_ip} is already assigned to {nic.iid.system_id}")
        nic.private_ips.append(private_ip or self.cloud.take_private_ip(subnet))
        return _copy(nic)

    async def remove_private_ip(self, iid: IID, private_ip: str) -> bool:
        nic = self.cloud.nics.find(iid)
        if private_ip not in nic.private_ips[1:]:
            raise DriverError(f"InvalidParameterValue: {private_ip} is not a secondary private IP of "
                              f"{nic.iid.system_id}")
        nic.private_ips.remove(private_ip)
        return True

    async def get_nic_os_config_script(self, iid: IID) -> str:
        self.cloud.nics.find(iid)
        return ""  # like AWS: the guest picks interfaces and addresses up by DHCP

    async def list_iid(self) -> list[IID]:
        return [n.iid for n in self.cloud.nics.items.values()]


class NullTagHandler(TagHandler):
    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud

    def _tables(self) -> dict[str, Any]:
        c = self.cloud
        return {"vpc": c.vpcs, "sg": c.sgs, "keypair": c.keys, "vm": c.vms, "nlb": c.nlbs, "disk": c.disks,
                "myimage": c.images, "publicip": c.public_ips, "nic": c.nics}

    def _find(self, res_type: str, iid: IID) -> Any:
        if res_type == "subnet":
            for vpc in self.cloud.vpcs.items.values():
                for sub in vpc.subnets or []:
                    if sub.iid.system_id == iid.system_id:
                        return sub
            raise DriverNotFound(f"{iid.system_id} subnet iid does not exist!!")
        table = self._tables().get(res_type)
        if table is None:
            raise DriverError(f"{res_type} is not supported Resource!!")
        return table.find(iid)

    async def add_tag(self, res_type: str, res_iid: IID, tag: KeyValue) -> KeyValue:
        obj = self._find(res_type, res_iid)
        obj.tags = [t for t in obj.tags if t.key != tag.key] + [tag]
        return tag

    async def list_tag(self, res_type: str, res_iid: IID) -> list[KeyValue]:
        return list(self._find(res_type, res_iid).tags)

    async def get_tag(self, res_type: str, res_iid: IID, key: str) -> KeyValue:
        for t in self._find(res_type, res_iid).tags:
            if t.key == key:
                return t
        raise DriverNotFound(f"tag key '{key}' does not exist on {res_iid.system_id}")

    async def remove_tag(self, res_type: str, res_iid: IID, key: str) -> bool:
        obj = self._find(res_type, res_iid)
        kept = [t for t in obj.tags if t.key != key]
        if len(kept) == len(obj.tags):
            raise DriverNotFound(f"tag key '{key}' does not exist on {res_iid.system_id}")
        obj.tags = kept
        return True

    async def find_tag(self, res_type: str, keyword: str) -> list[TagInfo]:
        word = "" if keyword in ("", "*") else keyword.lower()
        tables = self._tables()
        subnets = {s.iid.system_id: s for v in self.cloud.vpcs.items.values() for s in v.subnets or []}
        out = []
        for rtype in (["subnet", *tables] if res_type == "all" else [res_type]):
            objs = subnets.values() if rtype == "subnet" else getattr(tables.get(rtype), "items", {}).values()
            for obj in objs:
                hits = [t for t in obj.tags if not word or word in t.key.lower() or word in t.value.lower()]
                if hits:
                    out.append(TagInfo(rtype, obj.iid, list(obj.tags)))
        return out


class NullPriceInfoHandler(PriceInfoHandler):
    def __init__(self, region: str, specs: Any) -> None:
        self.region = region
        self.specs = specs

    async def list_product_family(self, region: str) -> list[str]:
        return list(PRODUCT_FAMILIES)

    async def list_vm_price(self, region: str) -> list[VMPrice]:
        if region != self.region:
            raise DriverNotFound(f"{region} region does not exist!!")
        return [VMPrice(spec=s, product_id=f"null-{s.name}", price=PRICES.get(s.name, "0.0"),
                        pricing_id=f"null-{s.name}-ondemand") for s in await self.specs.list_vm_spec()]
