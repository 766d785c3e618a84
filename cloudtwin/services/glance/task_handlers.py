"""Glance v2 tasks: the record of each import (``GET /v2/images/{id}/tasks``, 2.12) and the admin-only
``/v2/tasks`` API. A ``POST /v2/tasks`` import fetches its ``import_from`` URL only from a loopback host:
the twin never connects off the machine, so any other URL is refused at create (as newer Glance refuses
an invalid one) rather than accepted and failed later."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, AsyncIterator
from urllib.parse import urlparse

import aiohttp
from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance import data
from cloudtwin.services.glance.access import is_admin, state
from cloudtwin.services.glance.models import GlanceState, Image, Task
from cloudtwin.services.glance.store import CHUNK, ImageStore

TASK_TYPES = ("import",)


def render_task(t: Task, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id, "type": t.type, "status": t.status, "owner": t.project_id,
        "created_at": wire.iso(t.created_at), "updated_at": wire.iso(t.updated_at),
        "expires_at": wire.iso(t.expires_at) if t.expires_at else None,
        "self": f"/v2/tasks/{t.id}", "schema": "/v2/schemas/task",
        "image_id": t.image_id, "request_id": t.request_id, "user_id": t.user_id}
    if detail:
        out.update({"input": t.input, "result": t.result, "message": t.message})
    return out


async def image_tasks(call: Call) -> web.Response:
    st = state(call)
    img = st.get(call.project_id, call.params["id"], admin=is_admin(call))
    tasks = sorted((t for t in st.tasks.values() if t.image_id == img.id), key=lambda t: t.created_at,
                   reverse=True)
    return wire.json_response(200, {"tasks": [render_task(t) for t in tasks]})


def _admin_only(call: Call) -> None:
    if not is_admin(call):
        raise ApiError(403, "You are not authorized to complete this action: the tasks API is for admins.")


async def list_tasks(call: Call) -> web.Response:
    _admin_only(call)
    q = call.query
    tasks = [t for t in state(call).tasks.values()
             if q.get("status") in (None, t.status) and q.get("type") in (None, t.type)]
    reverse = q.get("sort_dir", "desc") != "asc"
    key = q.get("sort_key", "created_at")
    if key not in ("created_at", "updated_at", "id", "status", "type"):
        raise ApiError(400, f"Invalid sort key: {key}")
    tasks.sort(key=lambda t: (getattr(t, key), t.id), reverse=reverse)
    page, marker = wire.page(tasks, q, max_limit=1000, marker_error="Invalid marker {marker}")
    body: dict[str, Any] = {"tasks": [render_task(t, detail=False) for t in page], "first": "/v2/tasks",
                            "schema": "/v2/schemas/tasks"}
    if marker:
        body["next"] = f"/v2/tasks?marker={marker}"
    return wire.json_response(200, body)


async def get_task(call: Call) -> web.Response:
    _admin_only(call)
    return wire.json_response(200, render_task(state(call).task(call.project_id, call.params["id"], admin=True)))


def _loopback_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "Task input 'import_from' must be a URL string.")
    url = urlparse(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ApiError(400, f"Import from {value} is not supported: use an http(s) URL.")
    host = url.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ApiError(400, f"The URI {value} is not allowed: this cloud imports only from loopback hosts.")
    return value


async def create_task(call: Call) -> web.Response:
    _admin_only(call)
    body = call.body()
    if not isinstance(body, dict) or body.get("type") not in TASK_TYPES or not isinstance(body.get("input"), dict):
        raise ApiError(400, f"A task needs a 'type' (one of {', '.join(TASK_TYPES)}) and an 'input' object.")
    inp = body["input"]
    url = _loopback_url(inp.get("import_from"))
    props = inp.get("image_properties") or {}
    if not isinstance(props, dict):
        raise ApiError(400, "Task input 'image_properties' must be an object.")
    st = state(call)
    task = st.new_task(call.project_id, type_="import", input_=inp, image_id=None, request_id=call.request_id,
                       user_id=call.token.user_id if call.token else "")
    job = asyncio.get_running_loop().create_task(_run_task(st, data._store(call), task, call.project_id, url, props))
    data._BACKGROUND.add(job)
    job.add_done_callback(data._BACKGROUND.discard)
    return wire.json_response(201, render_task(task))


async def _run_task(st: GlanceState, store: ImageStore, task: Task, project_id: str, url: str,
                    props: dict[str, Any]) -> None:
    task.status = "processing"
    img: Image | None = None
    try:
        known = {k: props[k] for k in ("name", "visibility", "disk_format", "container_format") if k in props}
        img = st.create(project_id, **known, properties={k: str(v) for k, v in props.items() if k not in known})
        task.image_id = img.id
        st.begin_upload(img)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise ApiError(400, f"Fetching {url} answered {resp.status}.")
                written = await store.write(st.scope, st.site.default_store, img.id, _chunks(resp))
        st.data_written(img, written.size, written.checksum, written.os_hash_value, [st.site.default_store])
        st.finish_task(task, "success", result={"image_id": img.id})
    except (ApiError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        if img is not None:
            st.upload_failed(img)
        st.finish_task(task, "failure", message=exc.message if isinstance(exc, ApiError) else str(exc))


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for chunk in resp.content.iter_chunked(CHUNK):
        yield chunk


def add_routes(r: Router) -> None:
    s = "image"
    r.add(s, "GET", "/v2/images/{id}/tasks", image_tasks, "image:task:list")
    r.add(s, "GET", "/v2/tasks", list_tasks, "image:task:list")
    r.add(s, "POST", "/v2/tasks", create_task, "image:task:create")
    r.add(s, "GET", "/v2/tasks/{id}", get_task, "image:task:get")
