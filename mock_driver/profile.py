"""The MOCK catalogue (``profile.yaml``): images, specs, regions/zones and their AWS mapping."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from spider_core.model import IID, GpuInfo, ImageInfo, RegionZoneInfo, VMSpecInfo, ZoneInfo, ZoneStatus

PROFILE_PATH = Path(__file__).with_name("profile.yaml")
_STATUS = {"A": ZoneStatus.AVAILABLE.value, "U": ZoneStatus.UNAVAILABLE.value,
           "NS": ZoneStatus.NOT_SUPPORTED.value}
ZONE_LETTERS = "abcdefgh"


@dataclass
class MockRegion:
    name: str
    display: str
    aws_region: str
    zone_status: list[str]

    @property
    def zones(self) -> list[str]:
        return [f"{self.name}-z{i + 1}" for i in range(len(self.zone_status))]

    def aws_zone(self, zone: str) -> str:
        """``default-z2`` -> ``us-east-1b``; '' for an unknown zone."""
        if zone in self.zones:
            return self.aws_region + ZONE_LETTERS[self.zones.index(zone)]
        return ""

    def mock_zone(self, az: str) -> str:
        if az.startswith(self.aws_region):
            letter = az[len(self.aws_region):]
            if letter and letter in ZONE_LETTERS and ZONE_LETTERS.index(letter) < len(self.zones):
                return self.zones[ZONE_LETTERS.index(letter)]
        return az

    def info(self) -> RegionZoneInfo:
        disp = f"{self.display}, {self.display} Region"
        zones = [ZoneInfo(name=z, display_name=f"{self.display} Zone {i + 1}, {self.display}",
                          csp_display_name=f"{self.display} Zone {i + 1}, {self.display}",
                          status=_STATUS.get(st, ZoneStatus.NOT_SUPPORTED.value))
                 for i, (z, st) in enumerate(zip(self.zones, self.zone_status))]
        return RegionZoneInfo(name=self.name, display_name=disp, csp_display_name=disp, zones=zones)


@dataclass
class MockProfile:
    images: list[ImageInfo] = field(default_factory=list)
    specs: list[VMSpecInfo] = field(default_factory=list)
    instance_types: dict[str, str] = field(default_factory=dict)  # spec name -> instance type
    regions: list[MockRegion] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def image(self, name: str) -> ImageInfo | None:
        return next((i for i in self.images if i.iid.name_id == name), None)

    def spec(self, name: str) -> VMSpecInfo | None:
        return next((s for s in self.specs if s.name == name), None)

    def spec_for_type(self, instance_type: str) -> str:
        for name, it in self.instance_types.items():
            if it == instance_type:
                return name
        return instance_type

    def region(self, name: str) -> MockRegion | None:
        return next((r for r in self.regions if r.name == name), None)


def parse(data: dict[str, Any]) -> MockProfile:
    images = [ImageInfo(iid=IID(i["id"], i["id"]), name=i["name"], os_architecture=i["arch"],
                        os_platform=i["platform"], os_distribution=i["distribution"],
                        os_disk_type=i["disk_type"], os_disk_size_gb=str(i["disk_size_gb"]),
                        image_status=i["status"]) for i in data.get("images", [])]
    region = data.get("spec_region", "common-region")
    specs, types = [], {}
    for s in data.get("specs", []):
        specs.append(VMSpecInfo(region=region, name=s["name"], vcpu_count=str(s["vcpu"]["count"]),
                                vcpu_clock_ghz=str(s["vcpu"].get("clock_ghz", "")),
                                mem_size_mib=str(s["mem_size_mib"]), disk_size_gb=str(s.get("disk_size_gb", "-1")),
                                gpus=[GpuInfo(count=str(g["count"]), mfr=g.get("mfr", ""), model=g.get("model", ""),
                                              mem_size_gb=str(g.get("mem_size_gb", "")),
                                              total_mem_size_gb=str(g.get("total_mem_size_gb", "")))
                                      for g in s.get("gpus", []) or []]))
        types[s["name"]] = s["instance_type"]
    regions = [MockRegion(r["name"], r["display"], r["aws_region"], list(r["zones"]))
               for r in data.get("regions", [])]
    return MockProfile(images=images, specs=specs, instance_types=types, regions=regions, raw=data)


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> MockProfile:
    with open(path, encoding="utf-8") as fh:
        return parse(yaml.safe_load(fh) or {})


def load_profile(path: str | os.PathLike | None = None) -> MockProfile:
    """The profile at ``path`` (default: ``$SPIDER_MOCK_PROFILE`` or the bundled profile.yaml)."""
    p = Path(path or os.environ.get("SPIDER_MOCK_PROFILE") or PROFILE_PATH)
    return _load(str(p), p.stat().st_mtime)
