"""Tag routes (CB-Spider's TagRest): add, list, get and remove a resource's tags; find tags by keyword.

``POST /spider/tag/find`` is CB-Spider's FindTag handler (in its TagRest, not yet routed there), with
its body ``{"ConnectionName", "ReqInfo": {"ResourceType", "Keyword"}}``."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.errors import SpiderError
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, path, query, reply, req_info, spider
from spider_core.services import tag

routes = web.RouteTableDef()
MISSING = "Missing required query parameters"
TARGET = ("ConnectionName", "ResourceType", "ResourceName")


def _query_target(request: web.Request) -> tuple[str, str, str]:
    connection, rtype, name = (query(request, k) for k in ("ConnectionName", "ResourceType", "ResourceName"))
    if not connection or not rtype or not name:
        raise SpiderError(MISSING, status=400)
    return connection, rtype, name


@routes.post("/spider/tag")
@api(reply=wire.kv, body=wire.TAG_ADD_REQ)
async def add(request: web.Request) -> web.Response:
    body = await bind(request)
    info = req_info(body)
    kv = await tag.add(spider(request), conn_name(request, body), info.get("ResourceType", ""),
                       info.get("ResourceName", ""), info.get("Tag") or {})
    return reply(request, wire.kv(kv))


@routes.get("/spider/tag")
@api(reply={"tag": [wire.kv], "resourceType": str}, query=TARGET, connection=False, errors=(400,))
async def list_tags(request: web.Request) -> web.Response:
    connection, rtype, name = _query_target(request)
    word = tag.rs_type(rtype, status=400)
    tags = await tag.list_tags(spider(request), connection, word, name)
    return reply(request, {"tag": [wire.kv(t) for t in tags], "resourceType": tag.RS_TYPES[word]})


@routes.post("/spider/tag/find")
@api(reply={"tag": [wire.tag_info]}, body=wire.TAG_FIND_REQ)
async def find(request: web.Request) -> web.Response:
    body = await bind(request)
    info = req_info(body)
    found = await tag.find(spider(request), conn_name(request, body), info.get("ResourceType", ""),
                           info.get("Keyword", ""))
    return reply(request, {"tag": [wire.tag_info(t) for t in found]})


@routes.get("/spider/tag/{Key}")
@api(reply=wire.kv, query=TARGET, connection=False, errors=(400,))
async def get(request: web.Request) -> web.Response:
    connection, rtype, name = _query_target(request)
    key = path(request, "Key")
    try:
        word = tag.rs_type(rtype, status=400)
    except SpiderError:
        raise SpiderError("Invalid resource type", status=400) from None
    return reply(request, wire.kv(await tag.get(spider(request), connection, word, name, key)))


@routes.delete("/spider/tag/{Key}")
@api(reply=wire.result, body=wire.TAG_REMOVE_REQ)
async def remove(request: web.Request) -> web.Response:
    body = await bind(request)
    info = req_info(body)
    ok = await tag.remove(spider(request), conn_name(request, body), info.get("ResourceType", ""),
                          info.get("ResourceName", ""), path(request, "Key"))
    return reply(request, wire.result(ok))
