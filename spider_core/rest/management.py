"""The management routes every resource family has: /allX, /allXinfo, /countX, /cspX, /regX.

One builder instead of five copies: a family passes its kind, service module and JSON encoder.
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from spider_core import wire
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, path, reply, req_info, spider
from spider_core.services import common
from spider_core.services.common import Kind


def all_info_json(rtype: str, lists: dict, encode: Callable[[Any], dict]) -> dict:
    mapped = [encode(i) for i in lists["MappedInfoList"]]
    only_spider = [wire.iid(i) for i in lists["OnlySpiderList"]]
    only_csp = [encode(i) for i in lists["OnlyCSPInfoList"]]
    return {"ResourceType": rtype, "AllListInfo": {"MappedInfoList": mapped, "OnlySpiderList": only_spider,
                                                   "OnlyCSPInfoList": only_csp}}


def add(routes: web.RouteTableDef, word: str, kind: Kind, service: Any, encode: Callable[[Any], dict],
        *, delete_csp_reply: Callable[[Any], dict] = wire.result, reg_schema: dict = wire.REG_REQ) -> None:
    """Register /all<word>, /all<word>info, /count<word>[/{ConnectionName}], DELETE /csp<word>/{Id},
    POST /reg<word> and DELETE /reg<word>/{Name} for one family."""

    async def all_list(request: web.Request) -> web.Response:
        body = await bind(request)
        lists = await common.all_list(spider(request), conn_name(request, body), kind)
        return reply(request, {"AllList": {k: [wire.iid(i) for i in v] for k, v in lists.items()}})

    async def all_info(request: web.Request) -> web.Response:
        body = await bind(request)
        return reply(request, all_info_json(kind.rtype, await service.all_info(spider(request),
                                                                               conn_name(request, body)), encode))

    async def count(request: web.Request) -> web.Response:
        return reply(request, {"count": await common.count(spider(request), kind, path(request, "ConnectionName"))})

    async def delete_csp(request: web.Request) -> web.Response:
        body = await bind(request)
        return reply(request, delete_csp_reply(await service.delete_csp(spider(request), conn_name(request, body),
                                                                         path(request, "Id"))))

    async def register(request: web.Request) -> web.Response:
        body = await bind(request)
        return reply(request, encode(await service.register(spider(request), conn_name(request, body),
                                                            req_info(body))))

    async def unregister(request: web.Request) -> web.Response:
        body = await bind(request)
        return reply(request, wire.result(await service.unregister(spider(request), conn_name(request, body),
                                                                   path(request, "Name"))))

    iids = [wire.iid]
    infos = wire.Null([encode])
    count = api(reply=wire.COUNT, connection=False, tag=word)(count)
    routes.get(f"/spider/all{word}")(api(reply={"AllList": {"MappedList": iids, "OnlySpiderList": iids,
                                                            "OnlyCSPList": iids}}, tag=word)(all_list))
    routes.get(f"/spider/all{word}info")(api(reply={"ResourceType": str, "AllListInfo": {
        "MappedInfoList": infos, "OnlySpiderList": wire.Null(iids), "OnlyCSPInfoList": infos}}, tag=word)(all_info))
    routes.get(f"/spider/count{word}")(count)
    routes.get(f"/spider/count{word}/{{ConnectionName}}")(count)
    routes.delete(f"/spider/csp{word}/{{Id}}")(api(reply=delete_csp_reply, tag=word)(delete_csp))
    routes.post(f"/spider/reg{word}")(api(reply=encode, body=reg_schema, tag=word)(register))
    routes.delete(f"/spider/reg{word}/{{Name}}")(api(reply=wire.result, tag=word)(unregister))

