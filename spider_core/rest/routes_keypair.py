"""Key pair routes."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import keypair
from spider_core.services.common import KEY

routes = web.RouteTableDef()


@routes.post("/spider/keypair")
@api(reply=wire.keypair, body=wire.KEY_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await keypair.create(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.keypair(info))


@routes.get("/spider/keypair")
@api(reply={"keypair": [wire.keypair]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await keypair.list_all(spider(request), conn_name(request, body))
    return reply(request, {"keypair": [wire.keypair(k) for k in items]})


@routes.get("/spider/keypair/{Name}")
@api(reply=wire.keypair)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.keypair(await keypair.get(spider(request), conn_name(request, body),
                                                         path(request, "Name"))))


@routes.delete("/spider/keypair/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await keypair.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


management.add(routes, "keypair", KEY, keypair, wire.keypair)
