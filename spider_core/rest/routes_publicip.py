"""Public IP routes (CB-Spider's PublicIPRest): allocate, list, get, associate/disassociate, release."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import DELETE_REQ, bind, body_force, conn_name, path, reply, req_info, spider
from spider_core.services import publicip
from spider_core.services.common import PUBLICIP

routes = web.RouteTableDef()


@routes.post("/spider/publicip")
@api(reply=wire.public_ip, body=wire.PUBLICIP_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await publicip.create(spider(request), conn_name(request, body), req_info(body),
                                 body.get("IDTransformMode"))
    return reply(request, wire.public_ip(info))


@routes.get("/spider/publicip")
@api(reply={"publicip": [wire.public_ip]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await publicip.list_all(spider(request), conn_name(request, body))
    return reply(request, {"publicip": [wire.public_ip(i) for i in items]})


@routes.get("/spider/publicip/{Name}")
@api(reply=wire.public_ip)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await publicip.get(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, wire.public_ip(info))


@routes.delete("/spider/publicip/{Name}")
@api(reply=wire.result, body=DELETE_REQ, flat=True, query=("ConnectionName", "force"))
async def delete(request: web.Request) -> web.Response:
    raw = await bind(request)
    ok = await publicip.delete(spider(request), conn_name(request, raw), path(request, "Name"), body_force(request, raw))
    return reply(request, wire.result(ok))


@routes.put("/spider/publicip/{Name}/associate")
@api(reply=wire.public_ip, body=wire.PUBLICIP_ASSOC_REQ)
async def associate(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await publicip.associate(spider(request), conn_name(request, body), path(request, "Name"), req_info(body))
    return reply(request, wire.public_ip(info))


@routes.put("/spider/publicip/{Name}/disassociate")
@api(reply=wire.result)
async def disassociate(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await publicip.disassociate(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, wire.result(ok))


management.add(routes, "publicip", PUBLICIP, publicip.service, wire.public_ip)
