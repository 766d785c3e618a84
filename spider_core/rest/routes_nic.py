"""NIC routes (CB-Spider's NICRest): create, list, get, attach/detach, private IPs, OS script, delete."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest import management
from spider_core.rest.contract import api
from spider_core.rest.transport import DELETE_REQ, bind, body_force, conn_name, path, reply, req_info, spider
from spider_core.services import nic
from spider_core.services.common import NIC

routes = web.RouteTableDef()


@routes.post("/spider/nic")
@api(reply=wire.network_interface, body=wire.NIC_REQ)
async def create(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nic.create(spider(request), conn_name(request, body), req_info(body), body.get("IDTransformMode"))
    return reply(request, wire.network_interface(info))


@routes.get("/spider/nic")
@api(reply={"nic": [wire.network_interface]})
async def list_all(request: web.Request) -> web.Response:
    body = await bind(request)
    items = await nic.list_all(spider(request), conn_name(request, body))
    return reply(request, {"nic": [wire.network_interface(i) for i in items]})


@routes.get("/spider/nic/{Name}")
@api(reply=wire.network_interface)
async def get(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nic.get(spider(request), conn_name(request, body), path(request, "Name"))
    return reply(request, wire.network_interface(info))


@routes.delete("/spider/nic/{Name}")
@api(reply=wire.result, body=DELETE_REQ, flat=True, query=("ConnectionName", "force"))
async def delete(request: web.Request) -> web.Response:
    raw = await bind(request)
    ok = await nic.delete(spider(request), conn_name(request, raw), path(request, "Name"), body_force(request, raw))
    return reply(request, wire.result(ok))


@routes.put("/spider/nic/{Name}/attach")
@api(reply=wire.network_interface, body=wire.VM_NAME_REQ)
async def attach(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nic.attach(spider(request), conn_name(request, body), path(request, "Name"),
                            req_info(body).get("VMName", ""))
    return reply(request, wire.network_interface(info))


@routes.put("/spider/nic/{Name}/detach")
@api(reply=wire.result)
async def detach(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.result(await nic.detach(spider(request), conn_name(request, body),
                                                       path(request, "Name"))))


@routes.post("/spider/nic/{Name}/privateip")
@api(reply=wire.network_interface, body=wire.NIC_IP_REQ)
async def add_private_ip(request: web.Request) -> web.Response:
    body = await bind(request)
    info = await nic.add_private_ip(spider(request), conn_name(request, body), path(request, "Name"),
                                    req_info(body).get("PrivateIP", ""))
    return reply(request, wire.network_interface(info))


@routes.delete("/spider/nic/{Name}/privateip/{IP}")
@api(reply=wire.result)
async def remove_private_ip(request: web.Request) -> web.Response:
    body = await bind(request)
    ok = await nic.remove_private_ip(spider(request), conn_name(request, body), path(request, "Name"),
                                     path(request, "IP"))
    return reply(request, wire.result(ok))


@routes.get("/spider/nic/{Name}/osconfigscript")
@api(reply={"ConnectionName": str, "NICName": str, "Script": str})
async def os_config_script(request: web.Request) -> web.Response:
    body = await bind(request)
    name = path(request, "Name")
    connection = conn_name(request, body)
    script = await nic.os_config_script(spider(request), connection, name)
    return reply(request, {"ConnectionName": connection, "NICName": name, "Script": script})


management.add(routes, "nic", NIC, nic.service, wire.network_interface)
