"""VPC and subnet handler (EC2 VPC API)."""

from __future__ import annotations

from typing import Any

from spider_core.drivers.coalesce import Coalescer
from spider_core.calllog import RT_VPC
from spider_core.drivers.aws.session import AwsSession, name_tag, tag_spec, user_tags
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.base import VPCHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, SubnetInfo, VPCInfo, VPCReqInfo

DEFAULT_VPC_CIDR = "10.0.0.0/16"


def vpc_not_found(vpc_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidVpcID.NotFound: The vpc ID '{vpc_id}' does not exist")


class AwsVpcHandler(VPCHandler):
    def __init__(self, session: AwsSession, view: AwsView, *, include_default: bool = True,
                 max_inflight: int = 1) -> None:
        self.s = session
        self.view = view
        self.include_default = include_default
        self._get = Coalescer(self._fetch, vpc_not_found, max_inflight=max_inflight)

    # ---- mapping
    def _subnet_info(self, sn: dict[str, Any]) -> SubnetInfo:
        return SubnetInfo(iid=IID(name_tag(sn.get("Tags")), sn["SubnetId"]),
                          zone=self.view.zone_out(sn.get("AvailabilityZone", "")),
                          ipv4_cidr=sn.get("CidrBlock", ""), tags=user_tags(sn.get("Tags")))

    def _vpc_info(self, vpc: dict[str, Any], subnets: list[dict[str, Any]]) -> VPCInfo:
        return VPCInfo(iid=IID(name_tag(vpc.get("Tags")), vpc["VpcId"]),
                       ipv4_cidr=vpc.get("CidrBlock", ""),
                       subnets=[self._subnet_info(sn) for sn in subnets],
                       tags=user_tags(vpc.get("Tags")))

    async def _create_subnet(self, vpc_id: str, subnet: SubnetInfo) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"VpcId": vpc_id, "CidrBlock": subnet.ipv4_cidr,
                                  "TagSpecifications": tag_spec("subnet", subnet.iid.name_id, subnet.tags)}
        az = self.view.zone_in(subnet.zone)
        if az:
            kwargs["AvailabilityZone"] = az
        out = await self.s.ec2(RT_VPC, subnet.iid.name_id, "create_subnet", **kwargs)
        return out["Subnet"]

    # ---- handler
    async def create_vpc(self, req: VPCReqInfo) -> VPCInfo:
        out = await self.s.ec2(RT_VPC, req.iid.name_id, "create_vpc",
                               CidrBlock=req.ipv4_cidr or DEFAULT_VPC_CIDR,
                               TagSpecifications=tag_spec("vpc", req.iid.name_id, req.tags))
        vpc = out["Vpc"]
        subnets: list[dict[str, Any]] = []
        try:
            for sn in req.subnets:
                subnets.append(await self._create_subnet(vpc["VpcId"], sn))
        except DriverError:
            await self._cleanup(vpc["VpcId"], [s["SubnetId"] for s in subnets], req.iid.name_id)
            raise
        return self._vpc_info(vpc, subnets)

    async def _cleanup(self, vpc_id: str, subnet_ids: list[str], name: str) -> None:
        for sid in subnet_ids:
            try:
                await self.s.ec2(RT_VPC, name, "delete_subnet", SubnetId=sid)
            except DriverError:
                pass
        try:
            await self.s.ec2(RT_VPC, name, "delete_vpc", VpcId=vpc_id)
        except DriverError:
            pass

    async def _fetch(self, vpc_ids: list[str]) -> dict[str, object]:
        name = vpc_ids[0] if len(vpc_ids) == 1 else f"{len(vpc_ids)} VPCs"
        # Filters (not VpcIds): an unknown id must not fail the whole batch.
        vpcs = (await self.s.ec2(RT_VPC, name, "describe_vpcs",
                                 Filters=[{"Name": "vpc-id", "Values": vpc_ids}]))["Vpcs"]
        if not vpcs:
            return {}
        found = [v["VpcId"] for v in vpcs]
        subnets = (await self.s.ec2(RT_VPC, name, "describe_subnets",
                                    Filters=[{"Name": "vpc-id", "Values": found}]))["Subnets"]
        by_vpc: dict[str, list[dict[str, Any]]] = {}
        for sn in subnets:
            by_vpc.setdefault(sn["VpcId"], []).append(sn)
        return {v["VpcId"]: self._vpc_info(v, by_vpc.get(v["VpcId"], [])) for v in vpcs}

    async def get_vpc(self, iid: IID) -> VPCInfo:
        if not iid.system_id:
            raise vpc_not_found(iid.name_id)
        return await self._get.get(iid.system_id)

    async def _all_vpcs(self) -> list[dict[str, Any]]:
        out = await self.s.ec2(RT_VPC, "", "describe_vpcs")
        return [v for v in out["Vpcs"] if self.include_default or not v.get("IsDefault")]

    async def list_vpc(self) -> list[VPCInfo]:
        vpcs = await self._all_vpcs()
        if not vpcs:
            return []
        subnets = (await self.s.ec2(RT_VPC, "", "describe_subnets"))["Subnets"]
        by_vpc: dict[str, list[dict[str, Any]]] = {}
        for sn in subnets:
            by_vpc.setdefault(sn["VpcId"], []).append(sn)
        return [self._vpc_info(v, by_vpc.get(v["VpcId"], [])) for v in vpcs]

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(v.get("Tags")), v["VpcId"]) for v in await self._all_vpcs()]

    async def delete_vpc(self, iid: IID) -> bool:
        vpc_id = iid.system_id
        if not vpc_id:
            raise vpc_not_found(iid.name_id)
        subnets = (await self.s.ec2(RT_VPC, iid.name_id, "describe_subnets",
                                    Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]))["Subnets"]
        for sn in subnets:
            try:
                await self.s.ec2(RT_VPC, iid.name_id, "delete_subnet", SubnetId=sn["SubnetId"])
            except DriverNotFound:
                pass
        await self.s.ec2(RT_VPC, iid.name_id, "delete_vpc", VpcId=vpc_id)
        return True

    async def add_subnet(self, vpc_iid: IID, subnet: SubnetInfo) -> VPCInfo:
        if not vpc_iid.system_id:
            raise vpc_not_found(vpc_iid.name_id)
        await self._create_subnet(vpc_iid.system_id, subnet)
        return await self.get_vpc(vpc_iid)

    async def remove_subnet(self, vpc_iid: IID, subnet_iid: IID) -> bool:
        subnet_id = subnet_iid.system_id
        if not subnet_id:
            found = (await self.s.ec2(RT_VPC, subnet_iid.name_id, "describe_subnets", Filters=[
                {"Name": "tag:Name", "Values": [subnet_iid.name_id]},
                {"Name": "vpc-id", "Values": [vpc_iid.system_id]}]))["Subnets"]
            if not found:
                raise DriverNotFound(f"InvalidSubnetID.NotFound: The subnet '{subnet_iid.name_id}' "
                                     "does not exist")
            subnet_id = found[0]["SubnetId"]
        await self.s.ec2(RT_VPC, subnet_iid.name_id, "delete_subnet", SubnetId=subnet_id)
        return True
