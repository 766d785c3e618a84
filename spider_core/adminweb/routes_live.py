"""Live views CB-Spider's AdminWeb lacks: the CSP call history with filters, SP-Lock entries with the
request limiters, and asynchronous jobs (with cancel for queued ones).

Each page refreshes its table in place (``static/adminweb.js`` fetches the page again with
``?fragment=1`` and swaps the table), so filters stay in the URL and a reload shows the same view.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core.adminweb.web import BASE, action, field, page, render
from spider_core.calllog import RESOURCE_TYPES, call_log
from spider_core.errors import SpiderError
from spider_core.jobs import STATUSES
from spider_core.rest.routes_system import lock_and_limit_view
from spider_core.rest.transport import spider

routes = web.RouteTableDef()

CALLLOG_LIMITS = (50, 200, 1000, 5000)
CALLLOG_FILTERS = ("cloudos", "resourcetype", "resourcename", "connection")


def _limit(request: web.Request, choices: tuple[int, ...], default: int) -> int:
    try:
        value = int(request.query.get("limit", default))
    except ValueError:
        return default
    return value if value in choices else default


def fragment(template: str):
    """``?fragment=1`` renders only the live table (the page's script swaps it in)."""
    def decorate(fn):
        wrapped = page(template)(fn)

        async def handler(request: web.Request) -> web.Response:
            if request.query.get("fragment") == "1":
                context = await fn(request)
                return render(request, template.replace(".html.j2", ".table.j2"), context)
            return await wrapped(request)
        handler.__name__ = fn.__name__
        return handler
    return decorate


@routes.get(BASE + "/calllog")
@fragment("calllog.html.j2")
async def calllog(request: web.Request) -> dict[str, Any]:
    filters = {k: request.query.get(k, "").strip() for k in CALLLOG_FILTERS}
    errors_only = request.query.get("errors") == "on"
    limit = _limit(request, CALLLOG_LIMITS, 200)
    records = call_log.query(cloud_os=filters["cloudos"], resource_type=filters["resourcetype"],
                             resource_name=filters["resourcename"], connection=filters["connection"],
                             errors_only=errors_only, limit=limit)
    records.reverse()  # newest first
    return {"records": records, "filters": filters, "errors_only": errors_only, "limit": limit,
            "limits": CALLLOG_LIMITS, "resource_types": RESOURCE_TYPES}


@routes.get(BASE + "/locks")
@fragment("locks.html.j2")
async def locks(request: web.Request) -> dict[str, Any]:
    return {"view": await lock_and_limit_view(request), "plain": spider(request).locks.info()}


JOB_LIMITS = (50, 200, 1000)


@routes.get(BASE + "/jobs")
@fragment("jobs.html.j2")
async def jobs(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    status = request.query.get("status", "").strip().lower()
    wanted = (status,) if status in STATUSES else ()
    connection = request.query.get("connection", "").strip()
    limit = _limit(request, JOB_LIMITS, 200)
    rows = await sp.db.list_jobs(connection=connection, statuses=wanted, limit=limit)
    return {"jobs": rows, "status": status if wanted else "", "statuses": STATUSES, "connection": connection,
            "limit": limit, "limits": JOB_LIMITS, "running": sp.jobs.running, "queued": sp.jobs.queued}


@routes.post(BASE + "/jobs/cancel")
@action
async def cancel(request: web.Request, form: dict[str, Any]) -> str:
    job_id = field(form, "id")
    if not job_id:
        raise SpiderError("Choose a job to cancel.")
    job = await spider(request).jobs.cancel(job_id)
    return f"Job {job.id} is {job.status}."
