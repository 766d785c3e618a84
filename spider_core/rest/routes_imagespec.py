"""VM image+spec favourites and recents (CB-Spider's ``/vm/imagespecfavorite`` and ``/vm/imagespecrecent``).

These literal paths are registered before ``/spider/vm/{Name}`` (``rest.app``), so a VM can never
shadow them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core.errors import SpiderError
from spider_core import wire
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, query, reply, spider
from spider_core.services import imagespec

routes = web.RouteTableDef()
_KEY = ("CSP", "Region", "Zone", "ImageName", "SpecName")
FAVORITE_REQ = {name: str for name in imagespec.FIELDS}
BULK_REQ = {"records": [Any]}
BULK_REPLY = {"inserted": int, "skipped": int, "total": int}


def _query(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    return {n: query(request, n) for n in names}


def _message(request: web.Request, text: str) -> web.Response:
    return reply(request, {"message": text})


@routes.get("/spider/vm/imagespecfavorite")
@api(reply=[Any], connection=False, query=("CSP", "Region", "Zone", "SortBy", "SortOrder"), errors=(400,))
async def list_favorite(request: web.Request) -> web.Response:
    q = _query(request, ("CSP", "Region", "Zone", "SortBy", "SortOrder"))
    return reply(request, await imagespec.listing(spider(request), imagespec.FAVORITE, q["CSP"], q["Region"],
                                                  q["Zone"], q["SortBy"], q["SortOrder"]))


@routes.post("/spider/vm/imagespecfavorite")
@api(reply=wire.MESSAGE, body=FAVORITE_REQ, flat=True, connection=False, query=imagespec.FIELDS, errors=(400,))
async def add_favorite(request: web.Request) -> web.Response:
    if request.body_exists and request.content_type.lower().startswith("application/json"):
        try:
            values = await bind(request)
        except SpiderError:
            raise SpiderError("Invalid request body", status=400) from None
    else:
        values = _query(request, imagespec.FIELDS)
    return _message(request, await imagespec.add_favorite(spider(request), values))


@routes.delete("/spider/vm/imagespecfavorite")
@api(reply=wire.MESSAGE, connection=False, query=_KEY, errors=(400,))
async def delete_favorite(request: web.Request) -> web.Response:
    return _message(request, await imagespec.delete(spider(request), imagespec.FAVORITE, _query(request, _KEY)))


async def _bulk(request: web.Request, kind: str) -> web.Response:
    try:
        body = await bind(request)
    except SpiderError as exc:
        raise SpiderError(f"Invalid request body: {exc.message}", status=400) from None
    return reply(request, await imagespec.bulk_import(spider(request), kind, body.get("records")))


@routes.post("/spider/vm/imagespecfavorite/bulk")
@api(reply=BULK_REPLY, body=BULK_REQ, flat=True, connection=False, errors=(400,))
async def bulk_favorite(request: web.Request) -> web.Response:
    return await _bulk(request, imagespec.FAVORITE)


@routes.get("/spider/vm/imagespecrecent")
@api(reply=[Any], connection=False, query=("CSP", "Region", "Zone", "Limit", "SortBy", "SortOrder"), errors=(400,))
async def list_recent(request: web.Request) -> web.Response:
    q = _query(request, ("CSP", "Region", "Zone", "Limit", "SortBy", "SortOrder"))
    limit = int(q["Limit"]) if q["Limit"].lstrip("-").isdecimal() else 10
    return reply(request, await imagespec.listing(spider(request), imagespec.RECENT, q["CSP"], q["Region"], q["Zone"],
                                                  q["SortBy"], q["SortOrder"], limit))


@routes.delete("/spider/vm/imagespecrecent")
@api(reply=wire.MESSAGE, connection=False, query=_KEY, errors=(400,))
async def delete_recent(request: web.Request) -> web.Response:
    return _message(request, await imagespec.delete(spider(request), imagespec.RECENT, _query(request, _KEY)))


@routes.post("/spider/vm/imagespecrecent/bulk")
@api(reply=BULK_REPLY, body=BULK_REQ, flat=True, connection=False, errors=(400,))
async def bulk_recent(request: web.Request) -> web.Response:
    return await _bulk(request, imagespec.RECENT)
