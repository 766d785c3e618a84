"""The aiohttp application: middlewares (CORS, trailing slash, auth, errors) and route registration."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import time

from aiohttp import web

from spider_core import adminweb, lifecycle
from spider_core.admission import Overloaded
from spider_core.errors import SpiderError
from spider_core.rest import (
    async_jobs,
    routes_apidoc,
    routes_catalog,
    routes_connection,
    routes_disk,
    routes_imagespec,
    routes_jobs,
    routes_keypair,
    routes_mock,
    routes_myimage,
    routes_nic,
    routes_nlb,
    routes_price,
    routes_publicip,
    routes_security,
    routes_system,
    routes_tag,
    routes_vm,
    routes_vpc,
)
from spider_core.rest.contract import OPEN_PATHS, is_open
from spider_core.rest.transport import SPIDER_KEY, bind, conn_name, message, query
from spider_core.services.context import Spider
from spider_core.splock import REQUEST as LOCK_REQUEST

log = logging.getLogger(__name__)

# Largest request body accepted. CB-Spider's bodies are a few KiB; a bigger one is refused whole.
MAX_BODY = 4 * 1024 * 1024
# Longest request line and header accepted (aiohttp's default is 8190 bytes): CB-Spider (Go net/http)
# takes 1 MB, so a resource created with a very long name can be read and deleted by its URL too.
MAX_LINE = 1024 * 1024

# A path parameter is any text up to the next "/" (aiohttp's default also refuses "{" and "}", so
# a resource named "a{b}" could be created but never read or deleted).
_PARAM = re.compile(r"\{(\w+)\}")


# Paths outside the admission bound: probes and monitoring must answer while the server sheds load.
UNGATED_PATHS = OPEN_PATHS | {"/spider/metrics", "/spider/splockinfo", "/spider/splockstats", "/spider/limitinfo",
                              "/spider/calllog"}

_CORS = {"Access-Control-Allow-Origin": "*",
         "Access-Control-Allow-Methods": "GET, HEAD, PUT, PATCH, POST, DELETE",
         "Access-Control-Allow-Headers": "Authorization, Content-Type"}


def _authorized(request: web.Request, expected: bytes) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected)


def _middleware(username: str | None, password: str | None):
    """One middleware for CORS preflight, trailing-slash redirects, auth and error bodies (one layer
    instead of three: this runs on every request)."""
    expected = f"{username}:{password}".encode() if username and password else None

    @web.middleware
    async def transport(request: web.Request, handler):
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=_CORS)
        path = request.path
        if len(path) > len("/spider/") and path.endswith("/") and path.startswith("/spider/") \
                and not path.startswith(("/spider/api", "/spider/s3")):
            target = path.rstrip("/")
            if request.query_string:
                target += "?" + request.query_string
            return web.Response(status=301, headers={"Location": target, **_CORS})
        # Auth runs after routing (an unknown path without credentials is 401, as in CB-Spider).
        if expected is not None and not is_open(path) and not _authorized(request, expected):
            response = message(request, "Unauthorized", 401)
        else:
            try:
                response = await handler(request)
            except SpiderError as exc:
                response = message(request, exc.message, exc.status)
            except web.HTTPRequestEntityTooLarge:
                response = message(request, f"code=413, message=Request Entity Too Large: the body limit is "
                                            f"{MAX_BODY // (1024 * 1024)} MiB", 413)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = message(request, exc.reason, exc.status)
            except Exception:  # noqa: BLE001 - never send a traceback to a client
                log.exception("unhandled error in %s %s", request.method, request.path)
                response = message(request, "Internal Server Error", 500)
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return transport


@web.middleware
async def _observe(request: web.Request, handler):
    """Request count and latency by route and status (``spider_core.metrics``); names the request for
    the SP-Locks it takes, so a long lock wait shows which request holds the key."""
    started = time.perf_counter()
    LOCK_REQUEST.set(f"{request.method} {request.path}")
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        metrics = getattr(request.app[SPIDER_KEY], "metrics", None)
        if metrics is not None:
            resource = getattr(request.match_info.route, "resource", None)
            metrics.observe_request(resource.canonical if resource is not None else "unmatched", request.method,
                                    status, time.perf_counter() - started)


def _unavailable(request: web.Request, text: str, retry_after: int) -> web.Response:
    response = message(request, text, 503)
    response.headers["Retry-After"] = str(retry_after)
    return response


async def _connection_of(request: web.Request) -> str:
    """The request's connection for its per-connection bound; '' when it has none (or a body the
    handler will refuse with its own message)."""
    name = query(request, "ConnectionName") if request.query_string else ""
    if name or not request.body_exists:
        return name
    try:
        return conn_name(request, await bind(request))
    except SpiderError:
        return ""


@web.middleware
async def _admit(request: web.Request, handler):
    """The load bound (``spider_core.admission``), the SIGTERM drain, and async submission."""
    sp = request.app[SPIDER_KEY]
    admission = getattr(sp, "admission", None)
    path = request.path
    if admission is None or path in UNGATED_PATHS or path.startswith("/spider/mock/") or \
            (request.method == "GET" and path.startswith("/spider/job")):
        return await handler(request)
    if sp.phase == "draining":
        return _unavailable(request, "Spider is shutting down: it finishes the work in flight and takes no new "
                                     "work; retry on a running server", 5)
    run_async, by_header = async_jobs.wants_async(request)
    try:
        ticket = await admission.admit(await _connection_of(request))
    except Overloaded as exc:
        sp.metrics.rejected.labels(exc.scope).inc()
        return _unavailable(request, exc.message, exc.retry_after)
    try:
        if run_async:
            return await async_jobs.submit(request, by_header)
        return await handler(request)
    finally:
        ticket.release()


async def _start_background(app: web.Application) -> None:
    """Recovery after a restart and the job runner start with the app (not at import: the route
    tests build an app around a stand-in object)."""
    sp = app[SPIDER_KEY]
    if isinstance(sp, Spider):
        sp.spawn(lifecycle.recover(sp, async_jobs.executor(app)))


def create_app(spider: Spider, *, username: str | None = None, password: str | None = None) -> web.Application:
    app = web.Application(middlewares=[_observe, _middleware(username, password), _admit], client_max_size=MAX_BODY,
                          handler_args={"max_line_size": MAX_LINE, "max_field_size": MAX_LINE})
    app[SPIDER_KEY] = spider
    # literal paths first: /spider/vm/imagespecfavorite must not be taken for a VM named so
    for module in (routes_system, routes_connection, routes_catalog, routes_vpc, routes_security, routes_keypair,
                   routes_imagespec, routes_vm, routes_nlb, routes_disk, routes_myimage, routes_tag, routes_publicip,
                   routes_nic, routes_price, routes_jobs, routes_mock, routes_apidoc):
        for route in module.routes:
            add = getattr(app.router, "add_" + route.method.lower())  # add_get also answers HEAD, as before
            add(_PARAM.sub(r"{\1:[^/]+}", route.path), route.handler, **route.kwargs)
    if adminweb.enabled():
        adminweb.setup(app)
    app.on_startup.append(_start_background)
    return app
