"""The NULL driver: a complete in-memory cloud with no latency, for measuring Spider's own overhead.

Every handler is pure dict work inside ``async def`` with no awaits, sleeps, threads or I/O, so each
call is atomic on the event loop and costs microseconds.

Behaviour is that of a small, well-behaved cloud:

* State is kept per driver instance and per credential ``Name`` (any credential works; a missing
  ``Name`` means ``"default"``). Connections whose credentials share a Name share one cloud.
* CSP ids are ``"null-" + 12 hex digits``; returned IIDs carry the driver NameId (spUUID) given at
  create time and that CSP id. Lookups use ``system_id`` and fall back to ``name_id`` when it is empty.
* Like a real cloud it refuses to delete what is in use (AWS's ``DependencyViolation`` words): a VPC
  with VMs, security groups or NLBs in it, a subnet with VMs, a security group a VM uses. Key pairs
  can be deleted under a VM, and a VM under an NLB, as in AWS.
* Unknown ids raise ``DriverNotFound("<id> ... does not exist")``; SG AddRules of an existing rule
  and RemoveRules of a missing one raise ``DriverError`` (nothing changes); the same for NLB VMs.
* StartVM checks image, spec, VPC, subnet-in-VPC, SGs and keypair, then answers ``Running`` at once
  with a TEST-NET public IP (192.0.2.x, 198.51.100.x, 203.0.113.x) and a private IP from the subnet.
  Control/terminate return the transitional word and jump to the end state at once; terminate
  removes the VM (a later get raises DriverNotFound).
* Images ``null-image-01..02``, specs ``null-spec-01..02``, one region ``null-region`` with zones
  ``null-zone-a`` / ``null-zone-b``.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from spider_core.drivers.base import (
    AnyCallHandler,
    CloudConnection,
    CloudDriver,
    ConnectionInfo,
    DriverCapability,
    ImageHandler,
    KeyPairHandler,
    NLBHandler,
    RegionZoneHandler,
    SecurityHandler,
    VMHandler,
    VMSpecHandler,
    VPCHandler,
)
from spider_core.drivers.null_vmside import (NullDiskHandler, NullMyImageHandler, NullNICHandler,
                                             NullPriceInfoHandler, NullPublicIPHandler, NullTagHandler)
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import (
    IID,
    AnyCallInfo,
    HealthCheckerInfo,
    HealthInfo,
    ImageInfo,
    KeyPairInfo,
    KeyPairReqInfo,
    KeyValue,
    ListenerInfo,
    NICInfo,
    NLBInfo,
    NLBReqInfo,
    RegionZoneInfo,
    SecurityInfo,
    SecurityReqInfo,
    SecurityRule,
    SubnetInfo,
    VMAction,
    VMGroupInfo,
    VMInfo,
    VMReqInfo,
    VMSpecInfo,
    VMStatus,
    VMStatusInfo,
    VPCInfo,
    VPCReqInfo,
    ZoneInfo,
    ZoneStatus,
)

PROVIDER = "NULL"
REGION = "null-region"
ZONES = ("null-zone-a", "null-zone-b")
IMAGES = ("null-image-01", "null-image-02")
SPECS = ("null-spec-01", "null-spec-02")
TAG_TYPES = ("vpc", "subnet", "sg", "keypair", "vm", "nlb", "disk", "myimage", "publicip", "nic")

# 3 x 254 documentation addresses (RFC 5737); reused round-robin when all are taken.
_PUBLIC_POOL = tuple(f"{net}.{host}" for net in ("192.0.2", "198.51.100", "203.0.113")
                     for host in range(1, 255))


_ids = itertools.count(int.from_bytes(os.urandom(4), "big") << 16)


def new_csp_id() -> str:
    """Unique per process, no syscall (the NULL driver measures the core, not os.urandom)."""
    return f"null-{next(_ids) & 0xFFFFFFFFFFFF:012x}"


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- copies (results never alias stored state; lists are copied, frozen items shared) --------------

def _copy_subnet(s: SubnetInfo) -> SubnetInfo:
    return replace(s, tags=list(s.tags), key_values=list(s.key_values))


def _copy_vpc(v: VPCInfo) -> VPCInfo:
    return replace(v, subnets=[_copy_subnet(s) for s in v.subnets or []],
                   tags=list(v.tags), key_values=list(v.key_values))


def _copy_sg(g: SecurityInfo) -> SecurityInfo:
    return replace(g, rules=list(g.rules or []), tags=list(g.tags), key_values=list(g.key_values))


def _copy_key(k: KeyPairInfo) -> KeyPairInfo:
    return replace(k, tags=list(k.tags), key_values=list(k.key_values))


def _copy_vm(v: VMInfo) -> VMInfo:
    return replace(
        v, security_group_iids=list(v.security_group_iids), data_disk_iids=list(v.data_disk_iids),
        nics=[replace(n, private_ips=list(n.private_ips), public_ips=list(n.public_ips)) for n in v.nics],
        public_ips=list(v.public_ips), private_ips=list(v.private_ips),
        tags=list(v.tags), key_values=list(v.key_values))


def _copy_vm_group(g: VMGroupInfo) -> VMGroupInfo:
    return replace(g, vms=list(g.vms), key_values=list(g.key_values))


def _copy_nlb(n: NLBInfo) -> NLBInfo:
    return replace(n, listener=replace(n.listener, key_values=list(n.listener.key_values)),
                   vm_group=_copy_vm_group(n.vm_group),
                   health_checker=replace(n.health_checker, key_values=list(n.health_checker.key_values)),
                   tags=list(n.tags), key_values=list(n.key_values))


# ---- state -------------------------------------------------------------------------------------------

class _Table:
    """Resources of one type: CSP id -> object, plus a driver-NameId index."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.items: dict[str, Any] = {}
        self.by_name: dict[str, str] = {}

    def new_id(self) -> str:
        csp_id = new_csp_id()
        while csp_id in self.items:
            csp_id = new_csp_id()
        return csp_id

    def put(self, iid: IID, obj: Any) -> None:
        self.items[iid.system_id] = obj
        if iid.name_id:
            self.by_name[iid.name_id] = iid.system_id

    def key_of(self, iid: IID) -> str | None:
        if iid.system_id:
            return iid.system_id if iid.system_id in self.items else None
        csp_id = self.by_name.get(iid.name_id)
        return csp_id if csp_id in self.items else None

    def find(self, iid: IID) -> Any:
        key = self.key_of(iid)
        if key is None:
            raise DriverNotFound(f"{iid.system_id or iid.name_id} {self.word} does not exist!!")
        return self.items[key]

    def pop(self, iid: IID) -> Any:
        key = self.key_of(iid)
        if key is None:
            raise DriverNotFound(f"{iid.system_id or iid.name_id} {self.word} does not exist!!")
        obj = self.items.pop(key)
        name = obj.iid.name_id
        if name and self.by_name.get(name) == key:
            del self.by_name[name]
        return obj


