"""``/v3/domains``: the cloud's own domain and the domains created beside it (one cloud may hold many
Keystone domains; a domain name is unique across the twin, since a login finds its cloud by it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import Domain, conflict
from cloudtwin.routing import Call
from cloudtwin.services.keystone import common


async def list_domains(call: Call) -> web.Response:
    items = list(common.store(call).domains.values())
    enabled = common.query_bool(call, "enabled")
    if enabled is not None:
        items = [d for d in items if d.enabled == enabled]
    items = common.names_match(items, call, {"name": "name"})
    return common.collection(call, "domains", [common.domain_doc(call, d) for d in items])


async def create_domain(call: Call) -> web.Response:
    doc = common.body(call, "domain")
    d = add_domain(call, common.text(doc, "name", required=True, limit=64) or "", doc)
    return wire.json_response(201, {"domain": common.domain_doc(call, d)})


def add_domain(call: Call, name: str, doc: dict[str, Any]) -> Domain:
    """A new domain of the caller's cloud (``doc``: description, enabled, tags, options, explicit id)."""
    twin = call.twin
    if name in twin.identity_index or twin.clouds.get(name) is not None or name.lower() == "default":
        raise conflict("domain", "name", name)
    did = doc.get("explicit_domain_id")
    if did is not None:
        did = common.check_id(str(did), "domain")
        if did in twin.identity_index:
            raise conflict("domain", "id", did)
    d = common.store(call).add_domain(name, domain_id=did, description=common.text(doc, "description") or "",
                                      enabled=bool(common.flag(doc, "enabled", True)), tags=common.tags(doc),
                                      options=dict(doc.get("options") or {}))
    common.remember(call, d.id, d.name)
    return d


async def get_domain(call: Call) -> web.Response:
    return wire.json_response(200, {"domain": common.domain_doc(call, _by_id(call))})


def _by_id(call: Call) -> Domain:
    d = common.store(call).domains.get(call.params["id"])
    if d is None:
        raise ApiError(404, f"Could not find domain: {call.params['id']}.")
    return d


async def update_domain(call: Call) -> web.Response:
    d = change_domain(call, _by_id(call), common.body(call, "domain"))
    return wire.json_response(200, {"domain": common.domain_doc(call, d)})


def change_domain(call: Call, d: Domain, doc: dict[str, Any]) -> Domain:
    st = common.store(call)
    if "name" in doc:
        name = common.text(doc, "name", required=True, limit=64) or ""
        if name != d.name:
            if d.id == st.own_domain_id:
                raise ApiError(403, "The cloud's own domain keeps its name (it is the cloud's name).")
            if name in call.twin.identity_index or call.twin.clouds.get(name) is not None:
                raise conflict("domain", "name", name)
            call.twin.identity_index.pop(d.name, None)
            d.name = name
            common.remember(call, name)
    if "description" in doc:
        d.description = common.text(doc, "description") or ""
    if "enabled" in doc:
        enabled = bool(common.flag(doc, "enabled"))
        if not enabled and d.id == st.own_domain_id:
            raise ApiError(403, "The cloud's own domain cannot be disabled.")
        d.enabled = enabled
        if not enabled:
            st.revoke(domain_id=d.id)
            for u in st.users.values():
                if u.domain_id == d.id:
                    st.revoke(user_id=u.id)
    if "tags" in doc:
        d.tags = common.tags(doc)
    if isinstance(doc.get("options"), dict):
        d.options.update(doc["options"])
    return d


async def delete_domain(call: Call) -> web.Response:
    d = _by_id(call)
    cl = common.cloud(call)
    cl.identity.remove_domain(d.id)
    for p in [p for p in cl.projects.values() if p.domain_id == d.id]:
        del cl.projects[p.id]
        cl.identity.drop_assignments(target_id=p.id)
    call.twin.identity_index.pop(d.name, None)
    call.twin.identity_index.pop(d.id, None)
    return wire.json_response(204)
