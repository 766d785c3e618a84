"""Connection information: cloud OS meta, drivers, credentials, regions and connection configs.

Registration is an upsert (CB-Spider overwrites silently); deleting a missing item succeeds;
references between them are checked on use, not at registration (contract 4.2).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from spider_core.errors import SpiderError, does_not_exist, empty_input
from spider_core.model import (
    HIDDEN,
    ConnectionConfigInfo,
    CredentialInfo,
    DriverInfo,
    KeyValue,
    RegionInfo,
)
from spider_core.services.context import Spider

META_FIELDS = ("Region", "Credential", "CredentialCSP", "RootDiskType", "RootDiskSize", "DiskType",
               "DiskSize", "IdMaxLength", "DefaultRegionToQuery")


@lru_cache(maxsize=1)
def _meta_file() -> dict[str, Any]:
    text = resources.files("spider_core.data").joinpath("cloudos_meta.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
        raise SpiderError("spider_core/data/cloudos_meta.yaml: expected 'cloudos' and 'meta' keys")
    return data


def cloud_os_list() -> list[str]:
    return list(_meta_file()["cloudos"])


def cloud_os_meta(provider: str) -> dict[str, list[str]]:
    """A provider's meta info; every field present (missing ones are ``[""]``)."""
    meta = _meta_file()["meta"].get(provider.upper())
    if meta is None:
        raise SpiderError(f"{provider}: does not exist!")
    return {f: [str(v) for v in meta.get(f, [""])] or [""] for f in META_FIELDS}


def _meta_keys(provider: str, field: str) -> list[str]:
    meta = _meta_file()["meta"].get(provider.upper())
    return [str(k) for k in meta.get(field, [])] if meta else []


def _required(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise empty_input(what)
    return value


# ---- drivers ------------------------------------------------------------------------------------

async def register_driver(sp: Spider, name: str, provider: str, lib: str) -> DriverInfo:
    info = DriverInfo(_required(name, "DriverName"), _required(provider, "ProviderName").upper(),
                      _required(lib, "DriverLibFileName"))
    await sp.db.put_driver(info)
    sp.connection_info_changed()
    sp.prepare_driver(info.provider_name)
    return info


async def get_driver(sp: Spider, name: str) -> DriverInfo:
    info = await sp.db.get_driver(_required(name, "DriverName"))
    if info is None:
        raise does_not_exist(name)
    return info


async def delete_driver(sp: Spider, name: str) -> bool:
    await sp.db.delete_driver(_required(name, "DriverName"))
    sp.connection_info_changed()
    return True


# ---- credentials --------------------------------------------------------------------------------

def _require_keys(given: list[KeyValue], checked: list[KeyValue], want: list[str]) -> None:
    """Every wanted key present (case-insensitively), or CB-Spider's "Invalid Key" text."""
    have = {kv.key.lower() for kv in checked}
    if any(w.lower() not in have for w in want):
        raise SpiderError("Invalid Key in input arguments.\n\t...... have "
                          f"[{' '.join(kv.key for kv in given)}]\n\t...... want [{' '.join(want)}]")


def _check_credential_keys(provider: str, kvs: list[KeyValue]) -> list[KeyValue]:
    """Translate CSP-native key names, then require every meta key."""
    want = _meta_keys(provider, "Credential")
    csp = _meta_keys(provider, "CredentialCSP")
    rename = {c.lower(): w for c, w in zip(csp, want) if c.lower() != w.lower()}
    out = [KeyValue(rename.get(kv.key.lower(), kv.key), kv.value) for kv in kvs]
    _require_keys(kvs, out, want)
    return out


async def register_credential(sp: Spider, name: str, provider: str, kvs: list[KeyValue] | None) -> CredentialInfo:
    name = _required(name, "CredentialName")
    provider = _required(provider, "ProviderName").upper()
    if kvs is None:
        raise SpiderError("KeyValue List is nil!")
    checked = _check_credential_keys(provider, kvs)
    sealed = await sp.db.put_credential(CredentialInfo(name, provider, checked))
    sp.connection_info_changed()
    return sealed


def _hidden(info: CredentialInfo) -> CredentialInfo:
    return CredentialInfo(info.credential_name, info.provider_name,
                          [KeyValue(kv.key, HIDDEN) for kv in info.key_values])


async def get_credential(sp: Spider, name: str) -> CredentialInfo:
    info = await sp.db.get_credential(_required(name, "CredentialName"))
    if info is None:
        raise does_not_exist(name)
    return _hidden(info)


async def list_credentials(sp: Spider, provider: str = "") -> list[CredentialInfo]:
    return [_hidden(c) for c in await sp.db.list_credentials(provider)]


async def delete_credential(sp: Spider, name: str) -> bool:
    await sp.db.delete_credential(_required(name, "CredentialName"))
    sp.connection_info_changed()
    return True


# ---- regions ------------------------------------------------------------------------------------

async def register_region(sp: Spider, name: str, provider: str, kvs: list[KeyValue] | None,
                          zones: list[str] | None) -> RegionInfo:
    name = _required(name, "RegionName")
    provider = _required(provider, "ProviderName").upper()
    if kvs is None:
        raise SpiderError("KeyValue List is nil!")
    _require_keys(kvs, kvs, _meta_keys(provider, "Region"))
    info = RegionInfo(name, provider, kvs, zones)
    await sp.db.put_region(info)
    sp.connection_info_changed()
    return info


async def get_region(sp: Spider, name: str) -> RegionInfo:
    info = await sp.db.get_region(_required(name, "RegionName"))
    if info is None:
        raise does_not_exist(name)
    return info


async def delete_region(sp: Spider, name: str) -> bool:
    await sp.db.delete_region(_required(name, "RegionName"))
    sp.connection_info_changed()
    return True


# ---- connection configs ---------------------------------------------------------------------------

async def register_connection(sp: Spider, info: ConnectionConfigInfo) -> ConnectionConfigInfo:
    info = ConnectionConfigInfo(_required(info.config_name, "ConfigName"),
                                _required(info.provider_name, "ProviderName").upper(),
                                _required(info.driver_name, "DriverName"),
                                _required(info.credential_name, "CredentialName"),
                                _required(info.region_name, "RegionName"))
    await sp.db.put_connection(info)
    sp.connection_info_changed()
    return info


async def get_connection(sp: Spider, name: str) -> ConnectionConfigInfo:
    info = await sp.db.get_connection(_required(name, "ConfigName"))
    if info is None:
        raise does_not_exist(name)
    return info


async def delete_connection(sp: Spider, name: str) -> bool:
    await sp.db.delete_connection(_required(name, "ConfigName"))
    sp.connection_info_changed()
    return True


async def count_connections(sp: Spider, provider: str = "") -> int:
    return len(await sp.db.list_connections(provider))
