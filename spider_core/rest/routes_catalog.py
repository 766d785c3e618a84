"""Region/zone, preconfig, image and spec routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core import wire
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, path, query, reply, spider
from spider_core.services import catalog

routes = web.RouteTableDef()


def _region_zone(info) -> dict:
    out = wire.region_zone(info)
    out.setdefault("KeyValueList", [])  # Spider forces [] for regions (contract 6.5)
    return out


@routes.get("/spider/regionzone")
@api(reply={"regionzone": [wire.region_zone]})
async def list_region_zone(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await catalog.list_region_zone(spider(request), conn_name(request, body))
    return reply(request, {"regionzone": [_region_zone(i) for i in items]})


@routes.get("/spider/regionzone/{Name}")
@api(reply=wire.region_zone)
async def get_region_zone(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, _region_zone(await catalog.get_region_zone(spider(request), conn_name(request, body),
                                                                     path(request, "Name"))))


@routes.get("/spider/orgregion")
@api(reply={"RegionInfo": Any})
async def org_region(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"RegionInfo": await catalog.org_region(spider(request), conn_name(request, body))})


@routes.get("/spider/orgzone")
@api(reply={"ZoneInfo": Any})
async def org_zone(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"ZoneInfo": await catalog.org_zone(spider(request), conn_name(request, body))})


async def _preconfig_args(request: web.Request) -> tuple[str, str]:
    body = await bind(request)
    return (body.get("DriverName") or query(request, "DriverName"),
            body.get("CredentialName") or query(request, "CredentialName"))


@routes.get("/spider/preconfig/regionzone")
@api(reply={"regionzone": [wire.region_zone]}, body=wire.PRECONFIG_REQ, flat=True, connection=False,
     query=("DriverName", "CredentialName"))
async def preconfig_list_region_zone(request: web.Request) -> web.Response:
    items = await catalog.preconfig_list_region_zone(spider(request), *await _preconfig_args(request))
    return reply(request, {"regionzone": [_region_zone(i) for i in items]})


@routes.get("/spider/preconfig/regionzone/{Name}")
@api(reply=wire.region_zone, body=wire.PRECONFIG_REQ, flat=True, connection=False, query=("DriverName",
     "CredentialName"))
async def preconfig_get_region_zone(request: web.Request) -> web.Response:
    info = await catalog.preconfig_get_region_zone(spider(request), *await _preconfig_args(request),
                                                   path(request, "Name"))
    return reply(request, _region_zone(info))


@routes.get("/spider/preconfig/orgregion")
@api(reply={"RegionInfo": Any}, body=wire.PRECONFIG_REQ, flat=True, connection=False, query=("DriverName",
     "CredentialName"))
async def preconfig_org_region(request: web.Request) -> web.Response:
    return reply(request, {"RegionInfo": await catalog.preconfig_org_region(spider(request),
                                                                            *await _preconfig_args(request))})


@routes.get("/spider/vmimage")
@api(reply={"image": [wire.image]})
async def list_image(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await catalog.list_image(spider(request), conn_name(request, body))
    return reply(request, {"image": [wire.image(i) for i in items]})


@routes.get("/spider/vmimage/{Name}")
@api(reply=wire.image)
async def get_image(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.image(await catalog.get_image(spider(request), conn_name(request, body),
                                                             path(request, "Name"))))


@routes.get("/spider/vmspec")
@api(reply={"vmspec": [wire.vmspec]})
async def list_spec(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await catalog.list_spec(spider(request), conn_name(request, body))
    return reply(request, {"vmspec": [wire.vmspec(s) for s in items]})


@routes.get("/spider/vmspec/{Name}")
@api(reply=wire.vmspec)
async def get_spec(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.vmspec(await catalog.get_spec(spider(request), conn_name(request, body),
                                                             path(request, "Name"))))


@routes.get("/spider/vmorgspec")
@api(reply={"VMSpecInfo": Any})
async def list_org_spec(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"VMSpecInfo": await catalog.list_org_spec(spider(request), conn_name(request, body))})


@routes.get("/spider/vmorgspec/{Name}")
@api(reply={"VMSpecInfo": Any})
async def get_org_spec(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"VMSpecInfo": await catalog.get_org_spec(spider(request), conn_name(request, body),
                                                                    path(request, "Name"))})