class _Cloud:
    """One credential Name's cloud."""

    def __init__(self) -> None:
        self.vpcs = _Table("VPC")
        self.sgs = _Table("SecurityGroup")
        self.keys = _Table("Keypair")
        self.vms = _Table("VM")
        self.nlbs = _Table("NLB")
        self.disks = _Table("Disk")
        self.images = _Table("MyImage")
        self.public_ips = _Table("PublicIP")
        self.nics = _Table("NIC")
        self.nic_subnets: dict[str, SubnetInfo] = {}  # NIC CSP id -> its subnet (secondary IPs come from it)
        self.vm_status: dict[str, VMStatus] = {}  # VM CSP id -> status
        self.public_in_use: set[str] = set()
        self.public_next = 0
        self.private_next: dict[str, int] = {}  # subnet CSP id -> last host index used
        self.subnet_nets: dict[str, tuple[Any, int]] = {}  # subnet CSP id -> (network address, size)

    def take_public_ip(self) -> str:
        size = len(_PUBLIC_POOL)
        for _ in range(size if len(self.public_in_use) < size else 0):
            ip = _PUBLIC_POOL[self.public_next % size]
            self.public_next += 1
            if ip not in self.public_in_use:
                self.public_in_use.add(ip)
                return ip
        ip = _PUBLIC_POOL[self.public_next % size]  # pool exhausted: share an address
        self.public_next += 1
        return ip

    def free_public_ip(self, ip: str) -> None:
        self.public_in_use.discard(ip)

    def take_private_ip(self, subnet: SubnetInfo) -> str:
        sid = subnet.iid.system_id
        index = self.private_next.get(sid, 3) + 1  # .1-.3 reserved, like a CSP
        self.private_next[sid] = index
        net = self.subnet_nets.get(sid)
        if net is None:
            try:
                parsed = ipaddress.ip_network(subnet.ipv4_cidr, strict=False)
                net = (parsed.network_address, parsed.num_addresses)
            except ValueError:
                net = (ipaddress.ip_address("10.0.0.0"), 1 << 24)
            self.subnet_nets[sid] = net
        base, size = net
        usable = max(size - 5, 1)  # skip network, .1-.3 and broadcast; wrap when the subnet is full
        return str(base + 4 + (index - 4) % usable)


