"""The domain model: one place for every resource shape Spider deals in.

Plain dataclasses with snake_case fields. Nothing here knows about JSON field casing, HTTP or a
cloud SDK: the REST edge (``spider_core.wire``) maps these to CB-Spider's JSON, and drivers map
them to their SDK. Numbers that CB-Spider sends as strings stay strings here, because drivers
report values like ``"-1"`` (not applicable) that are not numbers.

IIDs come in three views (see the contract, section 3):

* user IID:   NameId = user name, SystemId = CSP id          (every API response)
* spider IID: NameId = user name, SystemId = "spUUID:cspId"  (stored in the MetaDB)
* driver IID: NameId = spUUID,    SystemId = CSP id          (passed to drivers)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class IID:
    """An integrated id: a name and the id a cloud knows the resource by."""

    name_id: str = ""
    system_id: str = ""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


def _kvs() -> list[KeyValue]:
    return []


# --------------------------------------------------------------------------------------------
# Connection information (stored in the MetaDB, not resources of a cloud)


@dataclass
class DriverInfo:
    driver_name: str
    provider_name: str
    driver_lib_file_name: str


@dataclass
class CredentialInfo:
    credential_name: str
    provider_name: str
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class RegionInfo:
    region_name: str
    provider_name: str
    key_values: list[KeyValue] = field(default_factory=_kvs)
    available_zones: list[str] | None = None


@dataclass
class ConnectionConfigInfo:
    config_name: str
    provider_name: str
    driver_name: str
    credential_name: str
    region_name: str


# --------------------------------------------------------------------------------------------
# Region / zone, image, spec


class ZoneStatus(str, Enum):
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    NOT_SUPPORTED = "StatusNotSupported"


@dataclass
class ZoneInfo:
    name: str
    display_name: str = ""
    csp_display_name: str = ""
    status: str = ZoneStatus.NOT_SUPPORTED.value
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class RegionZoneInfo:
    name: str
    display_name: str = ""
    csp_display_name: str = ""
    zones: list[ZoneInfo] = field(default_factory=list)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class ImageInfo:
    iid: IID
    name: str = ""
    os_architecture: str = "NA"
    os_platform: str = "NA"
    os_distribution: str = ""
    os_disk_type: str = ""
    os_disk_size_gb: str = "-1"
    image_status: str = "NA"
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class GpuInfo:
    count: str = "-1"
    mfr: str = ""
    model: str = ""
    mem_size_gb: str = ""
    total_mem_size_gb: str = ""


@dataclass
class VMSpecInfo:
    region: str
    name: str
    vcpu_count: str = "-1"
    vcpu_clock_ghz: str = ""
    mem_size_mib: str = "-1"
    disk_size_gb: str = "-1"
    gpus: list[GpuInfo] = field(default_factory=list)
    key_values: list[KeyValue] = field(default_factory=_kvs)


# --------------------------------------------------------------------------------------------
# VPC and subnet


@dataclass
class SubnetInfo:
    iid: IID
    zone: str = ""
    ipv4_cidr: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class VPCInfo:
    iid: IID
    ipv4_cidr: str = ""
    # None only in a list stub for a VPC the driver no longer has.
    subnets: list[SubnetInfo] | None = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class VPCReqInfo:
    iid: IID
    ipv4_cidr: str = ""
    subnets: list[SubnetInfo] = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=_kvs)


# --------------------------------------------------------------------------------------------
# Security group


class Direction(str, Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class SecurityRule:
    """One allow rule. Spider normalises before anything else sees it (``normalise_rule``)."""

    direction: str
    ip_protocol: str
    from_port: str
    to_port: str
    cidr: str = "0.0.0.0/0"

    def text(self) -> str:
        """CB-Spider's Go ``%v`` form, used in MOCK-style error messages."""
        return f"{{{self.direction} {self.ip_protocol} {self.from_port} {self.to_port} {self.cidr}}}"


DEFAULT_CIDR = "0.0.0.0/0"


