"""Errors in each service's own envelope (Keystone, Nova, Cinder, Neutron, Glance, Octavia).

Handlers raise ``ApiError(status, message, code=...)``; the app's dispatcher renders it the way the
addressed service does, so a client sees exactly what the real service would send. ``code`` is the
Nova fault name or the Neutron error type; when omitted it is derived from the status.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.wire import ApiError  # defined with the wire format (its parsers raise it); rendered here

NOVA_FAULTS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
               429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable"}
NEUTRON_TYPES = {400: "BadRequest", 401: "NotAuthorized", 403: "PolicyNotAuthorized", 404: "NotFound",
                 405: "HTTPMethodNotAllowed", 409: "Conflict", 413: "RequestEntityTooLarge",
                 429: "OverLimit", 503: "ServiceUnavailable"}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large",
          415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error",
          503: "Service Unavailable"}


def not_found(message: str, code: str | None = None) -> ApiError:
    return ApiError(404, message, code=code)


def bad_request(message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, code=code)


def conflict(message: str, code: str | None = None) -> ApiError:
    return ApiError(409, message, code=code)


def body_for(service: str, err: ApiError) -> tuple[Any, str]:
    """``(body, content_type)`` of an error in ``service``'s style."""
    status = err.status
    if service in ("compute", "volume"):   # Cinder answers with Nova's fault envelope
        fault = err.code or NOVA_FAULTS.get(status, "computeFault")
        inner: dict[str, Any] = {"code": status, "message": err.message}
        if err.retry_after is not None:
            inner["retryAfter"] = str(err.retry_after)
        return {fault: inner}, wire.JSON
    if service == "network":
        return {"NeutronError": {"type": err.code or NEUTRON_TYPES.get(status, "NeutronError"),
                                 "message": err.message, "detail": ""}}, wire.JSON
    if service == "image":
        title = TITLES.get(status, "Error")
        return f"{status} {title}\n\n{err.message}\n\n", "text/plain"
    if service == "load-balancer":
        return {"faultcode": "Client" if status < 500 else "Server", "faultstring": err.message,
                "debuginfo": None}, wire.JSON
    if service == "admin":
        return {"error": {"code": status, "message": err.message}}, wire.JSON
    return {"error": {"code": status, "message": err.message, "title": TITLES.get(status, "Error")}}, wire.JSON


def render(service: str, err: ApiError, extra_headers: dict[str, str] | None = None) -> web.Response:
    body, ctype = body_for(service, err)
    headers = dict(err.headers)
    if extra_headers:
        headers.update(extra_headers)
    if ctype == wire.JSON:
        return web.Response(status=err.status, body=wire.dumps(body), content_type=ctype, headers=headers)
    return web.Response(status=err.status, text=body, content_type=ctype, headers=headers)
