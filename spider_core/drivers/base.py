"""The driver interface: one handler per resource family, a capability record, and a connection.

This mirrors CB-Spider's Go interfaces (``CloudDriver`` -> ``CloudConnection`` -> ``XxxHandler``)
so that the services layer can be written once and every cloud plugs in underneath it.

Conventions every driver follows:

* Every handler method is ``async``. A driver on a blocking SDK (boto3, openstacksdk) runs its calls
  in its own bounded thread pool; the event loop never blocks.
* IIDs passed in are **driver IIDs**: ``name_id`` is the spUUID Spider generated, ``system_id`` is
  the CSP id (empty on create). IIDs returned carry the CSP id in ``system_id``; Spider maps them
  back to user names.
* Failures raise ``spider_core.errors.DriverError``; a missing resource raises ``DriverNotFound``
  (or any DriverError whose text contains CB-Spider's not-found words).
* Messages never contain credentials.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from spider_core.model import (
    IID,
    AnyCallInfo,
    DiskInfo,
    HealthCheckerInfo,
    HealthInfo,
    ImageInfo,
    KeyPairInfo,
    KeyPairReqInfo,
    KeyValue,
    ListenerInfo,
    MyImageInfo,
    NetworkInterfaceInfo,
    NICReqInfo,
    NLBInfo,
    NLBReqInfo,
    PublicIPInfo,
    RegionZoneInfo,
    SecurityInfo,
    SecurityReqInfo,
    SecurityRule,
    SubnetInfo,
    TagInfo,
    VMAction,
    VMGroupInfo,
    VMInfo,
    VMPrice,
    VMReqInfo,
    VMSpecInfo,
    VMStatus,
    VMStatusInfo,
    VPCInfo,
    VPCReqInfo,
)


@dataclass(frozen=True)
class ConnectionInfo:
    """What a driver receives to open a connection (CB-Spider's ``ConnectionInfo``)."""

    provider: str
    credential: dict[str, str]
    region: str
    zone: str = ""
    target_zone: str = ""
    connection_name: str = ""
    # the connection's request-limit policy (spider_core.limits.CallLimiter); drivers route CSP calls
    # through it. None = unlimited (a driver used outside Spider).
    limiter: Any = field(default=None, compare=False)

    def __repr__(self) -> str:  # never print credential values
        keys = sorted(self.credential)
        return (f"ConnectionInfo(provider={self.provider!r}, credential_keys={keys}, "
                f"region={self.region!r}, zone={self.zone!r}, connection_name={self.connection_name!r})")


# The child kinds ``DriverCapability.serialize_in_vpc`` may name (what ``spider_core.lockplan`` serialises).
SERIALIZE_IN_VPC_KINDS: tuple[str, ...] = ("subnet", "sg", "vm", "nlb")


@dataclass(frozen=True)
class DriverCapability:
    """CB-Spider's ``DriverCapabilityInfo``; field names map 1:1 onto its Go names in ``wire``."""

    zone_based_control: bool = False
    region_zone_handler: bool = False
    price_info_handler: bool = False
    image_handler: bool = False
    vmspec_handler: bool = False
    vpc_handler: bool = False
    security_handler: bool = False
    keypair_handler: bool = False
    vm_handler: bool = False
    disk_handler: bool = False
    myimage_handler: bool = False
    nlb_handler: bool = False
    cluster_handler: bool = False
    tag_handler: bool = False
    vpc_cidr: bool = False
    single_vpc: bool = False
    public_ip_handler: bool = False
    nic_handler: bool = False
    tag_support_resource_types: tuple[str, ...] = ()
    # Spider-side knob (not part of CB-Spider's record): wait for SSH on PublicIP:22 after VM start.
    probe_ssh_after_start: bool = False
    # Spider-side knob: child creates the cloud cannot take concurrently within one VPC, e.g.
    # ``{"sg": True}``. Those creates take their VPC's write lock instead of a shared one (CB-Spider's
    # serialisation, for this provider only; see ``spider_core.lockplan``). Keys: subnet, sg, vm, nlb.
    # Empty (everything parallel) unless the cloud's API is known to fail on such concurrent changes.
    serialize_in_vpc: Mapping[str, bool] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.serialize_in_vpc) - set(SERIALIZE_IN_VPC_KINDS))
        if unknown:
            raise ValueError(f"serialize_in_vpc knows {', '.join(SERIALIZE_IN_VPC_KINDS)}, not {', '.join(unknown)}")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# ------------------------------------------------------------------------------------------------
