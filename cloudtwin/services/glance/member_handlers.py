"""Glance v2 image members: an owner shares a ``shared`` image with other projects; each member accepts,
rejects or leaves it pending. Bare member objects, ``{"members": [...], "schema"}`` lists."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance.access import is_admin, state
from cloudtwin.services.glance.models import Member


def render_member(m: Member) -> dict[str, Any]:
    return {"image_id": m.image_id, "member_id": m.member_id, "status": m.status,
            "created_at": wire.iso(m.created_at), "updated_at": wire.iso(m.updated_at),
            "schema": "/v2/schemas/member"}


def _string_field(call: Call, key: str) -> str:
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get(key), str) or not body[key]:
        raise ApiError(400, f"Request body must be a JSON object with a string '{key}'.")
    return body[key]  # type: ignore[no-any-return]


async def list_members(call: Call) -> web.Response:
    members = state(call).members_of(call.project_id, call.params["id"], admin=is_admin(call))
    return wire.json_response(200, {"members": [render_member(m) for m in members],
                                    "schema": "/v2/schemas/members"})


async def add_member(call: Call) -> web.Response:
    member_id = _string_field(call, "member")
    if len(member_id) > 255:
        raise ApiError(400, "Invalid member id: at most 255 characters")
    m = state(call).add_member(call.project_id, call.params["id"], member_id, admin=is_admin(call))
    return wire.json_response(200, render_member(m))


async def get_member(call: Call) -> web.Response:
    m = state(call).member(call.project_id, call.params["id"], call.params["member"], admin=is_admin(call))
    return wire.json_response(200, render_member(m))


async def update_member(call: Call) -> web.Response:
    status = _string_field(call, "status")
    m = state(call).set_member_status(call.project_id, call.params["id"], call.params["member"], status)
    return wire.json_response(200, render_member(m))


async def delete_member(call: Call) -> web.Response:
    state(call).remove_member(call.project_id, call.params["id"], call.params["member"], admin=is_admin(call))
    return wire.json_response(204)


def add_routes(r: Router) -> None:
    s = "image"
    r.add(s, "GET", "/v2/images/{id}/members", list_members, "image:member:list")
    r.add(s, "POST", "/v2/images/{id}/members", add_member, "image:member:create")
    r.add(s, "GET", "/v2/images/{id}/members/{member}", get_member, "image:member:get")
    r.add(s, "PUT", "/v2/images/{id}/members/{member}", update_member, "image:member:update")
    r.add(s, "DELETE", "/v2/images/{id}/members/{member}", delete_member, "image:member:delete")
