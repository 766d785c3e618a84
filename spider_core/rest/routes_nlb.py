"""Network load balancer routes."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import nlb
from spider_core.services.common import NLB

routes = web.RouteTableDef()


@routes.post("/spider/nlb")
@api(reply=wire.nlb, body=wire.NLB_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.create(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.nlb(info))


@routes.get("/spider/nlb")
@api(reply={"nlb": [wire.nlb]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"nlb": [wire.nlb(n) for n in await nlb.list_all(spider(request), conn_name(request, body))]})


@routes.get("/spider/nlb/{Name}")
@api(reply=wire.nlb)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.nlb(await nlb.get(spider(request), conn_name(request, body), path(request, "Name"))))


@routes.delete("/spider/nlb/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await nlb.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


@routes.post("/spider/nlb/{Name}/vms")
@api(reply=wire.nlb, body=wire.NLB_VMS_REQ)
async def add_vms(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.add_vms(spider(request), conn_name(request, body), path(request, "Name"),
                             req_info(body).get("VMs") or [])
    return reply(request, wire.nlb(info))


@routes.delete("/spider/nlb/{Name}/vms")
@api(reply=wire.result, body=wire.NLB_VMS_REQ)
async def remove_vms(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await nlb.remove_vms(spider(request), conn_name(request, body), path(request, "Name"),
                              req_info(body).get("VMs") or [])
    return reply(request, wire.result(ok))


@routes.put("/spider/nlb/{Name}/listener")
@api(reply=wire.nlb, body=wire.LISTENER_REQ)
async def change_listener(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.change_listener(spider(request), conn_name(request, body), path(request, "Name"), req_info(body))
    return reply(request, wire.nlb(info))


@routes.put("/spider/nlb/{Name}/vmgroup")
@api(reply=wire.nlb, body=wire.VMGROUP_REQ)
async def change_vm_group(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.change_vm_group(spider(request), conn_name(request, body), path(request, "Name"), req_info(body))
    return reply(request, wire.nlb(info))


@routes.put("/spider/nlb/{Name}/healthchecker")
@api(reply=wire.nlb, body=wire.HC_REQ)
async def change_health_checker(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.change_health_checker(spider(request), conn_name(request, body), path(request, "Name"),
                                           req_info(body))
    return reply(request, wire.nlb(info))


@routes.get("/spider/nlb/{Name}/health")
@api(reply={"healthinfo": wire.health})
async def health(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nlb.health(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, {"healthinfo": wire.health(info)})


@routes.get("/spider/getnlbowner")
@routes.post("/spider/getnlbowner")
@api(reply=wire.iid, body=wire.OWNER_REQ, query=("CSPId",))
async def owner(request: web.Request) -> web.Response:
    body = await bind(request)
    csp_id = req_info(body).get("CSPId") or body.get("CSPId", "")
    return reply(request, wire.iid(await nlb.owner_vpc(spider(request), conn_name(request, body), csp_id)))


management.add(routes, "nlb", NLB, nlb, wire.nlb)
