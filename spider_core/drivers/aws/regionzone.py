"""Region/zone handler: describe_regions + describe_availability_zones."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_REGIONZONE
from spider_core.drivers.aws.session import AwsSession
from spider_core.drivers.base import RegionZoneHandler
from spider_core.errors import DriverNotFound
from spider_core.model import RegionZoneInfo, ZoneInfo, ZoneStatus

_ZONE_STATUS = {"available": ZoneStatus.AVAILABLE.value, "impaired": ZoneStatus.UNAVAILABLE.value,
                "unavailable": ZoneStatus.UNAVAILABLE.value, "information": ZoneStatus.AVAILABLE.value}


class AwsRegionZoneHandler(RegionZoneHandler):
    def __init__(self, session: AwsSession, region: str, session_for_region: Any = None) -> None:
        self.s = session
        self.region = region
        self._for_region = session_for_region  # callable(region) -> AwsSession, for other regions' zones

    async def _zones(self, region: str) -> list[ZoneInfo]:
        s = self._for_region(region) if self._for_region and region != self.region else self.s
        zones = (await s.ec2(RT_REGIONZONE, region, "describe_availability_zones"))["AvailabilityZones"]
        return [ZoneInfo(name=z["ZoneName"], display_name=z["ZoneName"], csp_display_name=z["ZoneName"],
                         status=_ZONE_STATUS.get(z.get("State", ""), ZoneStatus.NOT_SUPPORTED.value))
                for z in zones]

    async def list_region_zone(self) -> list[RegionZoneInfo]:
        regions = (await self.s.ec2(RT_REGIONZONE, "", "describe_regions"))["Regions"]
        out = []
        for r in regions:
            name = r["RegionName"]
            out.append(RegionZoneInfo(name=name, display_name=name, csp_display_name=name,
                                      zones=await self._zones(name)))
        return out

    async def get_region_zone(self, name: str) -> RegionZoneInfo:
        regions = (await self.s.ec2(RT_REGIONZONE, name, "describe_regions", RegionNames=[name]))["Regions"]
        if not regions:
            raise DriverNotFound(f"{name} region does not exist")
        return RegionZoneInfo(name=name, display_name=name, csp_display_name=name, zones=await self._zones(name))

    async def list_org_region(self) -> Any:
        out = await self.s.ec2(RT_REGIONZONE, "", "describe_regions")
        out.pop("ResponseMetadata", None)
        return out

    async def list_org_zone(self) -> Any:
        out = await self.s.ec2(RT_REGIONZONE, "", "describe_availability_zones")
        out.pop("ResponseMetadata", None)
        return out
