"""Price routes: CB-Spider's PriceInfoRest (``/productfamily``, ``/priceinfo/vm``) and its MC-Insight
routes (``/mcinsight/*``).

CB-Spider proxies ``/mcinsight/*`` to an Internet service; Spider answers them from the clouds it has
connections to (nothing leaves the machine): prices, specs and images of every registered connection of
the ``csp`` asked for, filtered by the query parameters MC-Insight takes."""

from __future__ import annotations

from aiohttp import web

from spider_core import wire
from spider_core.rest.transport import bind, conn_name, path, query, reply, spider
from spider_core.services import catalog_search, price
from spider_core.wire import kvs_in

routes = web.RouteTableDef()


@routes.get("/spider/productfamily/{RegionName}")
async def product_family(request: web.Request) -> web.Response:
    body = await bind(request)
    families = await price.product_families(spider(request), conn_name(request, body), path(request, "RegionName"))
    return reply(request, {"productfamily": families})


@routes.get("/spider/priceinfo/vm/{RegionName}")
@routes.post("/spider/priceinfo/vm/{RegionName}")
async def vm_price(request: web.Request) -> web.Response:
    body = await bind(request, wire.PRICE_REQ, flat=True)
    region = path(request, "RegionName")
    conn, prices = await price.vm_prices(spider(request), conn_name(request, body), region,
                                         kvs_in(body.get("FilterList")))
    simple = "simple" in request.query
    return reply(request, wire.cloud_price(conn.provider, region, prices, simple))


def _params(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    return {n: query(request, n) for n in names if query(request, n)}


@routes.get("/spider/mcinsight/price-info")
async def mcinsight_price(request: web.Request) -> web.Response:
    found = await catalog_search.prices(spider(request), _params(request, catalog_search.PRICE_PARAMS))
    return reply(request, found)


@routes.get("/spider/mcinsight/price-info/filters")
async def mcinsight_price_filters(request: web.Request) -> web.Response:
    return reply(request, await catalog_search.filters(spider(request), "price"))


@routes.get("/spider/mcinsight/vm-spec")
async def mcinsight_spec(request: web.Request) -> web.Response:
    found = await catalog_search.specs(spider(request), _params(request, catalog_search.SPEC_PARAMS))
    return reply(request, found)


@routes.get("/spider/mcinsight/vm-spec/filters")
async def mcinsight_spec_filters(request: web.Request) -> web.Response:
    return reply(request, await catalog_search.filters(spider(request), "spec"))


@routes.get("/spider/mcinsight/vm-image")
async def mcinsight_image(request: web.Request) -> web.Response:
    found = await catalog_search.images(spider(request), _params(request, catalog_search.IMAGE_PARAMS))
    return reply(request, found)


@routes.get("/spider/mcinsight/vm-image/filters")
async def mcinsight_image_filters(request: web.Request) -> web.Response:
    return reply(request, await catalog_search.filters(spider(request), "image"))