# ---- handlers ----------------------------------------------------------------------------------------

class NullRegionZoneHandler(RegionZoneHandler):
    def __init__(self, region: str) -> None:
        self.region = region

    @staticmethod
    def _region() -> RegionZoneInfo:
        return RegionZoneInfo(
            name=REGION, display_name="Null Region", csp_display_name="Null Region",
            zones=[ZoneInfo(name=z, display_name=z, csp_display_name=z, status=ZoneStatus.AVAILABLE.value)
                   for z in ZONES])

    async def list_region_zone(self) -> list[RegionZoneInfo]:
        return [self._region()]

    async def get_region_zone(self, name: str) -> RegionZoneInfo:
        if name != REGION:
            raise DriverNotFound(f"{name} region does not exist!!")
        return self._region()

    async def list_org_region(self) -> Any:
        return [{"RegionName": REGION, "DisplayName": "Null Region"}]

    async def list_org_zone(self) -> Any:
        return [{"ZoneName": z, "RegionName": REGION, "State": "available"} for z in ZONES]


def _image(name: str) -> ImageInfo:
    n = IMAGES.index(name) + 1
    return ImageInfo(iid=IID(name, name), name=f"null-image-name-0{n}", os_architecture="x86_64",
                     os_platform="Linux/UNIX", os_distribution="Ubuntu 22.04", os_disk_type="gp3",
                     os_disk_size_gb="8", image_status="Available")


def _spec(name: str) -> VMSpecInfo:
    n = SPECS.index(name) + 1
    return VMSpecInfo(region=REGION, name=name, vcpu_count=str(n), vcpu_clock_ghz="2.5",
                      mem_size_mib=str(1024 * n), disk_size_gb="-1")


class NullImageHandler(ImageHandler):
    async def list_image(self) -> list[ImageInfo]:
        return [_image(name) for name in IMAGES]

    async def get_image(self, iid: IID) -> ImageInfo:
        name = iid.system_id or iid.name_id
        if name not in IMAGES:
            raise DriverNotFound(f"{name} image does not exist!!")
        return _image(name)


class NullVMSpecHandler(VMSpecHandler):
    async def list_vm_spec(self) -> list[VMSpecInfo]:
        return [_spec(name) for name in SPECS]

    async def get_vm_spec(self, name: str) -> VMSpecInfo:
        if name not in SPECS:
            raise DriverNotFound(f"{name} VMSpec does not exist!!")
        return _spec(name)

    async def list_org_vm_spec(self) -> Any:
        return [{"InstanceType": name, "VCpu": int(s.vcpu_count), "MemoryMiB": int(s.mem_size_mib)}
                for name in SPECS for s in [_spec(name)]]

    async def get_org_vm_spec(self, name: str) -> Any:
        s = await self.get_vm_spec(name)
        return {"InstanceType": name, "VCpu": int(s.vcpu_count), "MemoryMiB": int(s.mem_size_mib)}