# Handlers


class RegionZoneHandler(ABC):
    @abstractmethod
    async def list_region_zone(self) -> list[RegionZoneInfo]: ...

    @abstractmethod
    async def get_region_zone(self, name: str) -> RegionZoneInfo: ...

    @abstractmethod
    async def list_org_region(self) -> Any:
        """The CSP's own region list, as raw JSON-able data."""

    @abstractmethod
    async def list_org_zone(self) -> Any: ...


class ImageHandler(ABC):
    @abstractmethod
    async def list_image(self) -> list[ImageInfo]: ...

    @abstractmethod
    async def get_image(self, iid: IID) -> ImageInfo:
        """``iid.name_id`` = ``iid.system_id`` = the image name or id the user gave."""

    async def check_windows_image(self, iid: IID) -> bool:
        image = await self.get_image(iid)
        return image.os_platform == "Windows"


class VMSpecHandler(ABC):
    @abstractmethod
    async def list_vm_spec(self) -> list[VMSpecInfo]: ...

    @abstractmethod
    async def get_vm_spec(self, name: str) -> VMSpecInfo: ...

    @abstractmethod
    async def list_org_vm_spec(self) -> Any: ...

    @abstractmethod
    async def get_org_vm_spec(self, name: str) -> Any: ...


class VPCHandler(ABC):
    @abstractmethod
    async def create_vpc(self, req: VPCReqInfo) -> VPCInfo: ...

    @abstractmethod
    async def list_vpc(self) -> list[VPCInfo]: ...

    @abstractmethod
    async def get_vpc(self, iid: IID) -> VPCInfo: ...

    @abstractmethod
    async def delete_vpc(self, iid: IID) -> bool: ...

    @abstractmethod
    async def add_subnet(self, vpc_iid: IID, subnet: SubnetInfo) -> VPCInfo: ...

    @abstractmethod
    async def remove_subnet(self, vpc_iid: IID, subnet_iid: IID) -> bool: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]:
        """Every VPC at the CSP (for /allvpc)."""


