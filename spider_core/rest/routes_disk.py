"""Disk routes (CB-Spider's DiskRest): create, list, get, size, attach/detach, delete, management."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, force, path, reply, req_info, spider
from spider_core.services import disk
from spider_core.services.common import DISK

routes = web.RouteTableDef()


@routes.post("/spider/disk")
@api(reply=wire.disk, body=wire.DISK_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await disk.create(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.disk(info))


@routes.get("/spider/disk")
@api(reply={"disk": [wire.disk]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, {"disk": [wire.disk(d) for d in await disk.list_all(spider(request),
                                                                             conn_name(request, body))]})


@routes.get("/spider/disk/{Name}")
@api(reply=wire.disk)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.disk(await disk.get(spider(request), conn_name(request, body), path(request, "Name"))))


@routes.delete("/spider/disk/{Name}")
@api(reply=wire.result, query=("force",))
async def delete(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await disk.delete(spider(request), conn_name(request, body), path(request, "Name"), force(request))
    return reply(request, wire.result(ok))


@routes.put("/spider/disk/{Name}/size")
@api(reply=wire.result, body=wire.DISK_SIZE_REQ)
async def change_size(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await disk.change_size(spider(request), conn_name(request, body), path(request, "Name"),
                                req_info(body).get("Size", ""))
    return reply(request, wire.result(ok))


@routes.put("/spider/disk/{Name}/attach")
@api(reply=wire.disk, body=wire.VM_NAME_REQ)
async def attach(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await disk.attach(spider(request), conn_name(request, body), path(request, "Name"),
                             req_info(body).get("VMName", ""))
    return reply(request, wire.disk(info))


@routes.put("/spider/disk/{Name}/detach")
@api(reply=wire.result, body=wire.VM_NAME_REQ)
async def detach(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await disk.detach(spider(request), conn_name(request, body), path(request, "Name"),
                           req_info(body).get("VMName", ""))
    return reply(request, wire.result(ok))


management.add(routes, "disk", DISK, disk.service, wire.disk, reg_schema=wire.DISK_REG_REQ)
