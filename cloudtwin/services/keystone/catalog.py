"""The service catalog: services, endpoints and regions.

Each cloud comes with its own services (Nova, Neutron, Glance, Cinder, Octavia, Keystone) with an
endpoint per region and interface, computed from the request's base URL; the admin API adds, changes
and deletes services, endpoints and regions like Keystone's. A built-in entry that is changed keeps its
changes in ``store.overrides``; one that is deleted is hidden (``store.hidden``). A token's catalog is
made from the same entries, so the lists and the catalog never disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.clouds import Cloud
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Endpoint, Region, Service, new_id
from cloudtwin.ids import stable_id
from cloudtwin.routing import SERVICE_PATHS, Call
from cloudtwin.services.keystone import common

# service (URL segment) -> the catalog entries (type, name) it is published under. Block storage is
# listed under both of Cinder's current types: clients look up "block-storage" (openstacksdk) or
# "volumev3" (gophercloud, cinderclient), and its URL carries the project id, as Cinder's does.
CATALOG_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "compute": (("compute", "nova"),), "network": (("network", "neutron"),), "image": (("image", "glance"),),
    "load-balancer": (("load-balancer", "octavia"),),
    "volume": (("block-storage", "cinder"), ("volumev3", "cinderv3")),
    "identity": (("identity", "keystone"),)}
PROJECT_IN_URL = {"volume": "/v3/$(project_id)s"}
# Keystone stores an endpoint's URL as registered; a token's catalog fills the project in
PROJECT_TEMPLATE = "$(project_id)s"
INTERFACES = ("public", "internal", "admin")


def _sid(cloud: Cloud, stype: str) -> str:
    return stable_id("svc", cloud.name, stype).replace("-", "")


def builtin(call: Call, cloud: Cloud) -> tuple[list[Service], list[Endpoint]]:
    """The cloud's own services and endpoints (every region, plus CB-Spider's region alias
    ``default``), with their API changes applied and the deleted ones left out."""
    store = cloud.identity
    services: list[Service] = []
    endpoints: list[Endpoint] = []
    regions = list(cloud.regions)
    for service in [*SERVICE_PATHS, "identity"]:
        for stype, sname in CATALOG_TYPES[service]:
            sid = _sid(cloud, stype)
            services.append(Service(sid, stype, sname))
            for region in regions + ["default"] * ("default" not in regions):
                target = cloud.profile.default_region if region == "default" else region
                url = call.request.app["service_url"](call.request, cloud.name, target, service)
                url += PROJECT_IN_URL.get(service, "")
                for iface in INTERFACES:
                    eid = stable_id("ep", cloud.name, region, stype, iface).replace("-", "")
                    endpoints.append(Endpoint(eid, sid, iface, url, region))

    def live(obj: Any) -> Any:
        return replace(obj, **store.overrides[obj.id]) if obj.id in store.overrides else obj
    return ([live(s) for s in services if s.id not in store.hidden],
            [live(e) for e in endpoints if e.id not in store.hidden])


def all_services(call: Call, cloud: Cloud) -> list[Service]:
    return builtin(call, cloud)[0] + list(cloud.identity.services.values())


def all_endpoints(call: Call, cloud: Cloud) -> list[Endpoint]:
    return builtin(call, cloud)[1] + list(cloud.identity.endpoints.values())


def catalog(call: Call, cloud: Cloud, project_id: str | None) -> list[dict[str, Any]]:
    """A token's catalog: every enabled service with its enabled endpoints; the project fills the URL
    templates (a token without a project leaves out the endpoints that need one, as Keystone does)."""
    services, endpoints = builtin(call, cloud)
    services += cloud.identity.services.values()
    endpoints += cloud.identity.endpoints.values()
    out = []
    for svc in services:
        if not svc.enabled:
            continue
        eps = []
        for ep in endpoints:
            if ep.service_id != svc.id or not ep.enabled:
                continue
            url = ep.url
            if "$(project_id)s" in url or "%(project_id)s" in url or "%(tenant_id)s" in url:
                if project_id is None:
                    continue
                url = url.replace("$(project_id)s", project_id).replace("%(project_id)s", project_id) \
                    .replace("%(tenant_id)s", project_id)
            eps.append({"id": ep.id, "interface": ep.interface, "region": ep.region_id, "region_id": ep.region_id,
                        "url": url})
        out.append({"type": svc.type, "name": svc.name, "id": svc.id, "endpoints": eps})
    return out


# ---- shapes
def service_doc(call: Call, s: Service) -> dict[str, Any]:
    return {**s.extra, "id": s.id, "type": s.type, "name": s.name, "enabled": s.enabled,
            "description": s.description, "links": common.link(call, f"services/{s.id}")}


def endpoint_doc(call: Call, e: Endpoint) -> dict[str, Any]:
    return {**e.extra, "id": e.id, "service_id": e.service_id, "interface": e.interface, "region": e.region_id,
            "region_id": e.region_id, "url": e.url, "enabled": e.enabled,
            "links": common.link(call, f"endpoints/{e.id}")}


def region_doc(call: Call, r: Region) -> dict[str, Any]:
    return {**r.extra, "id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": common.link(call, f"regions/{r.id}")}


# ---- services
def _service(call: Call, sid: str) -> Service:
    found = next((s for s in all_services(call, common.cloud(call)) if s.id == sid), None)
    if found is None:
        raise ApiError(404, f"Could not find service: {sid}.")
    return found


def _change(call: Call, obj: Any, table: dict[str, Any], changes: dict[str, Any]) -> Any:
    """Apply ``changes`` to a stored object, or record them as overrides of a built-in one."""
    store = common.store(call)
    if obj.id in table:
        for k, v in changes.items():
            setattr(obj, k, v)
        return obj
    store.overrides.setdefault(obj.id, {}).update(changes)
    return replace(obj, **changes)


def _remove(call: Call, obj_id: str, table: dict[str, Any]) -> None:
    if obj_id in table:
        del table[obj_id]
    else:
        common.store(call).hidden.add(obj_id)
        common.store(call).overrides.pop(obj_id, None)


def _service_fields(doc: dict[str, Any], *, create: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if create or "type" in doc:
        out["type"] = common.text(doc, "type", required=True)
    for key in ("name", "description"):
        if key in doc:
            out[key] = common.text(doc, key) or ""
    if "enabled" in doc:
        out["enabled"] = common.flag(doc, "enabled")
    extra = {k: v for k, v in doc.items() if k not in ("type", "name", "description", "enabled", "id", "links")}
    if extra:
        out["extra"] = extra
    return out


async def list_services(call: Call) -> web.Response:
    items = [service_doc(call, s) for s in all_services(call, common.cloud(call))]
    return common.collection(call, "services", wire.filter_by(items, call.query, ("type", "name")))


async def create_service(call: Call) -> web.Response:
    fields = _service_fields(common.body(call, "service"), create=True)
    svc = Service(new_id(), **fields)
    common.store(call).services[svc.id] = svc
    return wire.json_response(201, {"service": service_doc(call, svc)})


async def get_service(call: Call) -> web.Response:
    return wire.json_response(200, {"service": service_doc(call, _service(call, call.params["id"]))})


async def update_service(call: Call) -> web.Response:
    svc = _service(call, call.params["id"])
    svc = _change(call, svc, common.store(call).services, _service_fields(common.body(call, "service"),
                                                                         create=False))
    return wire.json_response(200, {"service": service_doc(call, svc)})


async def delete_service(call: Call) -> web.Response:
    svc = _service(call, call.params["id"])
    cl = common.cloud(call)
    for ep in all_endpoints(call, cl):   # Keystone deletes a service's endpoints with it
        if ep.service_id == svc.id:
            _remove(call, ep.id, cl.identity.endpoints)
    _remove(call, svc.id, cl.identity.services)
    return wire.json_response(204)


# ---- endpoints
def _endpoint(call: Call, eid: str) -> Endpoint:
    found = next((e for e in all_endpoints(call, common.cloud(call)) if e.id == eid), None)
    if found is None:
        raise ApiError(404, f"Could not find endpoint: {eid}.")
    return found


def _endpoint_fields(call: Call, doc: dict[str, Any], *, create: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if create or "service_id" in doc:
        out["service_id"] = _service(call, common.text(doc, "service_id", required=True) or "").id
    if create or "interface" in doc:
        iface = common.text(doc, "interface", required=True)
        if iface not in INTERFACES:
            raise ApiError(400, f"Invalid input for field 'interface': '{iface}' is not one of "
                                f"{list(INTERFACES)}")
        out["interface"] = iface
    if create or "url" in doc:
        url = common.text(doc, "url", required=True, limit=1024) or ""
        if not url.startswith(("http://", "https://")):
            raise ApiError(400, f"Invalid input for field 'url': '{url}' is not a 'uri'")
        out["url"] = url
    region = doc.get("region_id", doc.get("region"))
    if region is not None or "region_id" in doc:
        if region is not None and not any(r.id == str(region) for r in all_regions(call)):
            rid = common.check_id(str(region), "region")   # Keystone creates an endpoint's unknown region
            common.store(call).regions[rid] = Region(rid)
        out["region_id"] = region
    if "enabled" in doc:
        out["enabled"] = common.flag(doc, "enabled")
    return out


async def list_endpoints(call: Call) -> web.Response:
    items = [endpoint_doc(call, e) for e in all_endpoints(call, common.cloud(call))]
    return common.collection(call, "endpoints",
                             wire.filter_by(items, call.query, ("service_id", "interface", "region_id")))


async def create_endpoint(call: Call) -> web.Response:
    fields = _endpoint_fields(call, common.body(call, "endpoint"), create=True)
    ep = Endpoint(new_id(), **fields)
    common.store(call).endpoints[ep.id] = ep
    return wire.json_response(201, {"endpoint": endpoint_doc(call, ep)})


async def get_endpoint(call: Call) -> web.Response:
    return wire.json_response(200, {"endpoint": endpoint_doc(call, _endpoint(call, call.params["id"]))})


async def update_endpoint(call: Call) -> web.Response:
    ep = _endpoint(call, call.params["id"])
    changes = _endpoint_fields(call, common.body(call, "endpoint"), create=False)
    ep = _change(call, ep, common.store(call).endpoints, changes)
    return wire.json_response(200, {"endpoint": endpoint_doc(call, ep)})


async def delete_endpoint(call: Call) -> web.Response:
    ep = _endpoint(call, call.params["id"])
    _remove(call, ep.id, common.store(call).endpoints)
    return wire.json_response(204)


# ---- regions
def all_regions(call: Call) -> list[Region]:
    cl = common.cloud(call)
    store = cl.identity
    own = [Region(name) for name in cl.regions if name not in store.hidden]
    own = [replace(r, **store.overrides[r.id]) if r.id in store.overrides else r for r in own]
    return own + list(store.regions.values())


def _region(call: Call, rid: str) -> Region:
    found = next((r for r in all_regions(call) if r.id == rid), None)
    if found is None:
        raise ApiError(404, f"Could not find region: {rid}.")
    return found


def _region_fields(call: Call, doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "description" in doc:
        out["description"] = common.text(doc, "description") or ""
    if "parent_region_id" in doc:
        parent = doc["parent_region_id"]
        if parent is not None:
            _region(call, str(parent))
        out["parent_region_id"] = parent
    return out


async def list_regions(call: Call) -> web.Response:
    items = [region_doc(call, r) for r in all_regions(call)]
    return common.collection(call, "regions", wire.filter_by(items, call.query, ("parent_region_id",)))


async def create_region(call: Call) -> web.Response:
    doc = common.body(call, "region")
    rid = call.params.get("id") or common.text(doc, "id") or new_id()
    if any(r.id == rid for r in all_regions(call)):
        raise ApiError(409, f"Conflict occurred attempting to store region - Duplicate ID, {rid}.")
    region = Region(common.check_id(rid, "region"), **_region_fields(call, doc))
    common.store(call).regions[region.id] = region
    return wire.json_response(201, {"region": region_doc(call, region)})


async def get_region(call: Call) -> web.Response:
    return wire.json_response(200, {"region": region_doc(call, _region(call, call.params["id"]))})


async def update_region(call: Call) -> web.Response:
    region = _region(call, call.params["id"])
    region = _change(call, region, common.store(call).regions, _region_fields(call, common.body(call, "region")))
    return wire.json_response(200, {"region": region_doc(call, region)})


async def delete_region(call: Call) -> web.Response:
    region = _region(call, call.params["id"])
    if any(r.parent_region_id == region.id for r in all_regions(call)):
        raise ApiError(403, f"Unable to delete region {region.id} because it has child regions.")
    if any(e.region_id == region.id for e in all_endpoints(call, common.cloud(call))):
        raise ApiError(403, f"Unable to delete region {region.id} because it or its child regions have "
                            "associated endpoints.")
    _remove(call, region.id, common.store(call).regions)
    return wire.json_response(204)