class SecurityHandler(ABC):
    @abstractmethod
    async def create_security(self, req: SecurityReqInfo) -> SecurityInfo: ...

    @abstractmethod
    async def list_security(self) -> list[SecurityInfo]: ...

    @abstractmethod
    async def get_security(self, iid: IID) -> SecurityInfo: ...

    @abstractmethod
    async def delete_security(self, iid: IID) -> bool: ...

    @abstractmethod
    async def add_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> SecurityInfo: ...

    @abstractmethod
    async def remove_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> bool: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class KeyPairHandler(ABC):
    @abstractmethod
    async def create_key(self, req: KeyPairReqInfo) -> KeyPairInfo: ...

    @abstractmethod
    async def list_key(self) -> list[KeyPairInfo]: ...

    @abstractmethod
    async def get_key(self, iid: IID) -> KeyPairInfo: ...

    @abstractmethod
    async def delete_key(self, iid: IID) -> bool: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class VMHandler(ABC):
    @abstractmethod
    async def start_vm(self, req: VMReqInfo) -> VMInfo: ...

    @abstractmethod
    async def control_vm(self, iid: IID, action: VMAction) -> VMStatus:
        """Returns the transitional status (Suspending, Resuming, Rebooting)."""

    @abstractmethod
    async def terminate_vm(self, iid: IID) -> VMStatus: ...

    @abstractmethod
    async def list_vm_status(self) -> list[VMStatusInfo]: ...

    @abstractmethod
    async def get_vm_status(self, iid: IID) -> VMStatus: ...

    @abstractmethod
    async def list_vm(self) -> list[VMInfo]: ...

    @abstractmethod
    async def get_vm(self, iid: IID) -> VMInfo: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class NLBHandler(ABC):
    @abstractmethod
    async def create_nlb(self, req: NLBReqInfo) -> NLBInfo: ...

    @abstractmethod
    async def list_nlb(self) -> list[NLBInfo]: ...

    @abstractmethod
    async def get_nlb(self, iid: IID) -> NLBInfo: ...

    @abstractmethod
    async def delete_nlb(self, iid: IID) -> bool: ...

    @abstractmethod
    async def add_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> VMGroupInfo: ...

    @abstractmethod
    async def remove_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> bool: ...

    @abstractmethod
    async def get_vm_group_health(self, nlb_iid: IID) -> HealthInfo: ...

    @abstractmethod
    async def change_listener(self, nlb_iid: IID, listener: ListenerInfo) -> ListenerInfo: ...

    @abstractmethod
    async def change_vm_group_info(self, nlb_iid: IID, vm_group: VMGroupInfo) -> VMGroupInfo: ...

    @abstractmethod
    async def change_health_checker_info(self, nlb_iid: IID,
                                         health_checker: HealthCheckerInfo) -> HealthCheckerInfo: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class DiskHandler(ABC):
    """Block volumes (CB-Spider's ``DiskHandler``). ``create_disk`` gets ``iid.name_id`` = spUUID, the
    zone (``''``: the connection's), the type (``''``: the cloud's default) and the size in GB
    (``''``: the cloud's default)."""

    @abstractmethod
    async def create_disk(self, req: DiskInfo) -> DiskInfo: ...

    @abstractmethod
    async def list_disk(self) -> list[DiskInfo]: ...

    @abstractmethod
    async def get_disk(self, iid: IID) -> DiskInfo: ...

    @abstractmethod
    async def change_disk_size(self, iid: IID, size: str) -> bool: ...

    @abstractmethod
    async def delete_disk(self, iid: IID) -> bool: ...

    @abstractmethod
    async def attach_disk(self, iid: IID, vm_iid: IID) -> DiskInfo: ...

    @abstractmethod
    async def detach_disk(self, iid: IID, vm_iid: IID) -> bool: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class MyImageHandler(ABC):
    """Machine images made from a VM (CB-Spider's ``MyImageHandler``)."""

    @abstractmethod
    async def snapshot_vm(self, req: MyImageInfo) -> MyImageInfo:
        """``req.iid.name_id`` = spUUID, ``req.source_vm`` = the VM's driver IID."""

    @abstractmethod
    async def list_my_image(self) -> list[MyImageInfo]: ...

    @abstractmethod
    async def get_my_image(self, iid: IID) -> MyImageInfo: ...

    @abstractmethod
    async def delete_my_image(self, iid: IID) -> bool: ...

    async def check_windows_image(self, iid: IID) -> bool:
        return False

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class TagHandler(ABC):
    """Tags on any taggable resource; ``res_type`` is CB-Spider's lowercase RSType word (``vpc``, ``vm``...)."""

    @abstractmethod
    async def add_tag(self, res_type: str, res_iid: IID, tag: KeyValue) -> KeyValue: ...

    @abstractmethod
    async def list_tag(self, res_type: str, res_iid: IID) -> list[KeyValue]: ...

    @abstractmethod
    async def get_tag(self, res_type: str, res_iid: IID, key: str) -> KeyValue: ...

    @abstractmethod
    async def remove_tag(self, res_type: str, res_iid: IID, key: str) -> bool: ...

    @abstractmethod
    async def find_tag(self, res_type: str, keyword: str) -> list[TagInfo]:
        """Resources whose tag key or value contains ``keyword`` (``''`` or ``*``: every tagged one);
        ``res_type`` ``all`` searches every type."""


class PublicIPHandler(ABC):
    @abstractmethod
    async def create_public_ip(self, req: PublicIPInfo) -> PublicIPInfo: ...

    @abstractmethod
    async def list_public_ip(self) -> list[PublicIPInfo]: ...

    @abstractmethod
    async def get_public_ip(self, iid: IID) -> PublicIPInfo: ...

    @abstractmethod
    async def delete_public_ip(self, iid: IID) -> bool: ...

    @abstractmethod
    async def associate_public_ip(self, iid: IID, vm_iid: IID, nic_iid: IID, private_ip: str) -> PublicIPInfo:
        """``vm_iid`` or ``nic_iid`` (+ optional private IP on that NIC) say where the address goes;
        a VM alone means its primary interface."""

    @abstractmethod
    async def disassociate_public_ip(self, iid: IID) -> bool: ...

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class NICHandler(ABC):
    @abstractmethod
    async def create_nic(self, req: NICReqInfo) -> NetworkInterfaceInfo: ...

    @abstractmethod
    async def list_nic(self) -> list[NetworkInterfaceInfo]: ...

    @abstractmethod
    async def get_nic(self, iid: IID) -> NetworkInterfaceInfo: ...

    @abstractmethod
    async def delete_nic(self, iid: IID) -> bool: ...

    @abstractmethod
    async def attach_nic(self, iid: IID, vm_iid: IID) -> NetworkInterfaceInfo: ...

    @abstractmethod
    async def detach_nic(self, iid: IID) -> bool: ...

    @abstractmethod
    async def add_private_ip(self, iid: IID, private_ip: str) -> NetworkInterfaceInfo:
        """Add a secondary private IP (``''``: the cloud picks one)."""

    @abstractmethod
    async def remove_private_ip(self, iid: IID, private_ip: str) -> bool: ...

    @abstractmethod
    async def get_nic_os_config_script(self, iid: IID) -> str:
        """A bash script to run in the guest after an attach ('' when the cloud needs none, as AWS)."""

    @abstractmethod
    async def list_iid(self) -> list[IID]: ...


