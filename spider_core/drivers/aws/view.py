"""How a connection sees the cloud: region/zone names, image and spec names <-> AWS ids.

The AWS driver reports AWS names as they are (``AwsView``). The MOCK provider runs the same handlers on
moto but reports CB-Spider's MOCK names (regions ``default``…, zones ``default-z1``…, images
``mock-vmimage-01``…, specs ``mock-vmspec-01``…) through its own view.
"""

from __future__ import annotations

from spider_core.model import IID


class AwsView:
    def __init__(self, region: str, zone: str = "") -> None:
        self.aws_region = region
        self.aws_zone = zone
        self.region = region  # reported
        self.zone = zone  # reported

    # ---- zones
    def zone_in(self, zone: str) -> str:
        """Requested zone -> AWS availability zone ('' lets AWS choose)."""
        return zone or self.aws_zone

    def zone_out(self, az: str) -> str:
        return az or ""

    # ---- images
    async def image_id(self, iid: IID) -> str:
        return iid.system_id or iid.name_id

    def image_iid(self, ami_id: str) -> IID:
        return IID(ami_id, ami_id)

    # ---- disks (AWS: EBS volume types as they are; CB-Spider's AWS default is the first root disk type
    # of its meta, "standard", 50 GB)
    default_disk_type = "standard"
    default_disk_size = "50"

    def disk_type_in(self, disk_type: str) -> str:
        return disk_type or self.default_disk_type

    def disk_type_out(self, volume_type: str) -> str:
        return volume_type

    # ---- specs
    async def instance_type(self, spec_name: str) -> str:
        return spec_name

    def spec_name(self, instance_type: str) -> str:
        return instance_type
