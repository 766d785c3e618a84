"""Price routes: CB-Spider's PriceInfoRest (``/productfamily``, ``/priceinfo/vm``) and its MC-Insight
routes (``/mcinsight/*``).

CB-Spider proxies ``/mcinsight/*`` to an Internet service; Spider answers them from the clouds it has
connections to (nothing leaves the machine): prices, specs and images of every registered connection of
the ``csp`` asked for, filtered by the query parameters MC-Insight takes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core import wire
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, path, query, reply, spider
from spider_core.services import catalog_search, price
from spider_core.wire import kvs_in

routes = web.RouteTableDef()


@routes.get("/spider/productfamily/{RegionName}")
@api(reply={"productfamily": [str]})
async def product_family(request: web.Request) -> web.Response:
    body = await bind(request)
    families = await price.product_families(spider(request), conn_name(request, body), path(request, "RegionName"))
    return reply(request, {"productfamily": families})


@routes.get("/spider/priceinfo/vm/{RegionName}")
@routes.post("/spider/priceinfo/vm/{RegionName}")
@api(reply=Any, body=wire.PRICE_REQ, flat=True, query=("ConnectionName", "simple"))
async def vm_price(request: web.Request) -> web.Response:
    body = await bind(request)
    region = path(request, "RegionName")
    conn, prices = await price.vm_prices(spider(request), conn_name(request, body), region,
                                         kvs_in(body.get("FilterList")))
    simple = "simple" in request.query
    return reply(request, wire.cloud_price(conn.provider, region, prices, simple))


def _search(params: tuple[str, ...], search):
    async def handler(request: web.Request) -> web.Response:
        return reply(request, await search(spider(request), {n: query(request, n) for n in params if query(request, n)}))
    return handler


def _filters(what: str):
    async def handler(request: web.Request) -> web.Response:
        return reply(request, await catalog_search.filters(spider(request), what))
    return handler


# MC-Insight's three searches and their filter-value lists
for _path, _what, _params, _search_fn in (
        ("price-info", "price", catalog_search.PRICE_PARAMS, catalog_search.prices),
        ("vm-spec", "spec", catalog_search.SPEC_PARAMS, catalog_search.specs),
        ("vm-image", "image", catalog_search.IMAGE_PARAMS, catalog_search.images)):
    routes.get(f"/spider/mcinsight/{_path}")(
        api(reply=Any, connection=False, query=_params, errors=(400,))(_search(_params, _search_fn)))
    routes.get(f"/spider/mcinsight/{_path}/filters")(api(reply=Any, connection=False)(_filters(_what)))
