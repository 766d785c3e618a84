"""``MockDriver``: CB-Spider's MOCK provider, implemented by the AWS driver's handlers on moto.

moto runs in one dedicated worker process by default (``mock_driver/moto_worker.py``), or in the server
process with ``SPIDERTWIN_MOTO_INPROCESS=1`` (see ``mock_driver/backends.py``).

Differences from CB-Spider's Go mock that follow from running on a real cloud model (moto):
CSP ids are AWS ids (``vpc-…``, ``sg-…``, ``i-…``; key pairs use their name), a new security group
carries EC2's default outbound allow-all rule, VMs get real private/public IPs, NLB health is what the
cloud reports, and every call is written to the call log with CloudOS ``MOCK``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mock_driver.faults import FaultInjectingSession
from mock_driver.backends import account_id, get_backend, shutdown_backend
from mock_driver.profile import MockProfile, MockRegion, load_profile
from spider_core.drivers.aws.connection import build_connection
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.base import (AnyCallHandler, CloudConnection, CloudDriver, ConnectionInfo,
                                      DriverCapability, ImageHandler, RegionZoneHandler, VMSpecHandler)
from spider_core.drivers.price_catalog import CatalogPriceHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, AnyCallInfo, ImageInfo, KeyValue, RegionZoneInfo, VMSpecInfo

TAG_TYPES = ("vpc", "subnet", "sg", "keypair", "vm", "nlb", "disk", "myimage", "cluster", "publicip", "nic")
# CB-Spider's MOCK disk types (its cloudos meta) on EBS volume types, and back
DISK_TYPES = {"SSD": "gp3", "HDD": "standard", "MEM": "io2"}


def _credential(credential: dict[str, str], key: str) -> str:
    return next((v for k, v in credential.items() if k.lower() == key.lower()), "")


class MockView(AwsView):
    """Reports MOCK names (regions, zones, images, specs) for the AWS handlers."""

    def __init__(self, profile: MockProfile, region: MockRegion, images: dict[str, str]) -> None:
        super().__init__(region.aws_region, "")
        self.profile = profile
        self.mock_region = region
        self.region = region.name
        self.zone = ""
        self.images = images  # mock image name -> AMI id
        self._by_ami = {v: k for k, v in images.items()}

    default_disk_type = "SSD"
    default_disk_size = "512"  # CB-Spider's mock default

    def disk_type_in(self, disk_type: str) -> str:
        wanted = (disk_type or self.default_disk_type).upper()
        if wanted not in DISK_TYPES:
            raise DriverError(f"Disktype : {disk_type} is not valid (MOCK: {', '.join(DISK_TYPES)})")
        return DISK_TYPES[wanted]

    def disk_type_out(self, volume_type: str) -> str:
        return next((k for k, v in DISK_TYPES.items() if v == volume_type), volume_type)

    def zone_in(self, zone: str) -> str:
        """A MOCK zone -> its AWS zone. No zone: the region's first zone, so placement is deterministic
        (moto would pick any of six zones, which have no MOCK name). An unknown zone is an error, as on EC2."""
        if not zone:
            return self.mock_region.aws_zone(self.mock_region.zones[0]) if self.mock_region.zones else ""
        aws = self.mock_region.aws_zone(zone)
        if not aws:
            raise DriverError(f"InvalidParameterValue: '{zone}' is not a zone of region "
                              f"'{self.mock_region.name}' (its zones: {', '.join(self.mock_region.zones)})")
        return aws

    def zone_out(self, az: str) -> str:
        return self.mock_region.mock_zone(az)

    async def image_id(self, iid: IID) -> str:
        name = iid.name_id or iid.system_id
        if self.profile.image(name) is None or name not in self.images:
            raise DriverNotFound(f"{name} image does not exist!!")
        return self.images[name]

    def image_iid(self, ami_id: str) -> IID:
        name = self._by_ami.get(ami_id, ami_id)
        return IID(name, name)

    async def instance_type(self, spec_name: str) -> str:
        if spec_name not in self.profile.instance_types:
            raise DriverNotFound(f"{spec_name} VMSpec does not exist!!")
        return self.profile.instance_types[spec_name]

    def spec_name(self, instance_type: str) -> str:
        return self.profile.spec_for_type(instance_type)


def _spec_json(spec: VMSpecInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"Region": spec.region, "Name": spec.name,
                           "VCpu": {"Count": spec.vcpu_count, "ClockGHz": spec.vcpu_clock_ghz},
                           "MemSizeMiB": spec.mem_size_mib, "DiskSizeGB": spec.disk_size_gb}
    if spec.gpus:
        out["Gpu"] = [{"Count": g.count, "Mfr": g.mfr, "Model": g.model, "MemSizeGB": g.mem_size_gb,
                       "TotalMemSizeGB": g.total_mem_size_gb} for g in spec.gpus]
    return out


def _region_json(rz: RegionZoneInfo) -> dict[str, Any]:
    return {"Name": rz.name, "DisplayName": rz.display_name, "CSPDisplayName": rz.csp_display_name,
            "ZoneList": [{"Name": z.name, "DisplayName": z.display_name, "CSPDisplayName": z.csp_display_name,
                          "Status": z.status} for z in rz.zones]}


class MockImageHandler(ImageHandler):
    def __init__(self, profile: MockProfile) -> None:
        self.profile = profile

    async def list_image(self) -> list[ImageInfo]:
        return list(self.profile.images)

    async def get_image(self, iid: IID) -> ImageInfo:
        name = iid.name_id or iid.system_id
        image = self.profile.image(name)
        if image is None:
            raise DriverNotFound(f"{name} image does not exist!!")
        return image

    async def check_windows_image(self, iid: IID) -> bool:
        # CB-Spider's mock answers like this; Spider ignores the error and treats the image as Linux.
        raise DriverError("Mock Driver: CheckWindowsImage() is not supported yet!!")


class MockVmSpecHandler(VMSpecHandler):
    def __init__(self, profile: MockProfile) -> None:
        self.profile = profile

    async def list_vm_spec(self) -> list[VMSpecInfo]:
        return list(self.profile.specs)

    async def get_vm_spec(self, name: str) -> VMSpecInfo:
        spec = self.profile.spec(name)
        if spec is None:
            raise DriverNotFound(f"{name} VMSpec does not exist!!")
        return spec

    async def list_org_vm_spec(self) -> Any:
        return [_spec_json(s) for s in self.profile.specs]

    async def get_org_vm_spec(self, name: str) -> Any:
        return _spec_json(await self.get_vm_spec(name))


class MockRegionZoneHandler(RegionZoneHandler):
    def __init__(self, profile: MockProfile, region: str) -> None:
        self.profile = profile
        self.region = region

    async def list_region_zone(self) -> list[RegionZoneInfo]:
        return [r.info() for r in self.profile.regions]

    async def get_region_zone(self, name: str) -> RegionZoneInfo:
        region = self.profile.region(name)
        if region is None:
            raise DriverNotFound(f"{name} region does not exist!!")
        return region.info()

    async def list_org_region(self) -> Any:
        return [_region_json(r.info()) for r in self.profile.regions]

    async def list_org_zone(self) -> Any:
        region = self.profile.region(self.region)
        if region is None:
            raise DriverError(f"{self.region} The original zone list does not exist!!")
        return _region_json(region.info())


class MockAnyCallHandler(AnyCallHandler):
    def __init__(self, conn: CloudConnection) -> None:
        self.conn = conn

    async def any_call(self, call: AnyCallInfo) -> AnyCallInfo:
        if call.fid != "countAll":
            raise DriverError(f"Mock Driver: {call.fid} Function is not implemented!")
        if not call.inputs:
            raise DriverError("Mock Driver: countAll's Argument is empty!")
        kv = call.inputs[0]
        if kv.key != "rsType":
            raise DriverError("Mock Driver: countAll's Argument is not 'rsType'!")
        value = kv.value.strip().lower()
        if value == "vpc":
            count = len(await self.conn.vpc.list_iid())  # type: ignore[union-attr]
        elif value == "sg":
            count = len(await self.conn.security.list_iid())  # type: ignore[union-attr]
        else:
            raise DriverError(f"Mock Driver: countAll's rsType '{kv.value}' is not supported (vpc or sg)!")
        return AnyCallInfo(fid=call.fid, inputs=list(call.inputs),
                           outputs=list(call.outputs) + [KeyValue("Count", str(count))])


class MockDriver(CloudDriver):
    provider_name = "MOCK"

    def __init__(self, profile_path: str | None = None) -> None:
        self._profile_path = profile_path

    def capability(self) -> DriverCapability:
        return DriverCapability(zone_based_control=True, region_zone_handler=True, image_handler=True,
                                vmspec_handler=True, vpc_handler=True, security_handler=True,
                                keypair_handler=True, vm_handler=True, nlb_handler=True, tag_handler=True,
                                vpc_cidr=True, tag_support_resource_types=TAG_TYPES, disk_handler=True,
                                myimage_handler=True, public_ip_handler=True, nic_handler=True,
                                price_info_handler=True)

    def credential_keys(self) -> list[str]:
        return ["MockName"]

    def region_keys(self) -> list[str]:
        return ["Region"]

    def id_max_length(self, resource_type: str) -> int:
        # the MOCK runs on the AWS model: ELBv2 names are limited to 32 characters
        return 32 if resource_type.lower() == "nlb" else 255

    @staticmethod
    def backend() -> Any:
        """The process's moto backend: a worker process (default) or in-process
        (``SPIDERTWIN_MOTO_INPROCESS=1``); see ``mock_driver/backends.py``."""
        return get_backend()

    keep_backend_on_close = False
    """Tests set this: many short-lived Spider contexts share one worker (as they shared in-process moto)."""

    async def prepare(self) -> None:
        """Start moto (its worker process, or in-process moto) now rather than on the first request."""
        def start() -> None:
            backend = self.backend()
            status = getattr(backend, "status", None)
            if status is not None:
                status()  # the worker answers once moto is imported and ready
        await asyncio.get_running_loop().run_in_executor(None, start)

    async def close(self) -> None:
        """Stop the moto worker (the MOCK cloud state is lost, as on a restart)."""
        if not MockDriver.keep_backend_on_close:
            await asyncio.get_running_loop().run_in_executor(None, shutdown_backend)

    async def connect(self, info: ConnectionInfo) -> CloudConnection:
        mock_name = _credential(info.credential, "MockName")
        if not mock_name:
            raise DriverError("MOCK credential needs MockName")
        profile = load_profile(self._profile_path)
        region = profile.region(info.region or "default")
        if region is None:
            raise DriverError(f"{info.region} region does not exist!!")
        backend = self.backend()
        account = account_id(mock_name)
        names = [i.iid.name_id for i in profile.images]
        loop = asyncio.get_running_loop()
        images = await loop.run_in_executor(backend.executor, backend.ensure_images, account,
                                            region.aws_region, names)
        session = FaultInjectingSession(client_factory=lambda svc: backend.client(account, region.aws_region, svc),
                                        executor=backend.executor, cloud_os="MOCK",
                                        region_zone=f"{region.name}/{info.zone}", connection=info.connection_name,
                                        limiter=info.limiter, mock_name=mock_name, region=region.name)
        view = MockView(profile, region, images)
        specs = MockVmSpecHandler(profile)
        conn = build_connection(session, view, include_default=False, max_inflight=1,
                                region_zone=MockRegionZoneHandler(profile, region.name),
                                image=MockImageHandler(profile), vmspec=specs,
                                price_info=CatalogPriceHandler("MOCK", region.name, specs))
        conn.any_call = MockAnyCallHandler(conn)
        conn.extra["mock_name"] = mock_name
        conn.extra["account"] = account
        return conn
