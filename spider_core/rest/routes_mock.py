"""MOCK fault admin (``mock_driver.faults``): the rules of Cloud-Twin's ``/_twin/faults`` for MOCK.

``GET /spider/mock/faults`` lists, ``POST`` adds one rule or a list (all or nothing, 400 naming the bad
field), ``DELETE`` removes all, ``DELETE /spider/mock/faults/{Id}`` one; ``GET /spider/mock/events``
(``?since=N&kind=fault.throttle&rule=ID&limit=``) shows what was injected into which call.
"""

from __future__ import annotations

import json

from typing import Any

from aiohttp import web

from mock_driver.faults import FAULTS
from spider_core.errors import SpiderError
from spider_core.rest.contract import api
from spider_core.rest.transport import path, query, reply

routes = web.RouteTableDef()


@routes.get("/spider/mock/faults")
@api(reply={"faults": [Any]}, connection=False)
async def list_faults(request: web.Request) -> web.Response:
    return reply(request, {"faults": FAULTS.public()})


@routes.post("/spider/mock/faults")
@api(reply={"faults": [Any]}, body=Any, flat=True, connection=False, errors=(400,))
async def add_faults(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        doc = json.loads(raw or b"null")
    except ValueError as exc:
        raise SpiderError(f"the body is not JSON: {exc}", status=400) from None
    if isinstance(doc, dict) and isinstance(doc.get("faults"), list):
        doc = doc["faults"]
    try:
        rules = FAULTS.add(doc)
    except ValueError as exc:
        raise SpiderError(str(exc), status=400) from None
    return reply(request, {"faults": [r.public(r.start) for r in rules]})


@routes.delete("/spider/mock/faults")
@api(reply={"removed": int}, connection=False)
async def clear_faults(request: web.Request) -> web.Response:
    return reply(request, {"removed": FAULTS.clear()})


@routes.delete("/spider/mock/faults/{Id}")
@api(reply={"removed": int}, connection=False, errors=(404,))
async def remove_fault(request: web.Request) -> web.Response:
    rule_id = path(request, "Id")
    if not FAULTS.remove(rule_id):
        raise SpiderError(f"fault '{rule_id}' not found", status=404)
    return reply(request, {"removed": 1})


@routes.get("/spider/mock/events")
@api(reply={"events": [Any], "last": int, "counts": {}}, query=("since", "kind", "rule", "limit"),
     connection=False, errors=(400,))
async def events(request: web.Request) -> web.Response:
    def number(key: str, default: int) -> int:
        text = query(request, key)
        if not text:
            return default
        if not text.isdecimal():
            raise SpiderError(f"{key}: a whole number (got '{text}')", status=400)
        return int(text)

    kinds = [k for k in query(request, "kind").split(",") if k]
    found = FAULTS.events.query(since=number("since", 0), kinds=kinds, rule=query(request, "rule") or None,
                                limit=number("limit", 1000))
    return reply(request, {"events": found, "last": FAULTS.events.last_seq(), "counts": dict(FAULTS.events.counts)})
