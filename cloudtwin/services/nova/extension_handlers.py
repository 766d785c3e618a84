"""Nova v2.1's extension list (``GET /extensions``), from ``data/nova_extensions.yaml``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router

EXTENSIONS_FILE = Path(__file__).resolve().parents[2] / "data" / "nova_extensions.yaml"


@lru_cache(maxsize=1)
def extensions() -> tuple[dict[str, Any], ...]:
    doc = yaml.safe_load(EXTENSIONS_FILE.read_text())
    return tuple({"name": e["name"], "alias": e["alias"], "description": e["description"],
                  "namespace": doc["namespace"], "updated": doc["updated"], "links": []}
                 for e in doc["extensions"])


async def list_extensions(call: Call) -> web.Response:
    return wire.json_response(200, {"extensions": list(extensions())})


async def get_extension(call: Call) -> web.Response:
    alias = call.params["alias"]
    found = next((e for e in extensions() if e["alias"] == alias), None)
    if found is None:
        raise ApiError(404, f"Extension {alias} could not be found.")
    return wire.json_response(200, {"extension": found})


def add_routes(r: Router) -> None:
    r.add("compute", "GET", "/v2.1/extensions", list_extensions, "compute:extension:list")
    r.add("compute", "GET", "/v2.1/extensions/{alias}", get_extension, "compute:extension:get")