class PriceInfoHandler(ABC):
    @abstractmethod
    async def list_product_family(self, region: str) -> list[str]: ...

    @abstractmethod
    async def list_vm_price(self, region: str) -> list[VMPrice]:
        """Every on-demand VM price of ``region``; Spider filters and shapes the answer."""


class AnyCallHandler(ABC):
    @abstractmethod
    async def any_call(self, call: AnyCallInfo) -> AnyCallInfo: ...


# ------------------------------------------------------------------------------------------------
# Connection and driver


@dataclass
class CloudConnection:
    """The handlers one connection offers; ``None`` where the driver has none.

    Spider opens one per connection config and keeps it (SDK clients are expensive to build);
    ``close`` is called when the connection config changes or the server stops.
    """

    region_zone: RegionZoneHandler | None = None
    image: ImageHandler | None = None
    vmspec: VMSpecHandler | None = None
    vpc: VPCHandler | None = None
    security: SecurityHandler | None = None
    keypair: KeyPairHandler | None = None
    vm: VMHandler | None = None
    nlb: NLBHandler | None = None
    disk: DiskHandler | None = None
    myimage: MyImageHandler | None = None
    tag: TagHandler | None = None
    publicip: PublicIPHandler | None = None
    nic: NICHandler | None = None
    price_info: PriceInfoHandler | None = None
    any_call: AnyCallHandler | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        return None


class CloudDriver(ABC):
    """A cloud provider. Registered by ProviderName through the ``spidertwin.drivers`` entry points."""

    provider_name: str = ""

    @abstractmethod
    def capability(self) -> DriverCapability: ...

    @abstractmethod
    async def connect(self, info: ConnectionInfo) -> CloudConnection: ...

    def credential_keys(self) -> list[str]:
        """Keys a credential for this provider must carry (checked case-insensitively)."""
        return []

    def region_keys(self) -> list[str]:
        return ["Region"]

    def id_max_length(self, resource_type: str) -> int:
        """The CSP's longest id for a resource type (``vpc``, ``subnet``, ``sg``, ``keypair``, ``vm``,
        ``nlb``); Spider sizes generated spUUIDs to fit (contract 3.2). 0 means no limit."""
        return 255

    async def prepare(self) -> None:
        """Get ready to serve (import an SDK, start a backend) so the first request doesn't pay for it.

        Spider calls it in the background at start for every registered provider and whenever a driver
        of this provider is registered. Failures are only logged: the first request reports them.
        """
        return None

    async def close(self) -> None:
        """Release process-wide resources (thread pools, in-process backends)."""
        return None


class PooledDriver(CloudDriver):
    """A driver on a blocking SDK: its calls run in one bounded thread pool, created on first use and
    shut down by ``close``. The pool bounds how many CSP calls of all this provider's connections can
    wait on the network at once; ``SPIDER_DRIVER_THREADS`` overrides each provider's default."""

    MAX_WORKERS = 32

    def __init__(self, max_workers: int | None = None) -> None:
        env = os.environ.get("SPIDER_DRIVER_THREADS", "").strip()
        self._max_workers = max_workers or (int(env) if env.isdigit() and int(env) > 0 else self.MAX_WORKERS)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._max_workers,
                                                    thread_name_prefix=self.provider_name.lower() or "driver")
            return self._executor

    async def close(self) -> None:
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)