class NullVPCHandler(VPCHandler):
    def __init__(self, cloud: _Cloud, zone: str) -> None:
        self.cloud = cloud
        self.zone = zone

    def _subnet(self, subnet: SubnetInfo) -> SubnetInfo:
        return SubnetInfo(iid=IID(subnet.iid.name_id, new_csp_id()), zone=subnet.zone or self.zone,
                          ipv4_cidr=subnet.ipv4_cidr, tags=list(subnet.tags))

    async def create_vpc(self, req: VPCReqInfo) -> VPCInfo:
        table = self.cloud.vpcs
        iid = IID(req.iid.name_id, table.new_id())
        vpc = VPCInfo(iid=iid, ipv4_cidr=req.ipv4_cidr, subnets=[self._subnet(s) for s in req.subnets],
                      tags=list(req.tags))
        table.put(iid, vpc)
        return _copy_vpc(vpc)

    async def list_vpc(self) -> list[VPCInfo]:
        return [_copy_vpc(v) for v in self.cloud.vpcs.items.values()]

    async def get_vpc(self, iid: IID) -> VPCInfo:
        return _copy_vpc(self.cloud.vpcs.find(iid))

    async def delete_vpc(self, iid: IID) -> bool:
        vpc = self.cloud.vpcs.find(iid)
        csp_id = vpc.iid.system_id
        users = [v.iid.system_id for t in (self.cloud.vms, self.cloud.sgs, self.cloud.nlbs)
                 for v in t.items.values() if v.vpc_iid.system_id == csp_id]
        if users:
            raise DriverError(f"DependencyViolation: The vpc '{csp_id}' has dependencies and cannot be deleted "
                              f"(in use by {', '.join(sorted(users)[:3])})")
        self.cloud.vpcs.pop(iid)
        return True

    async def add_subnet(self, vpc_iid: IID, subnet: SubnetInfo) -> VPCInfo:
        vpc = self.cloud.vpcs.find(vpc_iid)
        if subnet.iid.name_id and any(s.iid.name_id == subnet.iid.name_id for s in vpc.subnets):
            raise DriverError(f"{vpc.iid.system_id} VPC already has subnet {subnet.iid.name_id}!!")
        vpc.subnets.append(self._subnet(subnet))
        return _copy_vpc(vpc)

    async def remove_subnet(self, vpc_iid: IID, subnet_iid: IID) -> bool:
        vpc = self.cloud.vpcs.find(vpc_iid)
        for i, s in enumerate(vpc.subnets):
            if _matches(s.iid, subnet_iid):
                users = [v.iid.system_id for v in self.cloud.vms.items.values()
                         if v.subnet_iid.system_id == s.iid.system_id]
                if users:
                    raise DriverError(f"DependencyViolation: The subnet '{s.iid.system_id}' has dependencies and "
                                      f"cannot be deleted (in use by {', '.join(sorted(users)[:3])})")
                del vpc.subnets[i]
                return True
        raise DriverNotFound(f"{subnet_iid.system_id or subnet_iid.name_id} subnet does not exist!!")

    async def list_iid(self) -> list[IID]:
        return [v.iid for v in self.cloud.vpcs.items.values()]


def _matches(stored: IID, wanted: IID) -> bool:
    if wanted.system_id:
        return stored.system_id == wanted.system_id
    return bool(wanted.name_id) and stored.name_id == wanted.name_id


class NullSecurityHandler(SecurityHandler):
    def __init__(self, cloud: _Cloud) -> None:
        self.cloud = cloud

    async def create_security(self, req: SecurityReqInfo) -> SecurityInfo:
        vpc = self.cloud.vpcs.find(req.vpc_iid)
        rules: list[SecurityRule] = []
        for rule in req.rules:
            if rule not in rules:  # a CSP keeps one copy of a repeated rule
                rules.append(rule)
        table = self.cloud.sgs
        iid = IID(req.iid.name_id, table.new_id())
        sg = SecurityInfo(iid=iid, vpc_iid=vpc.iid, rules=rules, tags=list(req.tags))
        table.put(iid, sg)
        return _copy_sg(sg)

    async def list_security(self) -> list[SecurityInfo]:
        return [_copy_sg(g) for g in self.cloud.sgs.items.values()]

    async def get_security(self, iid: IID) -> SecurityInfo:
        return _copy_sg(self.cloud.sgs.find(iid))

    async def delete_security(self, iid: IID) -> bool:
        sg = self.cloud.sgs.find(iid)
        csp_id = sg.iid.system_id
        users = [v.iid.system_id for v in self.cloud.vms.items.values()
                 if any(g.system_id == csp_id for g in v.security_group_iids)]
        if users:
            raise DriverError(f"DependencyViolation: resource {csp_id} has a dependent object "
                              f"(in use by {', '.join(sorted(users)[:3])})")
        self.cloud.sgs.pop(iid)
        return True

    async def add_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> SecurityInfo:
        sg = self.cloud.sgs.find(sg_iid)
        current = sg.rules
        for rule in rules:
            if rule in current:
                raise DriverError(f"{sg.iid.system_id} SecurityGroup already has this rule: {rule.text()}!!")
        for rule in rules:
            if rule not in current:
                current.append(rule)
        return _copy_sg(sg)

    async def remove_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> bool:
        sg = self.cloud.sgs.find(sg_iid)
        current = sg.rules
        for rule in rules:
            if rule not in current:
                raise DriverError(f"{sg.iid.system_id} SecurityGroup does not have this rule: {rule.text()}!!")
        sg.rules = [r for r in current if r not in rules]
        return True

    async def list_iid(self) -> list[IID]:
        return [g.iid for g in self.cloud.sgs.items.values()]


