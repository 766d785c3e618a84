"""MyImage routes (CB-Spider's MyImageRest): snapshot a VM, list, get, delete, management."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import myimage
from spider_core.services.common import MYIMAGE

routes = web.RouteTableDef()


@routes.post("/spider/myimage")
@api(reply=wire.myimage, body=wire.MYIMAGE_REQ)
async def snapshot(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await myimage.snapshot(spider(request), conn_name(request, body), req_info(body),
                                  body.get("IDTransformMode"))
    return reply(request, wire.myimage(info))


@routes.get("/spider/myimage")
@api(reply={"myImage": [wire.myimage]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await myimage.list_all(spider(request), conn_name(request, body))
    return reply(request, {"myImage": [wire.myimage(i) for i in items]})


@routes.get("/spider/myimage/{Name}")
@api(reply=wire.myimage)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await myimage.get(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, wire.myimage(info))


@routes.delete("/spider/myimage/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await myimage.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


management.add(routes, "myimage", MYIMAGE, myimage.service, wire.myimage)
