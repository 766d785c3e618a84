"""Security group and rule routes."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import security
from spider_core.services.common import SG

routes = web.RouteTableDef()


@routes.post("/spider/securitygroup")
@api(reply=wire.security, body=wire.SG_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await security.create(spider(request), conn_name(request, body), req_info(body),
                                 body.get("IDTransformMode"))
    return reply(request, wire.security(info))


@routes.get("/spider/securitygroup")
@api(reply={"securitygroup": [wire.security]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await security.list_all(spider(request), conn_name(request, body))
    return reply(request, {"securitygroup": [wire.security(s) for s in items]})


@routes.get("/spider/securitygroup/vpc/{VPCName}")
@api(reply={"securitygroup": [wire.security]})
async def list_of_vpc(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await security.list_all(spider(request), conn_name(request, body), path(request, "VPCName"))
    return reply(request, {"securitygroup": [wire.security(s) for s in items]})


@routes.get("/spider/securitygroup/{Name}")
@api(reply=wire.security)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await security.get(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, wire.security(info))


@routes.delete("/spider/securitygroup/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await security.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


@routes.post("/spider/securitygroup/{SGName}/rules")
@api(reply=wire.security, body=wire.RULES_REQ)
async def add_rules(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await security.add_rules(spider(request), conn_name(request, body), path(request, "SGName"),
                                    req_info(body))
    return reply(request, wire.security(info))


@routes.delete("/spider/securitygroup/{SGName}/rules")
@api(reply=wire.result, body=wire.RULES_REQ)
async def remove_rules(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await security.remove_rules(spider(request), conn_name(request, body), path(request, "SGName"),
                                     req_info(body))
    return reply(request, wire.result(ok))


@routes.get("/spider/getsecuritygroupowner")
@routes.post("/spider/getsecuritygroupowner")
@api(reply=wire.iid, body=wire.OWNER_REQ, query=("CSPId",))
async def owner(request: web.Request) -> web.Response:
    body = await bind(request)
    csp_id = req_info(body).get("CSPId") or body.get("CSPId", "")
    return reply(request, wire.iid(await security.owner_vpc(spider(request), conn_name(request, body), csp_id)))


management.add(routes, "securitygroup", SG, security, wire.security)