class NullKeyPairHandler(KeyPairHandler):
    def __init__(self, cloud: _Cloud) -> None:
        self.cloud = cloud

    async def create_key(self, req: KeyPairReqInfo) -> KeyPairInfo:
        table = self.cloud.keys
        csp_id = table.new_id()
        iid = IID(req.iid.name_id, csp_id)
        material = uuid.uuid4().hex
        fingerprint = ":".join(material[i:i + 2] for i in range(0, 32, 2))
        key = KeyPairInfo(
            iid=iid, fingerprint=fingerprint,
            public_key=f"ssh-ed25519 NULL{material} {csp_id}",
            private_key=("-----BEGIN OPENSSH PRIVATE KEY-----\n"
                         f"NULL-DRIVER-FAKE-KEY-{material}\n-----END OPENSSH PRIVATE KEY-----\n"),
            vm_user_id="cb-user", tags=list(req.tags))
        table.put(iid, key)
        return _copy_key(key)

    async def list_key(self) -> list[KeyPairInfo]:
        return [_copy_key(k) for k in self.cloud.keys.items.values()]

    async def get_key(self, iid: IID) -> KeyPairInfo:
        return _copy_key(self.cloud.keys.find(iid))

    async def delete_key(self, iid: IID) -> bool:
        self.cloud.keys.pop(iid)
        return True

    async def list_iid(self) -> list[IID]:
        return [k.iid for k in self.cloud.keys.items.values()]


# Control transitions: action -> (statuses it is allowed from, returned word, status after).
_CONTROL: dict[VMAction, tuple[frozenset[VMStatus], VMStatus, VMStatus]] = {
    VMAction.SUSPEND: (frozenset({VMStatus.RUNNING}), VMStatus.SUSPENDING, VMStatus.SUSPENDED),
    VMAction.RESUME: (frozenset({VMStatus.SUSPENDED}), VMStatus.RESUMING, VMStatus.RUNNING),
    VMAction.REBOOT: (frozenset({VMStatus.RUNNING}), VMStatus.REBOOTING, VMStatus.RUNNING),
}


