"""AdminWeb: the browser console at ``/spider/adminweb`` (CB-Spider's AdminWeb pages plus live views,
a Cloud-Twin page and report viewers).

Server-rendered Jinja2 pages over Spider's service layer (``spider_core.services``): the pages read and
change the same typed objects the REST routes turn into JSON, so no wire format is parsed twice and
no rule is written twice. Every state change is a POST form carrying a per-session CSRF token
(``session``); the app's Basic auth guards every page like any other route.
"""

from __future__ import annotations

import os

from aiohttp import web

from spider_core.adminweb import (routes_connection, routes_live, routes_multicloud, routes_reports, routes_resources,
                                  routes_twin, routes_vmside)
from spider_core.adminweb.web import setup_templates
from spider_core.rest.transport import SPIDER_KEY


def enabled() -> bool:
    """CB-Spider's ``ADMINWEB=ON|OFF`` (default ON)."""
    return os.environ.get("ADMINWEB", "ON").strip().upper() != "OFF"


def setup(app: web.Application) -> None:
    """Add every AdminWeb route and its static files to ``app``."""
    settings = getattr(app.get(SPIDER_KEY), "settings", None)   # a route table built without a Spider has none
    setup_templates(app, getattr(settings, "root", None))
    for module in (routes_connection, routes_resources, routes_vmside, routes_multicloud, routes_live, routes_twin,
                   routes_reports):
        app.router.add_routes(module.routes)