def normalise_rule(rule: SecurityRule) -> SecurityRule:
    """The one place rules are normalised: direction lower, protocol upper, empty CIDR -> 0.0.0.0/0.

    Ports and CIDR syntax are not checked here (CB-Spider leaves that to drivers).
    """
    return SecurityRule(
        direction=rule.direction.strip().lower(),
        ip_protocol=rule.ip_protocol.strip().upper(),
        from_port=rule.from_port.strip(),
        to_port=rule.to_port.strip(),
        cidr=rule.cidr.strip() or DEFAULT_CIDR,
    )


@dataclass
class SecurityInfo:
    iid: IID
    vpc_iid: IID
    # None only in a list stub.
    rules: list[SecurityRule] | None = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class SecurityReqInfo:
    iid: IID
    vpc_iid: IID
    rules: list[SecurityRule] = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=_kvs)


# --------------------------------------------------------------------------------------------
# Key pair


HIDDEN = "Hidden for security."


@dataclass
class KeyPairInfo:
    iid: IID
    fingerprint: str = ""
    public_key: str = ""
    private_key: str = ""
    vm_user_id: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class KeyPairReqInfo:
    iid: IID
    tags: list[KeyValue] = field(default_factory=_kvs)


# --------------------------------------------------------------------------------------------
# VM


class VMStatus(str, Enum):
    """Exactly CB-Spider's ten VM status words."""

    CREATING = "Creating"
    RUNNING = "Running"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"
    RESUMING = "Resuming"
    REBOOTING = "Rebooting"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"
    NOT_EXIST = "NotExist"
    FAILED = "Failed"


class VMAction(str, Enum):
    SUSPEND = "suspend"
    RESUME = "resume"
    REBOOT = "reboot"


@dataclass
class VMReqInfo:
    iid: IID
    image_type: str = "PublicImage"
    image_iid: IID = field(default_factory=IID)
    vmspec_name: str = ""
    vpc_iid: IID = field(default_factory=IID)
    subnet_iid: IID = field(default_factory=IID)
    security_group_iids: list[IID] = field(default_factory=list)
    keypair_iid: IID = field(default_factory=IID)
    root_disk_type: str = ""
    root_disk_size: str = ""
    data_disk_iids: list[IID] = field(default_factory=list)
    vm_user_id: str = ""
    vm_user_passwd: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    zone: str = ""


@dataclass
class NICInfo:
    iid: IID
    device_index: int = 0
    private_ips: list[str] = field(default_factory=list)
    public_ips: list[str] = field(default_factory=list)
    mac_address: str = ""
    subnet_iid: IID = field(default_factory=IID)


@dataclass
class VMInfo:
    iid: IID
    start_time: str = ""
    region: str = ""
    zone: str = ""
    image_type: str = "PublicImage"
    image_iid: IID = field(default_factory=IID)
    vmspec_name: str = ""
    vpc_iid: IID = field(default_factory=IID)
    subnet_iid: IID = field(default_factory=IID)
    security_group_iids: list[IID] = field(default_factory=list)
    keypair_iid: IID = field(default_factory=IID)
    root_disk_type: str = ""
    root_disk_size: str = ""
    root_device_name: str = ""
    data_disk_iids: list[IID] = field(default_factory=list)
    vm_boot_disk: str = ""
    vm_block_disk: str = ""
    vm_user_id: str = ""
    vm_user_passwd: str = ""
    nics: list[NICInfo] = field(default_factory=list)
    network_interface: str = ""
    public_ip: str = ""
    public_ips: list[str] = field(default_factory=list)
    public_dns: str = ""
    private_ip: str = ""
    private_ips: list[str] = field(default_factory=list)
    private_dns: str = ""
    platform: str = ""
    ssh_access_point: str = ""
    access_point: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class VMStatusInfo:
    iid: IID
    status: str


# --------------------------------------------------------------------------------------------
# Network load balancer