class NullVMHandler(VMHandler):
    def __init__(self, cloud: _Cloud, region: str, zone: str) -> None:
        self.cloud = cloud
        self.region = region
        self.zone = zone

    async def start_vm(self, req: VMReqInfo) -> VMInfo:
        cloud = self.cloud
        image = req.image_iid.system_id or req.image_iid.name_id
        if image not in IMAGES and cloud.images.key_of(req.image_iid) is None:
            raise DriverError(f"{image} image does not exist!!")
        if req.vmspec_name not in SPECS:
            raise DriverError(f"{req.vmspec_name} VMSpec does not exist!!")
        vpc_key = cloud.vpcs.key_of(req.vpc_iid)
        if vpc_key is None:
            raise DriverError(f"{req.vpc_iid.system_id or req.vpc_iid.name_id} VPC does not exist!!")
        vpc: VPCInfo = cloud.vpcs.items[vpc_key]
        subnet = next((s for s in vpc.subnets or [] if _matches(s.iid, req.subnet_iid)), None)
        if subnet is None:
            raise DriverError(f"{req.subnet_iid.system_id or req.subnet_iid.name_id} subnet iid does not exist!!")
        sg_iids = []
        for sg_iid in req.security_group_iids:
            key = cloud.sgs.key_of(sg_iid)
            if key is None:
                raise DriverError(f"{sg_iid.system_id or sg_iid.name_id} security group iid does not exist!!")
            sg_iids.append(cloud.sgs.items[key].iid)
        key_iid = IID()
        if req.keypair_iid.system_id or req.keypair_iid.name_id:
            key = cloud.keys.key_of(req.keypair_iid)
            if key is None:
                raise DriverError(f"{req.keypair_iid.system_id or req.keypair_iid.name_id} Keypair does not exist!!")
            key_iid = cloud.keys.items[key].iid

        table = cloud.vms
        csp_id = table.new_id()
        iid = IID(req.iid.name_id, csp_id)
        public_ip = cloud.take_public_ip()
        private_ip = cloud.take_private_ip(subnet)
        nic_id = "null-eni-" + csp_id[5:]
        vm = VMInfo(
            iid=iid, start_time=_now_iso(), region=self.region, zone=req.zone or subnet.zone or self.zone,
            image_type=req.image_type or "PublicImage", image_iid=IID(image, image),
            vmspec_name=req.vmspec_name, vpc_iid=vpc.iid, subnet_iid=subnet.iid,
            security_group_iids=sg_iids, keypair_iid=key_iid,
            root_disk_type=req.root_disk_type or "gp3", root_disk_size=req.root_disk_size or "8",
            root_device_name="/dev/sda1", data_disk_iids=list(req.data_disk_iids),
            vm_boot_disk="/dev/sda1", vm_block_disk="/dev/sda1",
            vm_user_id=req.vm_user_id, vm_user_passwd="",
            nics=[NICInfo(iid=IID("", nic_id), device_index=0, private_ips=[private_ip],
                          public_ips=[public_ip], mac_address=_mac(csp_id), subnet_iid=subnet.iid)],
            network_interface=nic_id,
            public_ip=public_ip, public_ips=[public_ip], public_dns=f"{csp_id}.public.null.invalid",
            private_ip=private_ip, private_ips=[private_ip], private_dns=f"{csp_id}.internal.null.invalid",
            platform="LINUX/UNIX", tags=list(req.tags))
        table.put(iid, vm)
        cloud.vm_status[csp_id] = VMStatus.RUNNING
        return _copy_vm(vm)

    async def control_vm(self, iid: IID, action: VMAction) -> VMStatus:
        vm = self.cloud.vms.find(iid)
        try:
            allowed, word, after = _CONTROL[VMAction(action)]
        except ValueError:
            raise DriverError(f"{action} is not a VM control action!!") from None
        status = self.cloud.vm_status[vm.iid.system_id]
        if status not in allowed:
            raise DriverError(f"{VMAction(action).value} not supported in {status.value} status")
        self.cloud.vm_status[vm.iid.system_id] = after
        return word

    async def terminate_vm(self, iid: IID) -> VMStatus:
        vm = self.cloud.vms.pop(iid)
        self.cloud.vm_status.pop(vm.iid.system_id, None)
        self.cloud.free_public_ip(vm.public_ip)
        self._release(vm.iid.system_id)
        return VMStatus.TERMINATING

    def _release(self, vm_id: str) -> None:
        """What a terminated VM held goes back: disks and NICs detached, public IPs disassociated."""
        for obj in (*self.cloud.disks.items.values(), *self.cloud.nics.items.values()):
            if obj.owner_vm.system_id == vm_id:
                obj.status, obj.owner_vm = ("Available", IID())
        for pip in self.cloud.public_ips.items.values():
            if pip.owned_vm.system_id == vm_id:
                pip.status, pip.owned_vm, pip.owned_nic, pip.owned_private_ip = "Available", IID(), IID(), ""

    async def list_vm_status(self) -> list[VMStatusInfo]:
        status = self.cloud.vm_status
        return [VMStatusInfo(iid=vm.iid, status=status[csp_id].value)
                for csp_id, vm in self.cloud.vms.items.items()]

    async def get_vm_status(self, iid: IID) -> VMStatus:
        vm = self.cloud.vms.find(iid)
        return self.cloud.vm_status[vm.iid.system_id]

    async def list_vm(self) -> list[VMInfo]:
        return [_copy_vm(vm) for vm in self.cloud.vms.items.values()]

    async def get_vm(self, iid: IID) -> VMInfo:
        return _copy_vm(self.cloud.vms.find(iid))

    async def list_iid(self) -> list[IID]:
        return [vm.iid for vm in self.cloud.vms.items.values()]


