"""Read-only catalogues of a cloud: regions/zones, images and VM specs (contract 5.3, 5.4)."""

from __future__ import annotations

from typing import Any

from spider_core import errors
from spider_core.drivers.base import CloudConnection, ConnectionInfo
from spider_core.errors import SpiderError
from spider_core.model import IID, ImageInfo, RegionZoneInfo, VMSpecInfo
from spider_core.services.common import drive, require_conn
from spider_core.services.context import Spider


def _need(handler: Any, provider: str, what: str) -> Any:
    if handler is None:
        raise errors.NotSupported(f"{provider} driver does not support {what}!")
    return handler


async def _cloud(sp: Spider, conn_name: str) -> tuple[CloudConnection, str]:
    conn = await sp.connection(require_conn(conn_name))
    return conn.cloud, conn.provider


# ---- region / zone -------------------------------------------------------------------------------

async def list_region_zone(sp: Spider, conn_name: str) -> list[RegionZoneInfo]:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.region_zone, provider, "RegionZone").list_region_zone())


async def get_region_zone(sp: Spider, conn_name: str, name: str) -> RegionZoneInfo:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.region_zone, provider, "RegionZone").get_region_zone(name))


async def org_region(sp: Spider, conn_name: str) -> Any:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.region_zone, provider, "RegionZone").list_org_region())


async def org_zone(sp: Spider, conn_name: str) -> Any:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.region_zone, provider, "RegionZone").list_org_zone())


async def _preconfig_cloud(sp: Spider, driver_name: str, credential_name: str) -> tuple[CloudConnection, str]:
    """A connection without a region, from a driver and a credential (``/preconfig/*``)."""
    if not driver_name:
        raise errors.empty_input("DriverName")
    if not credential_name:
        raise errors.empty_input("CredentialName")
    driver_info = await sp.db.get_driver(driver_name)
    if driver_info is None:
        raise errors.does_not_exist(driver_name)
    credential = await sp.db.get_credential(credential_name, decrypt=True)
    if credential is None:
        raise errors.does_not_exist(credential_name)
    provider = driver_info.provider_name.upper()
    driver = await sp.registry.get(provider)
    info = ConnectionInfo(provider=provider, credential={kv.key: kv.value for kv in credential.key_values},
                          region="", connection_name="")
    return await drive(driver.connect(info)), provider


async def preconfig_list_region_zone(sp: Spider, driver_name: str, credential_name: str) -> list[RegionZoneInfo]:
    cloud, provider = await _preconfig_cloud(sp, driver_name, credential_name)
    try:
        return await drive(_need(cloud.region_zone, provider, "RegionZone").list_region_zone())
    finally:
        await cloud.close()


async def preconfig_get_region_zone(sp: Spider, driver_name: str, credential_name: str, name: str) -> RegionZoneInfo:
    cloud, provider = await _preconfig_cloud(sp, driver_name, credential_name)
    try:
        return await drive(_need(cloud.region_zone, provider, "RegionZone").get_region_zone(name))
    finally:
        await cloud.close()


async def preconfig_org_region(sp: Spider, driver_name: str, credential_name: str) -> Any:
    cloud, provider = await _preconfig_cloud(sp, driver_name, credential_name)
    try:
        return await drive(_need(cloud.region_zone, provider, "RegionZone").list_org_region())
    finally:
        await cloud.close()


# ---- images and specs ------------------------------------------------------------------------------

async def list_image(sp: Spider, conn_name: str) -> list[ImageInfo]:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.image, provider, "VMImage").list_image())


async def get_image(sp: Spider, conn_name: str, name: str) -> ImageInfo:
    if not name:
        raise errors.empty_input("nameID")
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.image, provider, "VMImage").get_image(IID(name, name)))


async def list_spec(sp: Spider, conn_name: str) -> list[VMSpecInfo]:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.vmspec, provider, "VMSpec").list_vm_spec())


async def get_spec(sp: Spider, conn_name: str, name: str) -> VMSpecInfo:
    if not name:
        raise errors.empty_input("nameID")
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.vmspec, provider, "VMSpec").get_vm_spec(name))


async def list_org_spec(sp: Spider, conn_name: str) -> Any:
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.vmspec, provider, "VMSpec").list_org_vm_spec())


async def get_org_spec(sp: Spider, conn_name: str, name: str) -> Any:
    if not name:
        raise SpiderError("nameID is empty!")
    cloud, provider = await _cloud(sp, conn_name)
    return await drive(_need(cloud.vmspec, provider, "VMSpec").get_org_vm_spec(name))
