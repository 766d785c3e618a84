"""Tags on any registered resource (CB-Spider's TagManager): add, list, get, remove, find.

The resource is named by its user name and type; Spider resolves it through the MetaDB and takes the
resource's read lock, as CB-Spider does."""

from __future__ import annotations

from dataclasses import replace

from spider_core import errors
from spider_core.errors import SpiderError
from spider_core.model import KeyValue, TagInfo
from spider_core.services import leaf
from spider_core.services.common import KINDS, driver_iid, drive, require_conn
from spider_core.services.context import Conn, Spider

# CB-Spider's RSType words (cres.StringToRSType) and their messages' words (cres.RSTypeString)
RS_TYPES = {"all": "All Resources", "image": "VM Image", "vpc": "VPC", "subnet": "Subnet", "sg": "Security Group",
            "keypair": "VM KeyPair", "vm": "VM", "nlb": "Network Load Balancer", "disk": "Disk",
            "myimage": "MyImage", "cluster": "Kubernetes Cluster", "nodegroup": "Kubernetes NodeGroup",
            "filesystem": "FileSystem", "rdbms": "Relational Database", "publicip": "Public IP",
            "nic": "Network Interface Card"}
LOCKABLE = ("vpc", "subnet", "sg", "keypair", "vm", "nlb", "disk", "myimage", "cluster", "rdbms")


def rs_type(word: str, *, status: int = 500) -> str:
    value = (word or "").strip().lower()
    if value not in RS_TYPES:
        raise SpiderError(f"{value} is not a valid resource type", status=status)
    return value


async def _checked(sp: Spider, conn_name: str, res_type: str) -> Conn:
    conn = await sp.connection(require_conn(conn_name))
    cap = conn.capability
    if not cap.tag_handler:
        raise SpiderError(f"{conn_name} does not support TagHandler")
    if res_type not in cap.tag_support_resource_types and not (res_type == "all" and cap.tag_support_resource_types):
        raise SpiderError(f"[TAG_NOT_SUPPORTED] Tagging is not supported for the resource: {conn.provider}-{res_type}")
    if conn.cloud.tag is None:
        raise errors.NotSupported(f"{conn.provider} driver does not support Tag handling!")
    return conn


async def _on_resource(sp: Spider, conn_name: str, res_type: str, res_name: str, method: str, *args):
    res_type = rs_type(res_type)
    conn = await _checked(sp, conn_name, res_type)
    if res_type not in LOCKABLE:
        raise SpiderError(f"{res_type} is not supported Resource!!")
    kind = KINDS.get(res_type)
    if kind is None:
        raise SpiderError(f"unsupported resource type: {res_type}")
    res_name = (res_name or "").strip()
    if not res_name:
        raise errors.empty_input("resourceName")
    async with sp.locks.read(kind.lock_family, conn_name, res_name):
        row = await sp.db.get_iid(conn_name, kind.rtype, res_name, None)
        if row is None:
            raise errors.resource_not_found(kind.type_word, res_name, conn_name)
        return await drive(getattr(conn.cloud.tag, method)(res_type, driver_iid(row), *args))


async def add(sp: Spider, conn_name: str, res_type: str, res_name: str, tag: dict) -> KeyValue:
    key = (tag.get("Key") or "").strip()
    if not key:
        raise errors.validation("KeyValue", "Key")
    kv = KeyValue(key, tag.get("Value") or "")

    async def exists() -> bool:
        try:
            got = await _on_resource(sp, conn_name, res_type, res_name, "get_tag", key)
        except SpiderError:
            return False
        return bool(got.key)

    if await exists():
        raise SpiderError(f"tag key '{key}' already exists for the resource '{res_name}'")
    return await _on_resource(sp, conn_name, res_type, res_name, "add_tag", kv)


async def list_tags(sp: Spider, conn_name: str, res_type: str, res_name: str) -> list[KeyValue]:
    return list(await _on_resource(sp, conn_name, res_type, res_name, "list_tag") or [])


async def get(sp: Spider, conn_name: str, res_type: str, res_name: str, key: str) -> KeyValue:
    return await _on_resource(sp, conn_name, res_type, res_name, "get_tag", key)


async def remove(sp: Spider, conn_name: str, res_type: str, res_name: str, key: str) -> bool:
    return await _on_resource(sp, conn_name, res_type, res_name, "remove_tag", key)


async def find(sp: Spider, conn_name: str, res_type: str, keyword: str) -> list[TagInfo]:
    res_type = rs_type(res_type or "all")
    conn = await _checked(sp, conn_name, res_type)
    found = await drive(conn.cloud.tag.find_tag(res_type, (keyword or "").strip()))
    names = await leaf.names(sp, conn_name)
    out = []
    for info in found or []:
        kind = KINDS.get(info.res_type)
        user = names.user(kind.rtype, info.res_iid) if kind else info.res_iid
        out.append(replace(info, res_iid=user if user.name_id else info.res_iid))
    return out
