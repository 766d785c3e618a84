"""Image data on disk: what ``PUT /v2/images/{id}/file`` and ``/stage`` stream in, and downloads read.

One directory per twin: the configured image directory, or a private temporary one removed when the twin
stops. Each store of the cloud (``file``, ``cheap``... from the profile) is a subdirectory; staged data sits
in ``staging``. Writes stream in chunks through a thread (the event loop never blocks on the disk), are
hashed on the way (md5 checksum, sha512 ``os_hash_value``) and stop with 413 past the size cap, leaving
nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from cloudtwin.errors import ApiError

CHUNK = 1024 * 1024
DEFAULT_MAX_BYTES = 1024 ** 3       # 1 GiB per image unless configured (Glance's image_size_cap)
STAGING = "staging"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


@dataclass(frozen=True)
class Written:
    """What a finished write produced: the image's size and its two hashes."""
    size: int
    checksum: str
    os_hash_value: str


class ImageStore:
    """The twin's image files. Paths come from validated names only (ids and store names)."""

    def __init__(self, root: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._configured = root
        self._root: Path | None = Path(root) if root else None
        self._temporary = False
        self.max_bytes = max_bytes

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="cloudtwin-images-"))
            self._temporary = True
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root

    def path(self, scope: str, store: str, image_id: str) -> Path:
        """Where one image's data lives in one store; ``scope`` separates clouds and regions."""
        for part in (store, image_id):
            if not _SAFE.match(part):
                raise ApiError(400, f"Invalid name: {part!r}")
        return self.root / _safe_dir(scope) / store / image_id

    def exists(self, scope: str, store: str, image_id: str) -> bool:
        return self.path(scope, store, image_id).is_file()

    async def write(self, scope: str, store: str, image_id: str, chunks: AsyncIterator[bytes],
                    *, max_bytes: int | None = None) -> Written:
        """Stream ``chunks`` into the store; 413 past the cap (the partial file is removed)."""
        cap = self.max_bytes if max_bytes is None else max_bytes
        target = self.path(scope, store, image_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        size = 0
        fh = await asyncio.to_thread(open, part, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise ApiError(413, f"Image exceeds the storage quota: the image size limit is {cap} bytes.")
                md5.update(chunk)
                sha.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
        except BaseException:
            await asyncio.to_thread(_close_and_remove, fh, part)
            raise
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, part, target)
        return Written(size, md5.hexdigest(), sha.hexdigest())

    async def copy(self, scope: str, src_store: str, dst_store: str, image_id: str,
                   *, src_scope: str | None = None, src_id: str | None = None) -> None:
        src = self.path(src_scope or scope, src_store, src_id or image_id)
        dst = self.path(scope, dst_store, image_id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, src, dst)

    async def move(self, scope: str, src_store: str, dst_store: str, image_id: str) -> None:
        src, dst = self.path(scope, src_store, image_id), self.path(scope, dst_store, image_id)
        dst.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, src, dst)

    async def read(self, scope: str, store: str, image_id: str, start: int = 0,
                   end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start``..``end`` (inclusive; ``None``: to the end) of one image, in chunks."""
        fh: BinaryIO = await asyncio.to_thread(open, self.path(scope, store, image_id), "rb")
        try:
            await asyncio.to_thread(fh.seek, start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = await asyncio.to_thread(fh.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

    def remove(self, scope: str, store: str, image_id: str) -> None:
        try:
            self.path(scope, store, image_id).unlink()
        except (FileNotFoundError, ApiError):
            pass

    def remove_all(self, scope: str, image_id: str, stores: list[str]) -> None:
        for store in [*stores, STAGING]:
            self.remove(scope, store, image_id)

    def close(self) -> None:
        """Remove a temporary root (a configured directory keeps its files: it is the user's)."""
        if self._temporary and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._temporary = False


def _safe_dir(scope: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", scope) or "_"


def _close_and_remove(fh: BinaryIO, path: Path) -> None:
    fh.close()
    path.unlink(missing_ok=True)
