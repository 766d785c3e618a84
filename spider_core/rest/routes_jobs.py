"""Job routes: ``GET /spider/job/{Id}`` (``?wait=S`` long-polls), ``GET /spider/job`` (filters
``ConnectionName``, ``status``, ``limit``) and ``DELETE /spider/job/{Id}`` (cancel a queued job)."""

from __future__ import annotations

from aiohttp import web

from spider_core.errors import SpiderError
from spider_core.jobs import MAX_WAIT, STATUSES
from spider_core.rest.async_jobs import job_json
from spider_core.rest.contract import api
from spider_core.rest.transport import path, query, reply, spider

routes = web.RouteTableDef()


def _number(request: web.Request, key: str, default: float, upper: float) -> float:
    text = query(request, key).strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SpiderError(f"{key}: a number of seconds between 0 and {upper:g} (got '{text}')", status=400) from None
    if not 0 <= value <= upper:
        raise SpiderError(f"{key}: a number between 0 and {upper:g} (got '{text}')", status=400)
    return value


@routes.get("/spider/job/{Id}")
@api(reply=job_json, query=("wait",), connection=False, errors=(400, 404))
async def get(request: web.Request) -> web.Response:
    wait = _number(request, "wait", 0.0, MAX_WAIT)
    job = await spider(request).jobs.wait(path(request, "Id"), wait)
    return reply(request, job_json(job))


@routes.get("/spider/job")
@api(reply={"job": [job_json]}, query=("ConnectionName", "status", "limit"), connection=False, errors=(400,))
async def list_all(request: web.Request) -> web.Response:
    wanted = tuple(s.strip().lower() for s in query(request, "status").split(",") if s.strip())
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise SpiderError(f"status: one or more of {', '.join(STATUSES)} (got '{', '.join(unknown)}')", status=400)
    limit = int(_number(request, "limit", 1000, 100_000))
    jobs = await spider(request).db.list_jobs(connection=query(request, "ConnectionName"), statuses=wanted,
                                              limit=limit)
    return reply(request, {"job": [job_json(j) for j in jobs]})


@routes.delete("/spider/job/{Id}")
@api(reply=job_json, connection=False, errors=(404, 409))
async def cancel(request: web.Request) -> web.Response:
    return reply(request, job_json(await spider(request).jobs.cancel(path(request, "Id"))))
