"""Connection information routes: cloudos, driver, credential, region, connectionconfig."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core import wire
from spider_core.errors import SpiderError
from spider_core.model import ConnectionConfigInfo
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, path, query, reply, spider
from spider_core.services import connection as svc

routes = web.RouteTableDef()


def _provider(request: web.Request) -> str:
    return query(request, "provider") or query(request, "ProviderName")


@routes.get("/spider/cloudos")
@api(reply={"cloudos": [str]}, connection=False)
async def cloudos(request: web.Request) -> web.Response:
    return reply(request, {"cloudos": svc.cloud_os_list()})


@routes.get("/spider/cloudos/metainfo/{CloudOSName}")
@api(reply=Any, connection=False)
async def cloudos_meta(request: web.Request) -> web.Response:
    return reply(request, svc.cloud_os_meta(path(request, "CloudOSName")))


# ---- driver -------------------------------------------------------------------------------------

@routes.post("/spider/driver")
@api(reply=wire.driver, body=wire.DRIVER_REQ, flat=True, connection=False)
async def register_driver(request: web.Request) -> web.Response:
    b = await bind(request)
    info = await svc.register_driver(spider(request), b.get("DriverName", ""), b.get("ProviderName", ""),
                                     b.get("DriverLibFileName", ""))
    return reply(request, wire.driver(info))


@routes.get("/spider/driver")
@api(reply={"driver": [wire.driver]}, connection=False, query=("provider", "ProviderName"))
async def list_drivers(request: web.Request) -> web.Response:
    items = await spider(request).db.list_drivers(_provider(request))
    return reply(request, {"driver": [wire.driver(d) for d in items]})


@routes.post("/spider/driver/upload")
@api(reply=wire.driver, connection=False)
async def upload_driver(request: web.Request) -> web.Response:
    raise SpiderError("Uploading a driver library is not supported by spidertwin: install a Python package that "
                      "declares a 'spidertwin.drivers' entry point, then restart the server")


@routes.get("/spider/driver/{DriverName}")
@api(reply=wire.driver, connection=False)
async def get_driver(request: web.Request) -> web.Response:
    return reply(request, wire.driver(await svc.get_driver(spider(request), path(request, "DriverName"))))


@routes.delete("/spider/driver/{DriverName}")
@api(reply=wire.result, connection=False)
async def delete_driver(request: web.Request) -> web.Response:
    return reply(request, wire.result(await svc.delete_driver(spider(request), path(request, "DriverName"))))


# ---- credential ---------------------------------------------------------------------------------

@routes.post("/spider/credential")
@api(reply=wire.credential, body=wire.CREDENTIAL_REQ, flat=True, connection=False)
async def register_credential(request: web.Request) -> web.Response:
    b = await bind(request)
    kvs = None if b.get("KeyValueInfoList") is None else wire.kvs_in(b.get("KeyValueInfoList"))
    info = await svc.register_credential(spider(request), b.get("CredentialName", ""), b.get("ProviderName", ""), kvs)
    return reply(request, wire.credential(info))


@routes.get("/spider/credential")
@api(reply={"credential": [wire.credential]}, connection=False, query=("provider", "ProviderName"))
async def list_credentials(request: web.Request) -> web.Response:
    items = await svc.list_credentials(spider(request), _provider(request))
    return reply(request, {"credential": [wire.credential(c) for c in items]})


@routes.get("/spider/credential/{CredentialName}")
@api(reply=wire.credential, connection=False)
async def get_credential(request: web.Request) -> web.Response:
    return reply(request, wire.credential(await svc.get_credential(spider(request), path(request, "CredentialName"))))


@routes.delete("/spider/credential/{CredentialName}")
@api(reply=wire.result, connection=False)
async def delete_credential(request: web.Request) -> web.Response:
    return reply(request, wire.result(await svc.delete_credential(spider(request), path(request, "CredentialName"))))


# ---- region -------------------------------------------------------------------------------------

@routes.post("/spider/region")
@api(reply=wire.region, body=wire.REGION_REQ, flat=True, connection=False)
async def register_region(request: web.Request) -> web.Response:
    b = await bind(request)
    kvs = None if b.get("KeyValueInfoList") is None else wire.kvs_in(b.get("KeyValueInfoList"))
    info = await svc.register_region(spider(request), b.get("RegionName", ""), b.get("ProviderName", ""), kvs,
                                     b.get("AvailableZoneList"))
    return reply(request, wire.region(info))


@routes.get("/spider/region")
@api(reply={"region": [wire.region]}, connection=False, query=("provider", "ProviderName"))
async def list_regions(request: web.Request) -> web.Response:
    items = await spider(request).db.list_regions(_provider(request))
    return reply(request, {"region": [wire.region(r) for r in items]})


@routes.get("/spider/region/{RegionName}")
@api(reply=wire.region, connection=False)
async def get_region(request: web.Request) -> web.Response:
    return reply(request, wire.region(await svc.get_region(spider(request), path(request, "RegionName"))))


@routes.delete("/spider/region/{RegionName}")
@api(reply=wire.result, connection=False)
async def delete_region(request: web.Request) -> web.Response:
    return reply(request, wire.result(await svc.delete_region(spider(request), path(request, "RegionName"))))


# ---- connection config --------------------------------------------------------------------------

@routes.post("/spider/connectionconfig")
@api(reply=wire.connection_config, body=wire.CONNECTION_REQ, flat=True, connection=False)
async def register_connection(request: web.Request) -> web.Response:
    b = await bind(request)
    info = ConnectionConfigInfo(b.get("ConfigName", ""), b.get("ProviderName", ""), b.get("DriverName", ""),
                                b.get("CredentialName", ""), b.get("RegionName", ""))
    return reply(request, wire.connection_config(await svc.register_connection(spider(request), info)))


@routes.get("/spider/connectionconfig")
@api(reply={"connectionconfig": [wire.connection_config]}, connection=False, query=("provider", "ProviderName"))
async def list_connections(request: web.Request) -> web.Response:
    items = await spider(request).db.list_connections(_provider(request))
    return reply(request, {"connectionconfig": [wire.connection_config(c) for c in items]})


@routes.get("/spider/connectionconfig/{ConfigName}")
@api(reply=wire.connection_config, connection=False)
async def get_connection(request: web.Request) -> web.Response:
    return reply(request, wire.connection_config(await svc.get_connection(spider(request), path(request, "ConfigName"))))


@routes.delete("/spider/connectionconfig/{ConfigName}")
@api(reply=wire.result, connection=False)
async def delete_connection(request: web.Request) -> web.Response:
    return reply(request, wire.result(await svc.delete_connection(spider(request), path(request, "ConfigName"))))


@routes.get("/spider/countconnectionconfig")
@routes.get("/spider/countconnectionconfig/{ProviderName}")
@api(reply=wire.COUNT, connection=False)
async def count_connections(request: web.Request) -> web.Response:
    return reply(request, {"count": await svc.count_connections(spider(request), path(request, "ProviderName"))})
