"""Glance v2 image data: direct upload and download (``/file``), staging (``/stage``), the interoperable
import (``/import``: glance-direct, copy-image, glance-download), store discovery (``/v2/info/stores``,
``/detail``) and removal of an image from one store.

Data streams between the socket and ``store.ImageStore`` chunk by chunk; the image's status moves through
the model (``queued`` -> ``saving``/``uploading`` -> ``importing`` -> ``active``). An import runs as a
background task of the twin's loop and records a Glance task the client can follow.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import uuid
from typing import Any, AsyncIterator

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.glance.access import is_admin, state
from cloudtwin.services.glance.models import GlanceState, Image, Task
from cloudtwin.services.glance.store import CHUNK, STAGING, ImageStore

log = logging.getLogger(__name__)
_BACKGROUND: set[asyncio.Task[None]] = set()


def _store(call: Call) -> ImageStore:
    return call.twin.image_store  # type: ignore[no-any-return]


async def _body_chunks(call: Call) -> AsyncIterator[bytes]:
    async for chunk in call.request.content.iter_chunked(CHUNK):
        yield chunk


async def _receive(call: Call, img: Image, store_id: str) -> Any:
    st, store = state(call), _store(call)
    length = call.request.content_length
    try:
        if length is not None and length > store.max_bytes:
            raise ApiError(413, f"Image exceeds the storage quota: the image size limit is {store.max_bytes} "
                                "bytes.")
        return await store.write(st.scope, store_id, img.id, _body_chunks(call))
    except BaseException:
        st.upload_failed(img)
        raise


async def upload(call: Call) -> web.Response:
    st = state(call)
    img = st.owned(call.project_id, call.params["id"], admin=is_admin(call), action="upload data to")
    if img.builtin:
        raise ApiError(403, "You are not permitted to upload data to this image.")
    _octet_stream(call)
    st.begin_upload(img)
    written = await _receive(call, img, st.site.default_store)
    if img.id not in st.images:       # deleted while the data was arriving
        _store(call).remove(st.scope, st.site.default_store, img.id)
        raise ApiError(410, f"Image {img.id} could not be found after upload. The image may have been "
                            "deleted during the upload.")
    st.data_written(img, written.size, written.checksum, written.os_hash_value, [st.site.default_store])
    return wire.json_response(204)


async def stage(call: Call) -> web.Response:
    st = state(call)
    if "glance-direct" not in st.site.import_methods:
        raise ApiError(404, "The resource could not be found.")
    img = st.owned(call.project_id, call.params["id"], admin=is_admin(call), action="stage data for")
    _octet_stream(call)
    st.begin_stage(img)
    written = await _receive(call, img, STAGING)
    if img.id not in st.images:
        _store(call).remove(st.scope, STAGING, img.id)
        raise ApiError(410, f"Image {img.id} could not be found after upload.")
    st.staged(img, written.size)
    return wire.json_response(204)


def _octet_stream(call: Call) -> None:
    ctype = call.request.content_type
    if ctype not in ("application/octet-stream", ""):
        raise ApiError(415, f"Content-Type '{ctype}' is not supported: use application/octet-stream")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` of a single ``bytes=`` range; 416 for one that does not fit."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ApiError(416, "Only a single byte range is supported.")
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), (int(last) if last else size - 1)
    except ValueError:
        raise ApiError(416, f"Invalid range: {header}") from None
    if start > end or start >= size:
        raise ApiError(416, f"Requested range not satisfiable: {header}")
    return start, min(end, size - 1)


async def download(call: Call) -> web.StreamResponse:
    st = state(call)
    admin = is_admin(call)
    img = st.get(call.project_id, call.params["id"], admin=admin)
    if img.status == "deactivated" and not admin:
        raise ApiError(403, "The requested image has been deactivated. Image data download is forbidden.")
    if img.builtin or not img.stores or img.status not in ("active", "deactivated"):
        return web.Response(status=204)
    store_id = img.stores[0]
    size = img.size or 0
    span = _range(call.request.headers.get("Range") or call.request.headers.get("Content-Range"), size)
    headers = {"Content-Type": "application/octet-stream", "Content-MD5": img.checksum or "",
               **call.response_headers}
    status = 200
    start, end = 0, size - 1
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(max(0, end - start + 1))
    resp = web.StreamResponse(status=status, headers=headers)
    resp.headers["X-Openstack-Request-Id"] = call.request_id
    await resp.prepare(call.request)
    if size:
        async for chunk in _store(call).read(st.scope, store_id, img.id, start, end):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def info_import(call: Call) -> web.Response:
    return wire.json_response(200, {"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": list(state(call).site.import_methods)}})


def _store_doc(s: Any, detail: bool) -> dict[str, Any]:
    """One store as ``/v2/info/stores`` shows it; the admin's ``detail`` view adds its backend."""
    doc: dict[str, Any] = {"id": s.id, "description": s.description}
    if detail:
        doc.update({"type": "file", "properties": {"datadir": f"/var/lib/glance/images/{s.id}",
                                                    "chunk_size": CHUNK, "thin_provisioning": False},
                    "weight": 0})
    if s.default:
        doc["default"] = "true"
    if s.read_only:
        doc["read-only"] = "true"
    return doc


