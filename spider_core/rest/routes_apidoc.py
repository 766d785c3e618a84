"""The API description and its viewer: ``GET /spider/api/openapi.json`` (generated from this
server's route table by ``spider_core.rest.openapi``) and Swagger UI at ``/spider/api``, served from
the ``swagger-ui-bundle-v2`` package (no CDN)."""

from __future__ import annotations

import functools
import weakref
from pathlib import Path

from aiohttp import web

from spider_core.rest import openapi
from spider_core.rest.contract import DOCS_PATH, api
from spider_core.rest.transport import reply

routes = web.RouteTableDef()

# one description per application, built on first request (the route table is frozen by then)
_SPECS: "weakref.WeakKeyDictionary[web.Application, dict]" = weakref.WeakKeyDictionary()


def swagger_ui_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def swagger_page(spec_url: str, title: str) -> str:
    """Swagger UI's page for one description; its scripts and styles come from ``./static/``."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{DOCS_PATH}/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{DOCS_PATH}/static/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/static/swagger-ui-standalone-preset.js"></script>
<script src="{DOCS_PATH}/init.js" data-spec="{spec_url}"></script>
</body></html>
"""


# Kept out of the page so a strict Content-Security-Policy (no inline script) can apply.
INIT_JS = """(function () {
  var spec = document.currentScript.getAttribute("data-spec");
  window.ui = SwaggerUIBundle({url: spec, dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});
})();
"""


@routes.get(DOCS_PATH)
@api(hidden=True)
async def viewer(request: web.Request) -> web.Response:
    return web.Response(text=swagger_page(f"{DOCS_PATH}/openapi.json", "CB-Spider REST API (spidertwin)"),
                        content_type="text/html")


@routes.get(f"{DOCS_PATH}/init.js")
@api(hidden=True)
async def init_js(request: web.Request) -> web.Response:
    return web.Response(text=INIT_JS, content_type="application/javascript")


@routes.get(f"{DOCS_PATH}/openapi.json")
@api(reply={}, connection=False)
async def description(request: web.Request) -> web.Response:
    """This server's OpenAPI 3.1 description (built once: the route table is frozen after start)."""
    spec = _SPECS.get(request.app)
    if spec is None:
        spec = _SPECS[request.app] = openapi.build(request.app)
    return reply(request, spec)


@routes.get(f"{DOCS_PATH}/static/{{name}}")
@api(hidden=True)
async def static(request: web.Request) -> web.StreamResponse:
    """One of Swagger UI's own files (a name from its directory, never a path)."""
    name = request.match_info["name"]
    folder = swagger_ui_dir()
    if name not in _files(folder):
        raise web.HTTPNotFound()
    return web.FileResponse(folder / name, headers={"Cache-Control": "max-age=86400"})


@functools.lru_cache(maxsize=1)
def _files(folder: Path) -> frozenset[str]:
    return frozenset(p.name for p in folder.iterdir() if p.is_file())
