"""Submitting a request as a job, and replaying a job's request through its route handler.

Two ways to ask (both documented): ``?async=true`` on the URL, which is explicit and refused with 400
on a route that cannot run asynchronously, or the standard ``Prefer: respond-async`` header (RFC
7240), which is a preference: a route that cannot honour it simply answers synchronously. Either way
the answer is ``202 Accepted`` with the job, a ``Location: /spider/job/{id}`` header and
``Preference-Applied: respond-async`` when the header asked.

Cheap checks happen before the job exists, so bad input gets its error at once and nothing is
queued: the body must decode, ConnectionName must be given and name a registered connection. The rest
(names, CIDRs, existence) is the route's own validation when the job runs, with CB-Spider's texts.

A job records the request (method, route, path parameters, query, body text); running it replays
that through the same handler a synchronous request reaches, so the job's ``Result`` is exactly the
synchronous answer and its ``Error`` exactly the synchronous message.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from spider_core import errors, wire
from spider_core.errors import SpiderError
from spider_core.jobs import Execute
from spider_core.metadb import JobRow
from spider_core.rest.transport import SPIDER_KEY, bind, conn_name, query, reply

log = logging.getLogger(__name__)

# (method, route) -> (operation, resource, where the name comes from): the routes that can run as jobs
ASYNC_ROUTES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("POST", "/spider/vpc"): ("create", "vpc", "ReqInfo.Name"),
    ("DELETE", "/spider/vpc/{Name}"): ("delete", "vpc", "Name"),
    ("POST", "/spider/vpc/{VPCName}/subnet"): ("create", "subnet", "ReqInfo.Name"),
    ("DELETE", "/spider/vpc/{VPCName}/subnet/{SubnetName}"): ("delete", "subnet", "SubnetName"),
    ("DELETE", "/spider/vpc/{VPCName}/cspsubnet/{Id}"): ("delete-csp", "subnet", "Id"),
    ("DELETE", "/spider/cspvpc/{Id}"): ("delete-csp", "vpc", "Id"),
    ("POST", "/spider/securitygroup"): ("create", "sg", "ReqInfo.Name"),
    ("DELETE", "/spider/securitygroup/{Name}"): ("delete", "sg", "Name"),
    ("POST", "/spider/securitygroup/{SGName}/rules"): ("add-rules", "sg", "SGName"),
    ("DELETE", "/spider/securitygroup/{SGName}/rules"): ("remove-rules", "sg", "SGName"),
    ("DELETE", "/spider/cspsecuritygroup/{Id}"): ("delete-csp", "sg", "Id"),
    ("POST", "/spider/keypair"): ("create", "keypair", "ReqInfo.Name"),
    ("DELETE", "/spider/keypair/{Name}"): ("delete", "keypair", "Name"),
    ("DELETE", "/spider/cspkeypair/{Id}"): ("delete-csp", "keypair", "Id"),
    ("POST", "/spider/vm"): ("create", "vm", "ReqInfo.Name"),
    ("DELETE", "/spider/vm/{Name}"): ("delete", "vm", "Name"),
    ("PUT", "/spider/controlvm/{Name}"): ("control", "vm", "Name"),
    ("GET", "/spider/controlvm/{Name}"): ("control", "vm", "Name"),
    ("DELETE", "/spider/cspvm/{Id}"): ("delete-csp", "vm", "Id"),
    ("POST", "/spider/nlb"): ("create", "nlb", "ReqInfo.Name"),
    ("DELETE", "/spider/nlb/{Name}"): ("delete", "nlb", "Name"),
    ("POST", "/spider/nlb/{Name}/vms"): ("add-vms", "nlb", "Name"),
    ("DELETE", "/spider/nlb/{Name}/vms"): ("remove-vms", "nlb", "Name"),
    ("DELETE", "/spider/cspnlb/{Id}"): ("delete-csp", "nlb", "Id"),
    ("POST", "/spider/disk"): ("create", "disk", "ReqInfo.Name"),
    ("DELETE", "/spider/disk/{Name}"): ("delete", "disk", "Name"),
    ("DELETE", "/spider/cspdisk/{Id}"): ("delete-csp", "disk", "Id"),
    ("POST", "/spider/myimage"): ("create", "myimage", "ReqInfo.Name"),
    ("DELETE", "/spider/myimage/{Name}"): ("delete", "myimage", "Name"),
    ("DELETE", "/spider/cspmyimage/{Id}"): ("delete-csp", "myimage", "Id"),
    ("POST", "/spider/publicip"): ("create", "publicip", "ReqInfo.Name"),
    ("DELETE", "/spider/publicip/{Name}"): ("delete", "publicip", "Name"),
    ("POST", "/spider/nic"): ("create", "nic", "ReqInfo.Name"),
    ("DELETE", "/spider/nic/{Name}"): ("delete", "nic", "Name"),
    ("DELETE", "/spider/destroy"): ("destroy", "all", ""),
}

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def route_key(request: web.Request) -> tuple[str, str]:
    resource = request.match_info.route.resource
    return request.method, resource.canonical if resource is not None else ""


def wants_async(request: web.Request) -> tuple[bool, bool]:
    """(run as a job, asked by the header): ``?async=true`` is explicit and checked; ``Prefer:
    respond-async`` applies where it can."""
    flag = query(request, "async").strip().lower() if request.query_string else ""
    if flag in _TRUE:
        if route_key(request) not in ASYNC_ROUTES:
            method, path = route_key(request)
            raise SpiderError(f"async=true is for creates, deletes and VM control; {method} {path or request.path} "
                              "answers synchronously only", status=400)
        return True, False
    if flag and flag not in _FALSE:
        raise SpiderError(f"async: true or false (got '{flag}')", status=400)
    if not flag and "respond-async" in request.headers.get("Prefer", "").lower():
        return route_key(request) in ASYNC_ROUTES, True
    return False, False


@wire.shaped({"Id": str, "Operation": str, "Resource": str, "Name": str, "ConnectionName": str, "Status": str,
              "Origin": str, "Method": str, "Path": str, "CreatedAt": str, "StartedAt": wire.Null(str),
              "FinishedAt": wire.Null(str), "Result": Any, "Error": wire.Null(str)})
def job_json(job: JobRow) -> dict[str, Any]:
    """A job as the API shows it (CB-Spider's casing)."""
    return {"Id": job.id, "Operation": job.operation, "Resource": job.resource, "Name": job.name,
            "ConnectionName": job.connection, "Status": job.status, "Origin": job.origin,
            "Method": job.request.get("method", ""), "Path": job.request.get("path", ""),
            "CreatedAt": job.created_at, "StartedAt": job.started_at, "FinishedAt": job.finished_at,
            "Result": job.result, "Error": job.error}


async def submit(request: web.Request, by_header: bool) -> web.Response:
    """Validate what can be validated now, store the job, answer 202."""
    sp = request.app[SPIDER_KEY]
    operation, resource, name_from = ASYNC_ROUTES[route_key(request)]
    body = await bind(request)
    raw = await request.read()  # bind has read it: aiohttp keeps the bytes
    name = conn_name(request, body)
    if not name:
        raise errors.connection_name_empty()
    if await sp.db.get_connection(name) is None:
        raise errors.does_not_exist(name)
    target = _name(request, name_from, raw)
    if operation == "control":
        operation = f"control-{query(request, 'action').strip().lower() or 'none'}"
    record = {"method": request.method, "route": route_key(request)[1], "path": request.path,
              "match_info": dict(request.match_info), "query": [[k, v] for k, v in request.query.items()
                                                                if k.lower() != "async"],
              "content_type": request.content_type, "body": raw.decode("utf-8", errors="replace")}
    job = await sp.jobs.submit(JobRow(id="", operation=operation, resource=resource, name=target, connection=name,
                                      status="queued", origin="async", request=record))
    response = reply(request, job_json(job), 202)
    response.headers["Location"] = f"/spider/job/{job.id}"
    if by_header:
        response.headers["Preference-Applied"] = "respond-async"
    return response


def _name(request: web.Request, name_from: str, raw: bytes) -> str:
    if not name_from:
        return ""
    if not name_from.startswith("ReqInfo."):
        return request.match_info.get(name_from, "")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return ""
    info = next((v for k, v in data.items() if k.lower() == "reqinfo"), None) if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return ""
    value = next((v for k, v in info.items() if k.lower() == "name"), "")
    return value if isinstance(value, str) else ""


class StoredRequest:
    """Just enough of ``aiohttp.web.Request`` for a route handler to run a recorded request again:
    ``app``, ``method``, ``path``, ``match_info``, ``query``, ``headers``, the body and per-request
    storage (what ``spider_core.rest.transport`` reads)."""

    def __init__(self, app: web.Application, record: dict[str, Any]) -> None:
        self.app = app
        self.method = record["method"]
        self.path = record["path"]
        self.match_info = dict(record.get("match_info") or {})
        self.query = MultiDict(record.get("query") or [])
        self.query_string = "&".join(f"{k}={v}" for k, v in self.query.items())
        self.headers = CIMultiDict()
        self.content_type = record.get("content_type") or "application/json"
        self._body = (record.get("body") or "").encode("utf-8")
        self.body_exists = self.can_read_body = bool(self._body)
        self._store: dict[Any, Any] = {}
        self.host = "spider-job"

    async def read(self) -> bytes:
        return self._body

    def get(self, key: Any, default: Any = None) -> Any:
        return self._store.get(key, default)

    def __getitem__(self, key: Any) -> Any:
        return self._store[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._store[key] = value


Handler = Callable[[Any], Awaitable[web.StreamResponse]]


def executor(app: web.Application) -> Execute:
    """The job runner's ``execute``: replay a job's request through its route handler."""
    handlers: dict[tuple[str, str], Handler] = {}
    for route in app.router.routes():
        if route.resource is not None and (route.method, route.resource.canonical) in ASYNC_ROUTES:
            handlers[(route.method, route.resource.canonical)] = route.handler

    async def execute(job: JobRow) -> tuple[bool, Any, str | None]:
        handler = handlers.get((job.request.get("method", ""), job.request.get("route", "")))
        if handler is None:
            return False, None, f"this server cannot run {job.request.get('method')} {job.request.get('route')}"
        try:
            response = await handler(StoredRequest(app, job.request))
        except SpiderError as exc:
            return False, None, exc.message
        except web.HTTPException as exc:
            return False, None, exc.reason
        body = getattr(response, "body", b"") or b""
        try:
            result = json.loads(body) if body else {}
        except ValueError:
            result = body.decode("utf-8", errors="replace")
        if response.status >= 400:
            message = result.get("message") if isinstance(result, dict) else str(result)
            return False, None, message
        return True, result, None

    return execute
