"""Tag handler: OpenStack's string tags as ``key=value`` (CB-Spider's OpenStack driver): Neutron tags on
networks (VPC), subnets and security groups, Nova server tags (microversion 2.26) on VMs, Octavia's
``tags`` on load balancers."""

from __future__ import annotations

from urllib.parse import quote

from spider_core.calllog import RT_TAG
from spider_core.drivers.base import TagHandler
from spider_core.drivers.openstack.session import OsSession
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, KeyValue, TagInfo

NEUTRON = {"vpc": "networks", "subnet": "subnets", "sg": "security-groups"}
NOVA_TAGS = {"OpenStack-API-Version": "compute 2.26", "X-OpenStack-Nova-API-Version": "2.26"}
TYPES = ("vpc", "subnet", "sg", "vm", "nlb")


def as_string(tag: KeyValue) -> str:
    if "=" in tag.key or "=" in tag.value:
        raise DriverError(f"tag '{tag.key}': OpenStack tags are 'key=value' strings; '=' cannot be in a key or value")
    return f"{tag.key}={tag.value}"


def as_kv(text: str) -> KeyValue:
    key, _, value = text.partition("=")
    return KeyValue(key, value)


class OsTagHandler(TagHandler):
    def __init__(self, session: OsSession) -> None:
        self.s = session

    async def _strings(self, res_type: str, iid: IID) -> list[str]:
        rid = iid.system_id
        if res_type in NEUTRON:
            out = await self.s.call(RT_TAG, iid.name_id, "network", "GET", f"/{NEUTRON[res_type]}/{rid}/tags")
        elif res_type == "vm":
            out = await self.s.call(RT_TAG, iid.name_id, "compute", "GET", f"/servers/{rid}/tags", headers=NOVA_TAGS)
        elif res_type == "nlb":
            out = (await self.s.call(RT_TAG, iid.name_id, "load-balancer", "GET",
                                     f"/v2/lbaas/loadbalancers/{rid}"))["loadbalancer"]
        else:
            raise DriverError(f"{res_type} is not supported Resource!!")
        return [str(t) for t in (out or {}).get("tags") or []]

    async def _change(self, res_type: str, iid: IID, text: str, add: bool) -> None:
        rid, method = iid.system_id, "PUT" if add else "DELETE"
        if res_type in NEUTRON:
            await self.s.call(RT_TAG, iid.name_id, "network", method, f"/{NEUTRON[res_type]}/{rid}/tags/{quote(text, safe='')}")
        elif res_type == "vm":
            await self.s.call(RT_TAG, iid.name_id, "compute", method, f"/servers/{rid}/tags/{quote(text, safe='')}",
                              headers=NOVA_TAGS)
        else:
            tags = [t for t in await self._strings(res_type, iid) if t != text] + ([text] if add else [])
            await self.s.call(RT_TAG, iid.name_id, "load-balancer", "PUT", f"/v2/lbaas/loadbalancers/{rid}",
                              {"loadbalancer": {"tags": tags}})

    async def add_tag(self, res_type: str, res_iid: IID, tag: KeyValue) -> KeyValue:
        await self._change(res_type, res_iid, as_string(tag), True)
        return tag

    async def list_tag(self, res_type: str, res_iid: IID) -> list[KeyValue]:
        return [as_kv(t) for t in await self._strings(res_type, res_iid)]

    async def get_tag(self, res_type: str, res_iid: IID, key: str) -> KeyValue:
        for kv in await self.list_tag(res_type, res_iid):
            if kv.key == key:
                return kv
        raise DriverNotFound(f"tag key '{key}' does not exist on resource '{res_iid.system_id}'")

    async def remove_tag(self, res_type: str, res_iid: IID, key: str) -> bool:
        found = await self.get_tag(res_type, res_iid, key)
        await self._change(res_type, res_iid, f"{found.key}={found.value}", False)
        return True

    async def _tagged(self, res_type: str) -> list[tuple[str, list[str]]]:
        project = await self.s.project_id()
        owner = f"?project_id={project}" if project else ""
        if res_type in NEUTRON:
            key = NEUTRON[res_type].replace("-", "_")
            items = await self.s.list_all(RT_TAG, "", "network", f"/{NEUTRON[res_type]}{owner}", key)
        elif res_type == "vm":
            items = [(await self.s.call(RT_TAG, "", "compute", "GET", f"/servers/{srv['id']}", headers=NOVA_TAGS))
                     ["server"] for srv in await self.s.list_all(RT_TAG, "", "compute", "/servers", "servers")]
        else:
            items = await self.s.list_all(RT_TAG, "", "load-balancer", f"/v2/lbaas/loadbalancers{owner}",
                                          "loadbalancers")
        return [(i["id"], [str(t) for t in i.get("tags") or []]) for i in items if i.get("tags")]

    async def find_tag(self, res_type: str, keyword: str) -> list[TagInfo]:
        word = "" if keyword in ("", "*") else keyword
        out = []
        for rtype in (TYPES if res_type == "all" else (res_type,)):
            if rtype not in TYPES:
                raise DriverError(f"{rtype} is not supported Resource!!")
            try:
                tagged = await self._tagged(rtype)
            except DriverNotFound:  # no such service in this cloud (e.g. no Octavia)
                continue
            for rid, tags in tagged:
                if not word or any(word in t for t in tags):
                    out.append(TagInfo(rtype, IID("", rid), [as_kv(t) for t in tags]))
        return out