async def info_stores(call: Call) -> web.Response:
    return wire.json_response(200, {"stores": [_store_doc(s, False) for s in state(call).site.stores]})


async def info_stores_detail(call: Call) -> web.Response:
    if not is_admin(call):
        raise ApiError(403, "You are not authorized to complete get_stores_detail action.")
    return wire.json_response(200, {"stores": [_store_doc(s, True) for s in state(call).site.stores]})


async def info_usage(call: Call) -> web.Response:
    st = state(call)
    mine = [i for i in st.images.values() if i.owner == call.project_id]
    staged = sum(i.size or 0 for i in mine if i.staged)
    return wire.json_response(200, {"usage": {
        "image_size_total": {"limit": -1, "usage": sum(i.size or 0 for i in mine if i.stores)},
        "image_stage_total": {"limit": -1, "usage": staged},
        "image_count_total": {"limit": -1, "usage": len(mine)},
        "image_count_uploading": {"limit": -1, "usage": sum(1 for i in mine if i.status in
                                                            ("saving", "uploading", "importing"))}}})


async def delete_from_store(call: Call) -> web.Response:
    st = state(call)
    if not is_admin(call):
        raise ApiError(403, "You are not authorized to complete delete_image_location action.")
    img = st.get(call.project_id, call.params["image_id"], admin=True)
    store_id = call.params["store"]
    if st.site.store(store_id) is None:
        raise ApiError(404, f"Unknown store {store_id}.")
    if store_id not in img.stores:
        raise ApiError(404, f"Image {img.id} is not available in store {store_id}.")
    if img.status != "active":
        raise ApiError(409, f"It's not allowed to remove image data from store if image status is not 'active'")
    if len(img.stores) == 1:
        raise ApiError(409, "Cannot delete the last store of an image: delete the image instead.")
    img.stores.remove(store_id)
    _store(call).remove(st.scope, store_id, img.id)
    img.touch()
    return wire.json_response(204)


# ---- import
def _import_request(call: Call, img: Image) -> tuple[str, list[str], bool, dict[str, Any]]:
    st = state(call)
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
        raise ApiError(400, "Import request requires a 'method' object.")
    method = body["method"]
    name = method.get("name")
    if name not in st.site.import_methods:
        raise ApiError(400, f"Import method {name} is not valid for this cloud. Valid values are: "
                            f"{', '.join(st.site.import_methods)}")
    all_stores = body.get("all_stores", False)
    if not isinstance(all_stores, bool):
        raise ApiError(400, "Invalid value for 'all_stores': a boolean")
    stores = body.get("stores")
    if stores is not None and (not isinstance(stores, list) or not all(isinstance(s, str) for s in stores)):
        raise ApiError(400, "Invalid value for 'stores': a list of store names")
    header = call.request.headers.get("X-Image-Meta-Store")
    if stores is None and header:
        stores = [header]
    if all_stores and stores:
        raise ApiError(400, "All_stores parameter can't be used with x-image-meta-store header or stores "
                            "parameter")
    writable = [s.id for s in st.site.stores if not s.read_only]
    if all_stores:
        stores = writable
    for s in stores or []:
        if st.site.store(s) is None:
            raise ApiError(404, f"Store {s} is not found.")
        if s not in writable:
            raise ApiError(403, f"Store {s} is read-only.")
    _import_preconditions(img, name, method)
    if name == "copy-image":
        stores = [s for s in (stores or []) if s not in img.stores]
        if not stores:
            raise ApiError(409, "Image is already present at all the requested stores.")
    return name, list(stores or [st.site.default_store]), bool(body.get("allow_failure", True)), body


def _import_preconditions(img: Image, name: str, method: dict[str, Any]) -> None:
    if name == "glance-direct" and img.status != "uploading":
        raise ApiError(409, "Image needs to be staged before 'glance-direct' method can be used")
    if name == "copy-image" and img.status != "active":
        raise ApiError(409, "Image needs to be in 'active' state to use 'copy-image' method")
    if name == "glance-download":
        if img.status != "queued":
            raise ApiError(409, f"Image status transition from {img.status} to importing is not allowed")
        remote = method.get("glance_image_id")
        try:
            uuid.UUID(str(remote))
        except ValueError:
            raise ApiError(400, "Requested image id does not look like a UUID: "
                                f"{remote} (image id does not look like a UUID)") from None
        if not isinstance(method.get("glance_region"), str):
            raise ApiError(400, "glance-download requires 'glance_region'")