def _mac(csp_id: str) -> str:
    digits = (csp_id[5:] + "000000000000")[:10]
    return "02:" + ":".join(digits[i:i + 2] for i in range(0, 10, 2))


class NullNLBHandler(NLBHandler):
    def __init__(self, cloud: _Cloud) -> None:
        self.cloud = cloud

    def _vm_iids(self, vm_iids: list[IID]) -> list[IID]:
        out = []
        for vm_iid in vm_iids:
            key = self.cloud.vms.key_of(vm_iid)
            if key is None:
                raise DriverError(f"{vm_iid.system_id or vm_iid.name_id} VM does not exist!!")
            out.append(self.cloud.vms.items[key].iid)
        return out

    async def create_nlb(self, req: NLBReqInfo) -> NLBInfo:
        cloud = self.cloud
        vpc = cloud.vpcs.find(req.vpc_iid)
        vms = self._vm_iids(req.vm_group.vms)
        table = cloud.nlbs
        csp_id = table.new_id()
        iid = IID(req.iid.name_id, csp_id)
        nlb = NLBInfo(
            iid=iid, vpc_iid=vpc.iid, type=req.type or "PUBLIC", scope=req.scope or "REGION",
            listener=replace(req.listener, ip=cloud.take_public_ip(),
                             dns_name=f"{csp_id}.nlb.null.invalid", csp_id=f"{csp_id}-listener",
                             key_values=list(req.listener.key_values)),
            vm_group=replace(req.vm_group, vms=vms, csp_id=f"{csp_id}-vmgroup",
                             key_values=list(req.vm_group.key_values)),
            health_checker=replace(req.health_checker, csp_id=f"{csp_id}-healthchecker",
                                   key_values=list(req.health_checker.key_values)),
            created_time=_now_iso(), tags=list(req.tags))
        table.put(iid, nlb)
        return _copy_nlb(nlb)

    async def list_nlb(self) -> list[NLBInfo]:
        return [_copy_nlb(n) for n in self.cloud.nlbs.items.values()]

    async def get_nlb(self, iid: IID) -> NLBInfo:
        return _copy_nlb(self.cloud.nlbs.find(iid))

    async def delete_nlb(self, iid: IID) -> bool:
        nlb = self.cloud.nlbs.pop(iid)
        self.cloud.free_public_ip(nlb.listener.ip)
        return True

    async def add_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> VMGroupInfo:
        nlb = self.cloud.nlbs.find(nlb_iid)
        new = self._vm_iids(vm_iids)
        group = nlb.vm_group.vms
        for vm in new:
            if vm in group:
                raise DriverError(f"{nlb.iid.system_id} NLB already has this VM: {vm.system_id}!!")
        for vm in new:
            if vm not in group:
                group.append(vm)
        return _copy_vm_group(nlb.vm_group)

    async def remove_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> bool:
        nlb = self.cloud.nlbs.find(nlb_iid)
        group = nlb.vm_group.vms
        gone = []
        for wanted in vm_iids:
            member = next((vm for vm in group if _matches(vm, wanted)), None)
            if member is None:
                raise DriverError(f"{nlb.iid.system_id} NLB does not have this VM: "
                                  f"{wanted.system_id or wanted.name_id}!!")
            gone.append(member)
        nlb.vm_group.vms = [vm for vm in group if vm not in gone]
        return True

    async def get_vm_group_health(self, nlb_iid: IID) -> HealthInfo:
        nlb = self.cloud.nlbs.find(nlb_iid)
        status = self.cloud.vm_status
        health = HealthInfo()
        for vm in nlb.vm_group.vms:
            health.all_vms.append(vm)
            if status.get(vm.system_id) == VMStatus.RUNNING:
                health.healthy_vms.append(vm)
            else:
                health.unhealthy_vms.append(vm)
        return health

    async def change_listener(self, nlb_iid: IID, listener: ListenerInfo) -> ListenerInfo:
        nlb = self.cloud.nlbs.find(nlb_iid)
        old = nlb.listener
        nlb.listener = replace(listener, ip=old.ip, dns_name=old.dns_name, csp_id=old.csp_id,
                               key_values=list(listener.key_values))
        return replace(nlb.listener, key_values=list(nlb.listener.key_values))

    async def change_vm_group_info(self, nlb_iid: IID, vm_group: VMGroupInfo) -> VMGroupInfo:
        nlb = self.cloud.nlbs.find(nlb_iid)
        old = nlb.vm_group
        nlb.vm_group = replace(old, protocol=vm_group.protocol or old.protocol,
                               port=vm_group.port or old.port)
        return _copy_vm_group(nlb.vm_group)

    async def change_health_checker_info(self, nlb_iid: IID,
                                         health_checker: HealthCheckerInfo) -> HealthCheckerInfo:
        nlb = self.cloud.nlbs.find(nlb_iid)
        nlb.health_checker = replace(health_checker, csp_id=nlb.health_checker.csp_id,
                                     key_values=list(health_checker.key_values))
        return replace(nlb.health_checker, key_values=list(nlb.health_checker.key_values))

    async def list_iid(self) -> list[IID]:
        return [n.iid for n in self.cloud.nlbs.items.values()]


