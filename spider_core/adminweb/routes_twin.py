"""The Cloud-Twin page: clouds and their objects per region, fault rules (add, remove, clear), shipped
scenarios (run), and the event log, through the twin's ``/_twin`` admin API (``twin_client``)."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from aiohttp import web

from spider_core.adminweb.twin_client import TwinAdmin, checked, registered
from spider_core.adminweb.web import BASE, action, field, page, render
from spider_core.errors import SpiderError
from spider_core.rest.transport import spider

routes = web.RouteTableDef()

FAULT_KINDS = ("outage", "error", "latency", "throttle", "malformed", "stuck", "fail_transition", "crash")
MATCH_KEYS = ("cloud", "region", "zone", "service", "operation", "method", "project")
EVENT_LIMIT = 200


async def twin_of(request: web.Request, chosen: str) -> tuple[TwinAdmin | None, list[str]]:
    """The twin this page talks to: the chosen URL (checked), else the first registered one."""
    known = await registered(spider(request))
    if chosen:
        return TwinAdmin(checked(chosen, known)), known
    return (TwinAdmin(known[0]) if known else None), known


def event_filters(request: web.Request) -> dict[str, str]:
    return {k: request.query.get(k, "").strip() for k in ("kind", "cloud", "rule")}


async def events(admin: TwinAdmin, filters: dict[str, str]) -> list[dict[str, Any]]:
    """The newest events matching the filters, newest first."""
    state = await admin.get("/events", kind=filters["kind"], cloud=filters["cloud"], rule=filters["rule"],
                            limit=1_000_000)
    items = state.get("events", [])
    return list(reversed(items[-EVENT_LIMIT:]))


@routes.get(BASE + "/twin")
@page("twin.html.j2")
async def twin_page(request: web.Request) -> dict[str, Any]:
    admin, known = await twin_of(request, request.query.get("twin", "").strip())
    filters = event_filters(request)
    if admin is None:
        return {"twin": None, "known": known, "filters": filters}
    stats, clouds, faults, scenarios, recent = await asyncio.gather(
        admin.get("/stats"), admin.get("/clouds"), admin.get("/faults"), admin.get("/scenarios"),
        events(admin, filters))
    return {"twin": admin.base, "known": known, "stats": stats, "clouds": clouds.get("clouds", []),
            "faults": faults.get("faults", []), "scenarios": scenarios.get("scenarios", []), "events": recent,
            "filters": filters, "kinds": FAULT_KINDS, "match_keys": MATCH_KEYS, "event_limit": EVENT_LIMIT}


@routes.get(BASE + "/twin/events")
async def twin_events(request: web.Request) -> web.Response:
    """The events table alone, for the page's live refresh."""
    try:
        admin, _ = await twin_of(request, request.query.get("twin", "").strip())
        recent = await events(admin, event_filters(request)) if admin else []
    except SpiderError as exc:
        return render(request, "error_inline.html.j2", {"message": exc.message})
    return render(request, "twin_events.table.j2", {"events": recent, "event_limit": EVENT_LIMIT})


def _number(text: str, what: str, integer: bool = False) -> float | int | None:
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        raise SpiderError(f"{what}: a number (got '{text}')") from None


def fault_doc(form: dict[str, Any]) -> dict[str, Any]:
    """The fault rule the form describes; the 'more fields' box (YAML or JSON) adds kind-specific fields."""
    doc: dict[str, Any] = {"kind": field(form, "kind")}
    match = {k: field(form, f"match_{k}") for k in MATCH_KEYS if field(form, f"match_{k}")}
    if match:
        doc["match"] = match
    for key, integer in (("start", False), ("duration", False), ("probability", False), ("count", True)):
        value = _number(field(form, key), key, integer)
        if value is not None:
            doc[key] = value
    extra_text = field(form, "extra")
    if extra_text:
        try:
            extra = yaml.safe_load(extra_text)
        except yaml.YAMLError as exc:
            raise SpiderError(f"More fields: not YAML/JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise SpiderError("More fields: a mapping such as 'preset: quota' or '{\"status\": 500}'")
        doc.update(extra)
    return doc


async def _admin_from_form(request: web.Request, form: dict[str, Any]) -> TwinAdmin:
    admin, _ = await twin_of(request, field(form, "twin"))
    if admin is None:
        raise SpiderError("No Cloud-Twin chosen: register a CLOUDTWIN connection or enter the twin's URL.")
    return admin


@routes.post(BASE + "/twin/fault")
@action
async def add_fault(request: web.Request, form: dict[str, Any]) -> str:
    admin = await _admin_from_form(request, form)
    added = (await admin.post("/faults", fault_doc(form)))["fault"]
    return f"Fault {added['id']} ({added['kind']}) added."


@routes.post(BASE + "/twin/fault/delete")
@action
async def remove_fault(request: web.Request, form: dict[str, Any]) -> str:
    admin = await _admin_from_form(request, form)
    rule_id = field(form, "id")
    if not rule_id:
        raise SpiderError("Choose a fault to remove.")
    await admin.delete(f"/faults/{rule_id}")
    return f"Fault {rule_id} removed."


@routes.post(BASE + "/twin/faults/clear")
@action
async def clear_faults(request: web.Request, form: dict[str, Any]) -> str:
    admin = await _admin_from_form(request, form)
    removed = (await admin.delete("/faults"))["removed"]
    return f"{removed} fault(s) removed."


@routes.post(BASE + "/twin/scenario")
@action
async def run_scenario(request: web.Request, form: dict[str, Any]) -> str:
    admin = await _admin_from_form(request, form)
    answer = await admin.post("/scenarios", {"name": field(form, "name")})
    return f"Scenario '{answer['scenario']}' loaded: {len(answer['faults'])} fault(s)."


@routes.post(BASE + "/twin/reset")
@action
async def reset(request: web.Request, form: dict[str, Any]) -> str:
    admin = await _admin_from_form(request, form)
    cloud = field(form, "cloud")
    answer = await admin.post("/reset", cloud=cloud) if cloud else await admin.post("/reset")
    return f"Reset {answer['reset']}; {answer['faults_removed']} fault(s) removed."