@dataclass
class ListenerInfo:
    protocol: str = ""
    ip: str = ""
    port: str = ""
    dns_name: str = ""
    csp_id: str = ""
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class VMGroupInfo:
    protocol: str = ""
    port: str = ""
    vms: list[IID] = field(default_factory=list)
    csp_id: str = ""
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class HealthCheckerInfo:
    protocol: str = ""
    port: str = ""
    interval: int = -1
    timeout: int = -1
    threshold: int = -1
    csp_id: str = ""
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class NLBInfo:
    iid: IID
    vpc_iid: IID = field(default_factory=IID)
    type: str = "PUBLIC"
    scope: str = "REGION"
    listener: ListenerInfo = field(default_factory=ListenerInfo)
    vm_group: VMGroupInfo = field(default_factory=VMGroupInfo)
    health_checker: HealthCheckerInfo = field(default_factory=HealthCheckerInfo)
    created_time: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class NLBReqInfo:
    iid: IID
    vpc_iid: IID
    type: str = "PUBLIC"
    scope: str = "REGION"
    listener: ListenerInfo = field(default_factory=ListenerInfo)
    vm_group: VMGroupInfo = field(default_factory=VMGroupInfo)
    health_checker: HealthCheckerInfo = field(default_factory=HealthCheckerInfo)
    tags: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class HealthInfo:
    all_vms: list[IID] = field(default_factory=list)
    healthy_vms: list[IID] = field(default_factory=list)
    unhealthy_vms: list[IID] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Misc


@dataclass
class AnyCallInfo:
    fid: str
    inputs: list[KeyValue] = field(default_factory=_kvs)
    outputs: list[KeyValue] = field(default_factory=_kvs)


# --------------------------------------------------------------------------------------------
# VM-side families: disks, machine images taken from VMs, network interfaces, public IPs, tags


class DiskStatus(str, Enum):
    CREATING = "Creating"
    AVAILABLE = "Available"
    ATTACHED = "Attached"
    DELETING = "Deleting"
    ERROR = "Error"


@dataclass
class DiskInfo:
    """CB-Spider's ``DiskInfo`` (also its create request: ``iid``, ``zone``, ``disk_type``, ``disk_size``)."""

    iid: IID
    zone: str = ""
    disk_type: str = ""
    disk_size: str = ""
    status: str = ""
    owner_vm: IID = field(default_factory=IID)
    created_time: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class MyImageInfo:
    """A machine image a VM was snapshotted into (CB-Spider's ``MyImageInfo``)."""

    iid: IID
    source_vm: IID = field(default_factory=IID)
    status: str = ""
    created_time: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class PublicIPInfo:
    iid: IID
    public_ip_address: str = ""
    status: str = ""
    owned_vm: IID = field(default_factory=IID)
    owned_nic: IID = field(default_factory=IID)
    owned_private_ip: str = ""
    created_time: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class NetworkInterfaceInfo:
    """A stand-alone network interface (CB-Spider's ``NICInfo``; ``NICInfo`` above is a VM's NIC view)."""

    iid: IID
    vpc_iid: IID = field(default_factory=IID)
    subnet_iid: IID = field(default_factory=IID)
    security_group_iids: list[IID] = field(default_factory=list)
    private_ip: str = ""
    private_ips: list[str] = field(default_factory=list)
    public_ips: list[str] = field(default_factory=list)
    public_ip: str = ""
    owner_vm: IID = field(default_factory=IID)
    device_index: int = 0
    mac_address: str = ""
    status: str = ""
    created_time: str = ""
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class NICReqInfo:
    iid: IID
    vpc_iid: IID
    subnet_iid: IID
    security_group_iids: list[IID] = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class TagInfo:
    """A resource and its tags (FindTag's answer)."""

    res_type: str
    res_iid: IID
    tags: list[KeyValue] = field(default_factory=_kvs)
    key_values: list[KeyValue] = field(default_factory=_kvs)


@dataclass
class VMPrice:
    """One on-demand price of one VM spec in one region (a row of CB-Spider's ``CloudPrice.PriceList``)."""

    spec: VMSpecInfo
    product_id: str
    price: str
    currency: str = "USD"
    unit: str = "Hour"
    pricing_id: str = ""
    zone: str = ""
    description: str = ""
    csp_product_info: dict = field(default_factory=dict)
    csp_price_info: dict = field(default_factory=dict)
