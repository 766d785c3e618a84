"""Connection management (CB-Spider's driver, credential, region and connection-config pages) and the
main page with server information and every connection's resource counts."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote
from typing import Any, Awaitable, Callable

from aiohttp import web

from spider_core import __version__
from spider_core.adminweb.web import BASE, STATIC_DIR, action, field, fields, page
from spider_core.errors import SpiderError
from spider_core.model import ConnectionConfigInfo, KeyValue
from spider_core.rest.transport import spider
from spider_core.services import connection
from spider_core.services.common import KEY, NLB, SG, VM, VPC, count
from spider_core.services.context import Spider

routes = web.RouteTableDef()

COUNTED = (("VPC", VPC), ("SG", SG), ("KeyPair", KEY), ("VM", VM), ("NLB", NLB))


def providers(sp: Spider) -> list[str]:
    """Every provider a form may name: CB-Spider's cloud OS list plus the drivers this server has."""
    return sorted(set(connection.cloud_os_list()) | {p.upper() for p in sp.registry.providers()})


def meta_keys(sp: Spider) -> str:
    """Provider -> {credential keys, region keys}, for the forms' script to fill the key fields."""
    out: dict[str, dict[str, list[str]]] = {}
    for provider in providers(sp):
        try:
            meta = connection.cloud_os_meta(provider)
        except SpiderError:
            continue
        out[provider] = {"Credential": [k for k in meta["Credential"] if k],
                         "Region": [k for k in meta["Region"] if k]}
    return json.dumps(out)


def key_values(form: dict[str, Any]) -> list[KeyValue]:
    """The form's ``key``/``value`` rows (blank keys dropped) as CB-Spider's KeyValue list."""
    keys, values = form.get("key", []), form.get("value", [])
    keys = keys if isinstance(keys, list) else [keys]
    values = values if isinstance(values, list) else [values]
    return [KeyValue(k.strip(), v.strip()) for k, v in zip(keys, values) if k.strip()]


@routes.get(BASE)
@page("main.html.j2")
async def main(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    configs = sorted(await sp.db.list_connections(), key=lambda c: c.config_name)

    async def counts(name: str) -> dict[str, int]:
        return {label: await count(sp, kind, name) for label, kind in COUNTED}

    tallies = await asyncio.gather(*(counts(c.config_name) for c in configs))
    ready, why = sp.readiness()
    return {"configs": list(zip(configs, tallies)), "labels": [label for label, _ in COUNTED],
            "version": f"CB-Spider spidertwin-v{__version__}", "phase": sp.phase, "ready": ready, "why": why,
            "host": request.host, "lock_mode": sp.locks.mode,
            "jobs": {"running": sp.jobs.running, "queued": sp.jobs.queued}}


# ---- drivers ---------------------------------------------------------------------------------------

@routes.get(f"{BASE}/driver")
@page("driver.html.j2")
async def drivers(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    return {"items": sorted(await sp.db.list_drivers(), key=lambda d: d.driver_name), "providers": providers(sp)}


@routes.post(f"{BASE}/driver")
@action
async def driver_create(request: web.Request, form: dict[str, Any]) -> str:
    provider = field(form, "ProviderName")
    lib = field(form, "DriverLibFileName") or f"{provider.lower()}-driver-v1.0.so"
    info = await connection.register_driver(spider(request), field(form, "DriverName"), provider, lib)
    return f"Driver '{info.driver_name}' ({info.provider_name}) registered."


def deleter(what: str, delete: Callable[[Spider, str], Awaitable[bool]]
            ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The delete form of a connection-info table (checked rows by name)."""
    @action
    async def handler(request: web.Request, form: dict[str, Any]) -> str:
        chosen = fields(form, "name")
        if not chosen:
            raise SpiderError(f"Choose at least one {what.lower()} to delete.")
        for name in chosen:
            await delete(spider(request), name)
        return f"{what} deleted: {', '.join(chosen)}."
    return handler


for _section, _what, _delete in (("driver", "Driver", connection.delete_driver),
                                 ("credential", "Credential", connection.delete_credential),
                                 ("region", "Region", connection.delete_region),
                                 ("connectionconfig", "Connection config", connection.delete_connection)):
    routes.post(f"{BASE}/{_section}/delete")(deleter(_what, _delete))


# ---- credentials -----------------------------------------------------------------------------------

@routes.get(f"{BASE}/credential")
@page("credential.html.j2")
async def credentials(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    return {"items": sorted(await connection.list_credentials(sp), key=lambda c: c.credential_name),
            "providers": providers(sp), "meta": meta_keys(sp)}


@routes.post(f"{BASE}/credential")
@action
async def credential_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await connection.register_credential(spider(request), field(form, "CredentialName"),
                                                field(form, "ProviderName"), key_values(form))
    return f"Credential '{info.credential_name}' ({info.provider_name}) registered; its values are stored encrypted."


# ---- regions ---------------------------------------------------------------------------------------

@routes.get(f"{BASE}/region")
@page("region.html.j2")
async def regions(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    return {"items": sorted(await sp.db.list_regions(), key=lambda r: r.region_name),
            "providers": providers(sp), "meta": meta_keys(sp)}


@routes.post(f"{BASE}/region")
@action
async def region_create(request: web.Request, form: dict[str, Any]) -> str:
    zones = [z.strip() for z in field(form, "AvailableZoneList").split(",") if z.strip()] or None
    info = await connection.register_region(spider(request), field(form, "RegionName"), field(form, "ProviderName"),
                                            key_values(form), zones)
    return f"Region '{info.region_name}' ({info.provider_name}) registered."


# ---- connection configs ----------------------------------------------------------------------------

@routes.get(f"{BASE}/connectionconfig")
@page("connectionconfig.html.j2")
async def configs(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    db = sp.db
    return {"items": sorted(await db.list_connections(), key=lambda c: c.config_name), "providers": providers(sp),
            "drivers": sorted(await db.list_drivers(), key=lambda d: d.driver_name),
            "credentials": sorted(await db.list_credentials(), key=lambda c: c.credential_name),
            "regions": sorted(await db.list_regions(), key=lambda r: r.region_name)}


@routes.post(f"{BASE}/connectionconfig")
@action
async def config_create(request: web.Request, form: dict[str, Any]) -> str:
    info = ConnectionConfigInfo(field(form, "ConfigName"), field(form, "ProviderName"), field(form, "DriverName"),
                                field(form, "CredentialName"), field(form, "RegionName"))
    info = await connection.register_connection(spider(request), info)
    return f"Connection config '{info.config_name}' registered."


STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}


@routes.get(f"{BASE}/static/{{name}}")
async def static(request: web.Request) -> web.StreamResponse:
    """The packaged stylesheet and script (by plain name; nothing else under the package is served)."""
    name = request.match_info["name"]
    path = STATIC_DIR / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "max-age=300",
                                           "X-Content-Type-Options": "nosniff"})


CONNECTION_PAGES = ("vpc", "securitygroup", "keypair", "vm", "disk", "myimage", "publicip", "nlb", "vmimage", "vmspec",
                    "regionzone")


@routes.get(f"{BASE}/go")
async def go(request: web.Request) -> web.Response:
    """The menu's connection chooser (a plain GET form): open that connection's page."""
    conn, section = request.query.get("conn", ""), request.query.get("to", "vpc")
    if not conn:
        return web.Response(status=303, headers={"Location": BASE})
    section = section if section in CONNECTION_PAGES else "vpc"
    return web.Response(status=303, headers={"Location": f"{BASE}/{section}/{quote(conn, safe='')}"})
