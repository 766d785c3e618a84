"""Key pair handler. IID SystemId of a key pair is its KeyName (what EC2 instances reference)."""

from __future__ import annotations

from typing import Any

from spider_core.drivers.coalesce import Coalescer
from spider_core.calllog import RT_KEY
from spider_core.drivers.aws.session import AwsSession, tag_spec, user_tags
from spider_core.drivers.base import KeyPairHandler
from spider_core.errors import DriverNotFound
from spider_core.model import IID, KeyPairInfo, KeyPairReqInfo, KeyValue

VM_USER = "cb-user"


def key_not_found(name: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidKeyPair.NotFound: The key pair '{name}' does not exist")


def public_key_from_pem(pem: str) -> str:
    """OpenSSH public key for a PEM private key ('' if it cannot be read)."""
    try:
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()
    except Exception:  # noqa: BLE001 - best effort
        return ""


class AwsKeyPairHandler(KeyPairHandler):
    def __init__(self, session: AwsSession, *, max_inflight: int = 1) -> None:
        self.s = session
        self._get = Coalescer(self._fetch, key_not_found, max_inflight=max_inflight)

    def _info(self, kp: dict[str, Any]) -> KeyPairInfo:
        kvs = [KeyValue("KeyPairId", kp["KeyPairId"])] if kp.get("KeyPairId") else []
        return KeyPairInfo(iid=IID(kp["KeyName"], kp["KeyName"]), fingerprint=kp.get("KeyFingerprint", ""),
                           public_key=kp.get("PublicKey", ""), vm_user_id=VM_USER,
                           tags=user_tags(kp.get("Tags")), key_values=kvs)

    async def create_key(self, req: KeyPairReqInfo) -> KeyPairInfo:
        out = await self.s.ec2(RT_KEY, req.iid.name_id, "create_key_pair", KeyName=req.iid.name_id,
                               TagSpecifications=tag_spec("key-pair", req.iid.name_id, req.tags))
        pem = out.get("KeyMaterial", "")
        kvs = [KeyValue("KeyPairId", out["KeyPairId"])] if out.get("KeyPairId") else []
        return KeyPairInfo(iid=IID(req.iid.name_id, out["KeyName"]), fingerprint=out.get("KeyFingerprint", ""),
                           public_key=public_key_from_pem(pem), private_key=pem, vm_user_id=VM_USER,
                           tags=list(req.tags), key_values=kvs)

    async def _fetch(self, names: list[str]) -> dict[str, object]:
        label = names[0] if len(names) == 1 else f"{len(names)} KeyPairs"
        keys = (await self.s.ec2(RT_KEY, label, "describe_key_pairs",
                                 Filters=[{"Name": "key-name", "Values": names}]))["KeyPairs"]
        return {k["KeyName"]: self._info(k) for k in keys}

    async def get_key(self, iid: IID) -> KeyPairInfo:
        name = iid.system_id or iid.name_id
        return await self._get.get(name)

    async def list_key(self) -> list[KeyPairInfo]:
        return [self._info(k) for k in (await self.s.ec2(RT_KEY, "", "describe_key_pairs"))["KeyPairs"]]

    async def list_iid(self) -> list[IID]:
        return [k.iid for k in await self.list_key()]

    async def delete_key(self, iid: IID) -> bool:
        name = iid.system_id or iid.name_id
        # EC2 DeleteKeyPair succeeds for unknown names; CB-Spider expects not-found to be reported.
        await self.get_key(IID(iid.name_id, name))
        await self.s.ec2(RT_KEY, iid.name_id, "delete_key_pair", KeyName=name)
        return True
