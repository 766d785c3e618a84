"""Keystone's plain records: policy blobs (``/v3/policies``), OAuth1 consumers
(``/v3/OS-OAUTH1/consumers``) and endpoint groups (``/v3/OS-EP-FILTER/endpoint_groups``). Keystone stores
them and gives them back; nothing else reads them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.identity.store import new_id
from cloudtwin.routing import Call, Router
from cloudtwin.services.keystone import common


def _policy(doc: dict[str, Any], create: bool) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("id", "links")}
    if create or "blob" in doc:
        common.text(doc, "blob", required=True, limit=65536)
    if create or "type" in doc:
        common.text(doc, "type", required=True)
    return out


def _consumer(doc: dict[str, Any], create: bool) -> dict[str, Any]:
    if "secret" in doc and not create:
        raise ApiError(400, "Invalid input for field 'secret': a consumer's secret cannot be changed.")
    out = {"description": common.text(doc, "description")} if "description" in doc or create else {}
    if create:
        out["secret"] = secrets.token_urlsafe(24)
    return out


def _endpoint_group(doc: dict[str, Any], create: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if create or "name" in doc:
        out["name"] = common.text(doc, "name", required=True)
    if "description" in doc or create:
        out["description"] = common.text(doc, "description") or ""
    if create or "filters" in doc:
        filters = doc.get("filters")
        if not isinstance(filters, dict) or not set(filters) <= {"service_id", "region_id", "interface"}:
            raise ApiError(400, "Invalid input for field 'filters': an object of service_id, region_id, interface")
        out["filters"] = filters
    return out


@dataclass(frozen=True)
class Kind:
    kind: str              # the store's table
    path: str              # under /v3
    one: str               # the envelope of one
    many: str              # the envelope of a list
    fields: Callable[[dict[str, Any], bool], dict[str, Any]]
    secret: str = ""       # a field shown only when made


KINDS = (Kind("policy", "policies", "policy", "policies", _policy),
         Kind("consumer", "OS-OAUTH1/consumers", "consumer", "consumers", _consumer, secret="secret"),
         Kind("endpoint_group", "OS-EP-FILTER/endpoint_groups", "endpoint_group", "endpoint_groups",
              _endpoint_group))


def _doc(call: Call, k: Kind, rid: str, rec: dict[str, Any], *, made: bool = False) -> dict[str, Any]:
    out = {key: v for key, v in rec.items() if key != k.secret or made}
    out.update({"id": rid, "links": common.link(call, f"{k.path}/{rid}")})
    return out


def _one(call: Call, k: Kind) -> tuple[str, dict[str, Any]]:
    rid = call.params["id"]
    rec = common.store(call).records[k.kind].get(rid)
    if rec is None:
        raise ApiError(404, f"Could not find {k.one}: {rid}.")
    return rid, rec


def handlers(k: Kind) -> tuple[Any, Any, Any, Any, Any]:
    async def listing(call: Call) -> web.Response:
        table = common.store(call).records[k.kind]
        items = [_doc(call, k, rid, rec) for rid, rec in table.items()]
        return common.collection(call, k.many, wire.filter_by(items, call.query, ("type", "name")), k.path)

    async def create(call: Call) -> web.Response:
        rec = k.fields(call.body(k.one), True)
        rid = new_id()
        common.store(call).records[k.kind][rid] = rec
        return wire.json_response(201, {k.one: _doc(call, k, rid, rec, made=True)})

    async def get(call: Call) -> web.Response:
        rid, rec = _one(call, k)
        return wire.json_response(200, {k.one: _doc(call, k, rid, rec)})

    async def update(call: Call) -> web.Response:
        rid, rec = _one(call, k)
        rec.update(k.fields(call.body(k.one), False))
        return wire.json_response(200, {k.one: _doc(call, k, rid, rec)})

    async def delete(call: Call) -> web.Response:
        rid, _ = _one(call, k)
        del common.store(call).records[k.kind][rid]
        return wire.json_response(204)
    return listing, create, get, update, delete


def add_routes(r: Router) -> None:
    for k in KINDS:
        listing, create, get, update, delete = handlers(k)
        r.add("identity", "GET", f"/v3/{k.path}", listing, f"identity:{k.kind}:list")
        r.add("identity", "POST", f"/v3/{k.path}", create, f"identity:{k.kind}:create")
        r.add("identity", "GET", f"/v3/{k.path}/{{id}}", get, f"identity:{k.kind}:get")
        r.add("identity", "PATCH", f"/v3/{k.path}/{{id}}", update, f"identity:{k.kind}:update")
        r.add("identity", "DELETE", f"/v3/{k.path}/{{id}}", delete, f"identity:{k.kind}:delete")