async def import_image(call: Call) -> web.Response:
    st = state(call)
    img = st.owned(call.project_id, call.params["id"], admin=is_admin(call), action="import")
    if img.status == "importing":
        raise ApiError(409, f"Image {img.id} is already being imported.")
    name, stores, allow_failure, body = _import_request(call, img)
    task = st.new_task(call.project_id, type_="api_image_import",
                       input_={"image_id": img.id, "import_req": body, "backend": stores},
                       image_id=img.id, request_id=call.request_id,
                       user_id=call.token.user_id if call.token else "")
    img.importing_to = list(stores)
    img.failed_import = []
    img.import_started = True
    previous = img.status
    st.set_status(img, "importing") if name != "copy-image" else img.touch()
    job = asyncio.get_running_loop().create_task(
        _run_import(st, _store(call), img, task, name, stores, allow_failure, body["method"], previous))
    _BACKGROUND.add(job)
    job.add_done_callback(_BACKGROUND.discard)
    return wire.json_response(202)


async def _run_import(st: GlanceState, store: ImageStore, img: Image, task: Task, name: str,
                      stores: list[str], allow_failure: bool, method: dict[str, Any], previous: str) -> None:
    task.status = "processing"
    try:
        if name == "glance-download":
            await _download_from_region(st, store, img, method)
        first = name != "copy-image"
        for s in list(stores):
            await asyncio.sleep(0)
            if img.id not in st.images:
                raise ApiError(410, "The image was deleted during the import.")
            if first:
                await store.move(st.scope, STAGING, s, img.id)
                first = False
                written = await _hash(store, st.scope, s, img.id)
                st.data_written(img, *written, [s])
            else:
                await store.copy(st.scope, img.stores[0], s, img.id)
                img.stores.append(s)
            img.importing_to.remove(s)
            img.touch()
        st.finish_task(task, "success", result={"image_id": img.id})
    except (ApiError, OSError) as exc:
        message = exc.message if isinstance(exc, ApiError) else str(exc)
        img.failed_import = list(img.importing_to)
        img.importing_to = []
        store.remove(st.scope, STAGING, img.id)
        if img.id in st.images and img.status == "importing":
            img.staged = False
            st.set_status(img, "queued" if previous in ("queued", "uploading") else previous)
        st.finish_task(task, "failure", message=message)
    except Exception:  # never leave an import hanging; the loop logs the rest
        log.exception("cloudtwin: glance import of %s failed", img.id)
        st.finish_task(task, "failure", message="Internal error during import.")


async def _hash(store: ImageStore, scope: str, store_id: str, image_id: str) -> tuple[int, str, str]:
    import hashlib

    md5, sha, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
    async for chunk in store.read(scope, store_id, image_id):
        md5.update(chunk)
        sha.update(chunk)
        size += len(chunk)
    return size, md5.hexdigest(), sha.hexdigest()


async def _download_from_region(st: GlanceState, store: ImageStore, img: Image, method: dict[str, Any]) -> None:
    """glance-download: copy an active image of another (or the same) region of this cloud."""
    region = st.region.cloud.region(method["glance_region"])
    if region is None:
        raise ApiError(400, f"Region {method['glance_region']} is not known to this cloud.")
    src_state: GlanceState = region.glance
    src = src_state.find(img.owner, method["glance_image_id"])
    if src is None or src.status != "active":
        raise ApiError(404, f"Image {method['glance_image_id']} is not available in {region.name}.")
    if src.has_data:
        await store.copy(st.scope, src.stores[0], STAGING, img.id, src_scope=src_state.scope, src_id=src.id)
    else:
        await store.write(st.scope, STAGING, img.id, _empty())
    for key, value in src.properties.items():
        if any(fnmatch.fnmatchcase(key, p) for p in st.site.download_properties):
            img.properties[key] = value
    img.disk_format, img.container_format = src.disk_format, src.container_format


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def add_routes(r: Router) -> None:
    s = "image"
    r.add(s, "PUT", "/v2/images/{id}/file", upload, "image:image:upload")
    r.add(s, "GET", "/v2/images/{id}/file", download, "image:image:download")
    r.add(s, "PUT", "/v2/images/{id}/stage", stage, "image:image:stage")
    r.add(s, "POST", "/v2/images/{id}/import", import_image, "image:image:import")
    r.add(s, "GET", "/v2/info/import", info_import, "image:info:import")
    r.add(s, "GET", "/v2/info/stores", info_stores, "image:info:stores")
    r.add(s, "GET", "/v2/info/stores/detail", info_stores_detail, "image:info:stores")
    r.add(s, "GET", "/v2/info/usage", info_usage, "image:info:usage")
    r.add(s, "DELETE", "/v2/stores/{store}/{image_id}", delete_from_store, "image:store:delete")
