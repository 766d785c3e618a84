"""Tag handler: EC2 tags (create_tags, describe_tags, delete_tags); NLBs through ELBv2's tag calls.

The ``Name`` tag carries the spUUID Spider gave the resource, so it is not shown as a user tag and a
user tag cannot replace it."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_TAG
from spider_core.drivers.aws.session import AwsSession, paged
from spider_core.drivers.base import TagHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, TagInfo

# CB-Spider RSType -> EC2 describe_tags resource-type
EC2_TYPES = {"vpc": "vpc", "subnet": "subnet", "sg": "security-group", "keypair": "key-pair", "vm": "instance",
             "disk": "volume", "myimage": "image", "publicip": "elastic-ip", "nic": "network-interface"}
_BY_EC2 = {v: k for k, v in EC2_TYPES.items()}
RESERVED = "Name"


def tag_not_found(key: str, resource: str) -> DriverNotFound:
    return DriverNotFound(f"tag key '{key}' does not exist on resource '{resource}'")


class AwsTagHandler(TagHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    async def _resource_id(self, res_type: str, iid: IID) -> str:
        """The id EC2 tags by: key pairs are known by name to Spider, tagged by KeyPairId."""
        if res_type == "keypair":
            out = await self.s.ec2(RT_TAG, iid.system_id, "describe_key_pairs", KeyNames=[iid.system_id])
            return out["KeyPairs"][0]["KeyPairId"]
        if res_type not in EC2_TYPES and res_type != "nlb":
            raise DriverError(f"{res_type} is not supported Resource!!")
        return iid.system_id

    async def _tags(self, res_type: str, iid: IID) -> list[KeyValue]:
        rid = await self._resource_id(res_type, iid)
        if res_type == "nlb":
            out = await self.s.elbv2(iid.name_id, "describe_tags", ResourceArns=[rid])
            items = out["TagDescriptions"][0]["Tags"] if out.get("TagDescriptions") else []
        else:
            items = await paged(self.s, RT_TAG, rid, "ec2", "describe_tags", "Tags",
                                Filters=[{"Name": "resource-id", "Values": [rid]}])
        return [KeyValue(t["Key"], t.get("Value", "")) for t in items if t["Key"] != RESERVED]

    async def add_tag(self, res_type: str, res_iid: IID, tag: KeyValue) -> KeyValue:
        if tag.key == RESERVED:
            raise DriverError(f"tag key '{RESERVED}' is reserved: it holds the resource's Spider id")
        rid = await self._resource_id(res_type, res_iid)
        if res_type == "nlb":
            await self.s.elbv2(res_iid.name_id, "add_tags", ResourceArns=[rid],
                               Tags=[{"Key": tag.key, "Value": tag.value}])
        else:
            await self.s.ec2(RT_TAG, rid, "create_tags", Resources=[rid], Tags=[{"Key": tag.key, "Value": tag.value}])
        return tag

    async def list_tag(self, res_type: str, res_iid: IID) -> list[KeyValue]:
        return await self._tags(res_type, res_iid)

    async def get_tag(self, res_type: str, res_iid: IID, key: str) -> KeyValue:
        for kv in await self._tags(res_type, res_iid):
            if kv.key == key:
                return kv
        raise tag_not_found(key, res_iid.system_id)

    async def remove_tag(self, res_type: str, res_iid: IID, key: str) -> bool:
        await self.get_tag(res_type, res_iid, key)
        rid = await self._resource_id(res_type, res_iid)
        if res_type == "nlb":
            await self.s.elbv2(res_iid.name_id, "remove_tags", ResourceArns=[rid], TagKeys=[key])
        else:
            await self.s.ec2(RT_TAG, rid, "delete_tags", Resources=[rid], Tags=[{"Key": key}])
        return True

    async def find_tag(self, res_type: str, keyword: str) -> list[TagInfo]:
        word = "" if keyword in ("", "*") else keyword.lower()
        filters: list[dict[str, Any]] = []
        if res_type != "all":
            if res_type not in EC2_TYPES:
                raise DriverError(f"{res_type} is not supported Resource!!")
            filters.append({"Name": "resource-type", "Values": [EC2_TYPES[res_type]]})
        items = await paged(self.s, RT_TAG, keyword, "ec2", "describe_tags", "Tags", Filters=filters)
        by_resource: dict[tuple[str, str], list[KeyValue]] = {}
        hit: set[tuple[str, str]] = set()
        for t in items:
            rtype = _BY_EC2.get(t.get("ResourceType", ""))
            if rtype is None or t["Key"] == RESERVED:
                continue
            key = (rtype, t["ResourceId"])
            by_resource.setdefault(key, []).append(KeyValue(t["Key"], t.get("Value", "")))
            if not word or word in t["Key"].lower() or word in str(t.get("Value", "")).lower():
                hit.add(key)
        out = []
        for rtype, rid in sorted(hit):
            system_id = rid
            if rtype == "keypair":  # Spider knows key pairs by name
                pairs = await self.s.ec2(RT_TAG, rid, "describe_key_pairs", KeyPairIds=[rid])
                system_id = pairs["KeyPairs"][0]["KeyName"] if pairs.get("KeyPairs") else rid
            out.append(TagInfo(rtype, IID("", system_id), by_resource[(rtype, rid)]))
        return out
