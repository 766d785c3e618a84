"""VPC and subnet routes."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import vpc
from spider_core.services.common import SUBNET, VPC, count

routes = web.RouteTableDef()


@routes.post("/spider/vpc")
@api(reply=wire.vpc, body=wire.VPC_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await vpc.create(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.vpc(info))


@routes.get("/spider/vpc")
@api(reply={"vpc": [wire.vpc]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"vpc": [wire.vpc(v) for v in await vpc.list_all(spider(request), conn_name(request, body))]})


@routes.get("/spider/vpc/{Name}")
@api(reply=wire.vpc)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.vpc(await vpc.get(spider(request), conn_name(request, body), path(request, "Name"))))


@routes.delete("/spider/vpc/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await vpc.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


@routes.post("/spider/vpc/{VPCName}/subnet")
@api(reply=wire.vpc, body=wire.SUBNET_REQ)
async def add_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await vpc.add_subnet(spider(request), conn_name(request, body), path(request, "VPCName"), req_info(body),
                                body.get("IDTransformMode"))
    return reply(request, wire.vpc(info))


@routes.get("/spider/vpc/{VPCName}/subnet/{Name}")
@api(reply=wire.subnet, errors=(400, 404))
async def get_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await vpc.get_subnet(spider(request), conn_name(request, body), path(request, "VPCName"),
                                path(request, "Name"))
    return reply(request, wire.subnet(info))


@routes.delete("/spider/vpc/{VPCName}/subnet/{SubnetName}")
@api(reply=wire.result, query=("force",))
async def remove_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await vpc.remove_subnet(spider(request), conn_name(request, body), path(request, "VPCName"),
                                 path(request, "SubnetName"), force(request))
    return reply(request, wire.result(ok))


@routes.delete("/spider/vpc/{VPCName}/cspsubnet/{Id}")
@api(reply=wire.result)
async def remove_csp_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await vpc.remove_csp_subnet(spider(request), conn_name(request, body), path(request, "VPCName"),
                                     path(request, "Id"))
    return reply(request, wire.result(ok))


@routes.post("/spider/regsubnet")
@api(reply=wire.vpc, body=wire.REG_REQ)
async def register_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.vpc(await vpc.register_subnet(spider(request), conn_name(request, body),
                                                             req_info(body))))


@routes.delete("/spider/regsubnet/{Name}")
@api(reply=wire.result, body=wire.REG_REQ)
async def unregister_subnet(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await vpc.unregister_subnet(spider(request), conn_name(request, body), req_info(body).get("VPCName", ""),
                                     path(request, "Name"))
    return reply(request, wire.result(ok))


@routes.get("/spider/countsubnet")
@routes.get("/spider/countsubnet/{ConnectionName}")
@api(reply=wire.COUNT, connection=False)
async def count_subnet(request: web.Request) -> web.Response:
    return reply(request, {"count": await count(spider(request), SUBNET, path(request, "ConnectionName"))})


management.add(routes, "vpc", VPC, vpc, wire.vpc)
