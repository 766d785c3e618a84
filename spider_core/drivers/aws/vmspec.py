"""VM spec handler: describe_instance_types -> vCPU / memory / GPU as strings."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_SPEC
from spider_core.drivers.aws.session import AwsSession, paged
from spider_core.drivers.base import VMSpecHandler
from spider_core.errors import DriverNotFound
from spider_core.model import GpuInfo, VMSpecInfo


def spec_info(region: str, it: dict[str, Any]) -> VMSpecInfo:
    vcpu = it.get("VCpuInfo", {})
    clock = it.get("ProcessorInfo", {}).get("SustainedClockSpeedInGhz")
    gpus = [GpuInfo(count=str(g.get("Count", "-1")), mfr=str(g.get("Manufacturer", "")), model=str(g.get("Name", "")),
                    mem_size_gb=str(round(g.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024)),
                    total_mem_size_gb=str(round(it.get("GpuInfo", {}).get("TotalGpuMemoryInMiB", 0) / 1024)))
            for g in it.get("GpuInfo", {}).get("Gpus", [])]
    disk = it.get("InstanceStorageInfo", {}).get("TotalSizeInGB")
    return VMSpecInfo(region=region, name=it["InstanceType"], vcpu_count=str(vcpu.get("DefaultVCpus", "-1")),
                      vcpu_clock_ghz=str(clock) if clock else "",
                      mem_size_mib=str(it.get("MemoryInfo", {}).get("SizeInMiB", "-1")),
                      disk_size_gb=str(disk) if disk else "-1", gpus=gpus)


class AwsVmSpecHandler(VMSpecHandler):
    def __init__(self, session: AwsSession, region: str) -> None:
        self.s = session
        self.region = region

    async def list_vm_spec(self) -> list[VMSpecInfo]:
        types = await paged(self.s, RT_SPEC, "", "ec2", "describe_instance_types", "InstanceTypes")
        return [spec_info(self.region, t) for t in types]

    async def get_vm_spec(self, name: str) -> VMSpecInfo:
        from spider_core.errors import DriverError
        try:
            out = await self.s.ec2(RT_SPEC, name, "describe_instance_types", InstanceTypes=[name])
        except DriverError as exc:
            if "InvalidInstanceType" in str(exc):
                raise DriverNotFound(f"{name} VMSpec does not exist: {exc}") from None
            raise
        if not out["InstanceTypes"]:
            raise DriverNotFound(f"{name} VMSpec does not exist")
        return spec_info(self.region, out["InstanceTypes"][0])

    async def list_org_vm_spec(self) -> Any:
        return {"InstanceTypes": await paged(self.s, RT_SPEC, "", "ec2", "describe_instance_types",
                                             "InstanceTypes")}

    async def get_org_vm_spec(self, name: str) -> Any:
        out = await self.s.ec2(RT_SPEC, name, "describe_instance_types", InstanceTypes=[name])
        out.pop("ResponseMetadata", None)
        return out
