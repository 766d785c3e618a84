"""CB-Spider's transport rules for one request: body binding, ConnectionName, flags, JSON replies.

Handlers call ``bind`` to get the decoded body, ``conn_name`` for the connection, and ``reply`` to
answer; they never touch raw JSON or status codes for the success path.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core import wire
from spider_core.errors import SpiderError
from spider_core.rest.contract import API_KEY
from spider_core.services.context import Spider

SPIDER_KEY: web.AppKey[Spider] = web.AppKey("spider", Spider)
_BODY_KEY: web.RequestKey[Any] = web.RequestKey("spidertwin_body", object)

UNSUPPORTED_MEDIA = "code=415, message=Unsupported Media Type"


def spider(request: web.Request) -> Spider:
    return request.app[SPIDER_KEY]


async def bind(request: web.Request, schema: wire.Schema | None = None, *, flat: bool = False) -> dict:
    """The request body decoded against ``wire.envelope(schema)`` ({} when there is none);
    with ``flat``, against ``schema`` itself (connection-info bodies have no ReqInfo). Without a
    ``schema``, the route's declared one (``contract.api``) applies.

    Content-Type rules (contract 1.3): JSON is decoded; form and multipart bodies bind nothing;
    any other non-empty body is CB-Spider's 415 text.
    """
    cached = request.get(_BODY_KEY)
    if cached is None:
        # body_exists, not can_read_body: the admission middleware may have read it already (aiohttp
        # keeps the bytes), and a second bind must see the same body
        raw = await request.read() if request.body_exists else b""
        if not raw.strip():
            data: Any = {}
        else:
            ctype = request.content_type.lower()
            if ctype.startswith("application/json"):
                data = wire.parse_json(raw)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                data = {}
            else:
                raise SpiderError(UNSUPPORTED_MEDIA)
        request[_BODY_KEY] = cached = data
    if schema is None:
        contract = request.get(API_KEY)
        if contract is not None:
            schema, flat = contract.body, contract.flat
    return wire.decode(cached, schema if flat and schema is not None else wire.envelope(schema)) or {}


def query(request: web.Request, key: str) -> str:
    """A query parameter, matching its name case-insensitively (``connectionname`` works too)."""
    value = request.query.get(key)
    if value is not None:
        return value
    lowered = key.lower()
    for k, v in request.query.items():
        if k.lower() == lowered:
            return v
    return ""


def conn_name(request: web.Request, body: dict) -> str:
    """ConnectionName from the body first, then the query (contract 1.4)."""
    return body.get("ConnectionName") or query(request, "ConnectionName")


def req_info(body: dict) -> dict:
    return body.get("ReqInfo") or {}


def force(request: web.Request) -> bool:
    return request.query.get("force") == "true"


# Public IP and NIC deletes bind ``{"ConnectionName", "Force"}`` (no ReqInfo), as CB-Spider's do.
DELETE_REQ = {"ConnectionName": str, "Force": str}


def body_force(request: web.Request, body: dict) -> bool:
    """``Force: "true"`` in such a body, or ``?force=true`` as on every other delete."""
    return force(request) or (body.get("Force") or "").lower() == "true"


def reply(request: web.Request, obj: Any, status: int = 200) -> web.Response:
    pretty = bool(request.query_string) and "pretty" in request.query
    return web.Response(body=wire.dumps(obj, pretty).encode("utf-8"), status=status,
                        headers=_JSON_HEADERS)


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def message(request: web.Request, text: str, status: int) -> web.Response:
    return reply(request, {"message": text}, status)


def path(request: web.Request, name: str) -> str:
    return request.match_info.get(name, "")
