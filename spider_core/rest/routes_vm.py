"""VM routes: start, get/list, status, control, terminate, register, CSP lookups."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, query, reply, req_info, spider
from spider_core.services import vm
from spider_core.services.common import VM

routes = web.RouteTableDef()


@routes.post("/spider/vm")
@api(reply=wire.vm, body=wire.VM_REQ)
async def start(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await vm.start(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.vm(info))


@routes.get("/spider/vm")
@api(reply={"vm": [wire.vm]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"vm": [wire.vm(v) for v in await vm.list_all(spider(request), conn_name(request, body))]})


@routes.get("/spider/vm/{Name}")
@api(reply=wire.vm)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.vm(await vm.get(spider(request), conn_name(request, body), path(request, "Name"))))


@routes.delete("/spider/vm/{Name}")
@api(reply=wire.STATUS, query=("force",))
async def terminate(request: web.Request) -> web.Response:
    body = await bind(request)
    status = await vm.terminate(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, {"Status": status})


@routes.get("/spider/vmstatus")
@api(reply={"vmstatus": [wire.vm_status]})
async def list_status(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await vm.list_status(spider(request), conn_name(request, body))
    return reply(request, {"vmstatus": [wire.vm_status(s) for s in items]})


@routes.get("/spider/vmstatus/{Name}")
@api(reply=wire.STATUS)
async def status(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"Status": await vm.status(spider(request), conn_name(request, body), path(request, "Name"))})


@routes.get("/spider/controlvm/{Name}")
@routes.put("/spider/controlvm/{Name}")
@api(reply=wire.STATUS, query=("action",))
async def control(request: web.Request) -> web.Response:
    body = await bind(request)
    result = await vm.control(spider(request), conn_name(request, body), path(request, "Name"),
                              query(request, "action"))
    return reply(request, {"Status": result})


@routes.get("/spider/getvmusingresources")
@routes.post("/spider/getvmusingresources")
@api(reply={"Resources": {"VPC": wire.iid, "SGList": [wire.iid], "VMKey": wire.iid}}, query=("CSPId",), errors=(400,))
async def using_resources(request: web.Request) -> web.Response:
    body = await bind(request)
    res = await vm.using_resources(spider(request), conn_name(request, body),
                                   query(request, "CSPId") or body.get("CSPId", ""))
    return reply(request, {"Resources": {"VPC": wire.iid(res["VPC"]), "SGList": [wire.iid(i) for i in res["SGList"]],
                                         "VMKey": wire.iid(res["VMKey"])}})


@routes.get("/spider/cspvm/{Id}")
@api(reply=wire.vm)
async def get_csp(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.vm(await vm.get_csp(spider(request), conn_name(request, body), path(request, "Id"))))


@wire.shaped(wire.STATUS)
def _status(value: str) -> dict:
    return {"Status": value}


management.add(routes, "vm", VM, vm, wire.vm, delete_csp_reply=_status)
