"""The admin API under ``/_twin`` (placeholder; the full API follows)."""

from __future__ import annotations

from aiohttp import web

from cloudtwin import wire
from cloudtwin.routing import Call, Router


async def health(call: Call) -> web.Response:
    return wire.json_response(200, {"status": "ok", "clouds": len(call.twin.clouds)})


def add_routes(r: Router) -> None:
    r.add("admin", "GET", "/health", health, "admin:health:get", auth=False)
