"""The aiohttp application: middlewares (CORS, trailing slash, auth, errors) and route registration."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from spider_core.errors import SpiderError
from spider_core.rest import (
    routes_catalog,
    routes_connection,
    routes_keypair,
    routes_nlb,
    routes_security,
    routes_system,
    routes_vm,
    routes_vpc,
)
from spider_core.rest.transport import SPIDER_KEY, message
from spider_core.services.context import Spider

log = logging.getLogger(__name__)

# Largest request body accepted. CB-Spider's bodies are a few KiB; a bigger one is refused whole.
MAX_BODY = 4 * 1024 * 1024

# Paths that never need credentials (contract 1.2).
OPEN_PATHS = frozenset({"/spider/endpointinfo", "/spider/version", "/spider/ver", "/spider/healthcheck",
                        "/spider/health", "/spider/ping", "/spider/readyz"})

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
        if expected is not None and path not in OPEN_PATHS and not _authorized(request, expected):
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


def create_app(spider: Spider, *, username: str | None = None, password: str | None = None) -> web.Application:
    app = web.Application(middlewares=[_middleware(username, password)], client_max_size=MAX_BODY)
    app[SPIDER_KEY] = spider
    for module in (routes_system, routes_connection, routes_catalog, routes_vpc, routes_security, routes_keypair,
                   routes_vm, routes_nlb):
        app.router.add_routes(module.routes)
    return app