class NullAnyCallHandler(AnyCallHandler):
    """FIDs: ``countAll`` (input ``rsType`` = vpc|sg|keypair|vm|nlb -> output ``Count``) and ``echo``."""

    def __init__(self, cloud: _Cloud) -> None:
        self.cloud = cloud

    async def any_call(self, call: AnyCallInfo) -> AnyCallInfo:
        if call.fid == "echo":
            return replace(call, inputs=list(call.inputs), outputs=list(call.inputs))
        if call.fid == "countAll":
            tables = {"vpc": self.cloud.vpcs, "sg": self.cloud.sgs, "keypair": self.cloud.keys,
                      "vm": self.cloud.vms, "nlb": self.cloud.nlbs}
            kv = {k.key: k.value for k in call.inputs}
            table = tables.get(kv.get("rsType", ""))
            if table is None:
                raise DriverError("Null Driver: countAll needs rsType = vpc|sg|keypair|vm|nlb!")
            return replace(call, inputs=list(call.inputs),
                           outputs=[*call.outputs, KeyValue("Count", str(len(table.items)))])
        raise DriverError(f"Null Driver: {call.fid} Function is not implemented!")


# ---- driver ------------------------------------------------------------------------------------------

class NullDriver(CloudDriver):
    provider_name = PROVIDER

    def __init__(self) -> None:
        self._clouds: dict[str, _Cloud] = {}

    def capability(self) -> DriverCapability:
        return DriverCapability(
            zone_based_control=True, region_zone_handler=True, image_handler=True, vmspec_handler=True,
            vpc_handler=True, security_handler=True, keypair_handler=True, vm_handler=True,
            nlb_handler=True, vpc_cidr=True, probe_ssh_after_start=False, disk_handler=True, myimage_handler=True,
            tag_handler=True, public_ip_handler=True, nic_handler=True, price_info_handler=True,
            tag_support_resource_types=TAG_TYPES)

    def credential_keys(self) -> list[str]:
        return []

    def cloud(self, name: str = "default") -> _Cloud:
        """The state behind credential ``Name`` (created on first use)."""
        cloud = self._clouds.get(name)
        if cloud is None:
            cloud = self._clouds[name] = _Cloud()
        return cloud

    async def connect(self, info: ConnectionInfo) -> CloudConnection:
        name = next((v for k, v in info.credential.items() if k.lower() == "name"), "") or "default"
        cloud = self.cloud(name)
        region = info.region or REGION
        zone = info.zone or ZONES[0]
        return CloudConnection(
            region_zone=NullRegionZoneHandler(region),
            image=NullImageHandler(),
            vmspec=NullVMSpecHandler(),
            vpc=NullVPCHandler(cloud, zone),
            security=NullSecurityHandler(cloud),
            keypair=NullKeyPairHandler(cloud),
            vm=NullVMHandler(cloud, region, zone),
            nlb=NullNLBHandler(cloud),
            any_call=NullAnyCallHandler(cloud),
            disk=NullDiskHandler(cloud, zone, _now_iso),
            myimage=NullMyImageHandler(cloud, _now_iso),
            tag=NullTagHandler(cloud),
            publicip=NullPublicIPHandler(cloud, _now_iso),
            nic=NullNICHandler(cloud, _now_iso),
            price_info=NullPriceInfoHandler(region, NullVMSpecHandler()),
        )

    async def close(self) -> None:
        self._clouds.clear()
