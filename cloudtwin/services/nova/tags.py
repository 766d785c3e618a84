"""Nova's server tags (``/servers/{id}/tags``, microversion 2.26 and later): a set of short strings
per server, which CB-Spider's driver uses for VM tags."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.policy import is_admin
from cloudtwin.routing import Call, Router

MAX_TAGS = 50
MAX_TAG_LENGTH = 60


def _server(call: Call) -> Any:
    if call.microversion < (2, 26):
        raise ApiError(404, "The resource could not be found.")
    assert call.region is not None
    return call.region.nova.server_for(call.project_id, call.params["id"], admin=is_admin(call))


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not 1 <= len(tag) <= MAX_TAG_LENGTH or "/" in tag or "," in tag:
        raise ApiError(400, f"Invalid input for field/attribute tags. Value: {tag!r}. A tag is a string of 1 to "
                            f"{MAX_TAG_LENGTH} characters without '/' or ','")
    return tag


def _check_count(tags: list[str]) -> None:
    if len(tags) > MAX_TAGS:
        raise ApiError(400, f"The number of tags exceeded the per-server limit {MAX_TAGS}")


async def list_tags(call: Call) -> web.Response:
    return wire.json_response(200, {"tags": list(_server(call).tags)})


async def replace_tags(call: Call) -> web.Response:
    s = _server(call)
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise ApiError(400, "Invalid input for field/attribute tags. 'tags' is a required property (a list)")
    tags = list(dict.fromkeys(_check_tag(t) for t in body["tags"]))
    _check_count(tags)
    s.tags = tags
    s.touch()
    return wire.json_response(200, {"tags": list(s.tags)})


async def delete_tags(call: Call) -> web.Response:
    s = _server(call)
    s.tags = []
    s.touch()
    return wire.json_response(204)


async def check_tag(call: Call) -> web.Response:
    s = _server(call)
    tag = call.params["tag"]
    if tag not in s.tags:
        raise ApiError(404, f"Tag '{tag}' could not be found for instance {s.id}.")
    return wire.json_response(204)


async def add_tag(call: Call) -> web.Response:
    s = _server(call)
    tag = _check_tag(call.params["tag"])
    if tag in s.tags:
        return wire.json_response(204)
    _check_count(s.tags + [tag])
    s.tags.append(tag)
    s.touch()
    location = f"{call.base_url()}/servers/{s.id}/tags/{tag}"
    return wire.json_response(201, None, {"Location": location})


async def delete_tag(call: Call) -> web.Response:
    s = _server(call)
    tag = call.params["tag"]
    if tag not in s.tags:
        raise ApiError(404, f"Tag '{tag}' could not be found for instance {s.id}.")
    s.tags.remove(tag)
    s.touch()
    return wire.json_response(204)


def add_routes(r: Router) -> None:
    s = "compute"
    base = "/v2.1/servers/{id}/tags"
    r.add(s, "GET", base, list_tags, "compute:server_tag:list")
    r.add(s, "PUT", base, replace_tags, "compute:server_tag:update")
    r.add(s, "DELETE", base, delete_tags, "compute:server_tag:delete")
    r.add(s, "GET", base + "/{tag}", check_tag, "compute:server_tag:get")
    r.add(s, "PUT", base + "/{tag}", add_tag, "compute:server_tag:create")
    r.add(s, "DELETE", base + "/{tag}", delete_tag, "compute:server_tag:delete")
