"""Requests one shard passes to another: the owner of a cloud answers for it, whoever was asked.

A shard forwards a request over plain HTTP (aiohttp's client, one pooled session per process) and
hands the owner's answer back unchanged: status, headers, body. Every forwarded request carries
``X-Twin-Forwarded-By``, and a shard never forwards a request that already has it, so two shards with
different cluster files cannot bounce a request between them.

When the owner does not answer, the caller gets a fast, clear error instead of a hang: connection
refused at once, a connect timeout (``timeouts.connect``, default 2 s) for a host that is gone, and for
one second after such a failure the owner is not even tried again (a burst of calls for a dead shard's
clouds costs nothing). ``ShardDown`` carries the message; the dispatcher renders it as a 503 in the
addressed service's own error format.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Mapping

import aiohttp
from aiohttp import web

from cloudtwin.cluster import ClusterMap, Shard

FORWARDED_BY = "X-Twin-Forwarded-By"
SHARD_HEADER = "X-Twin-Shard"          # on every answer of a sharded twin: who answered
LOCAL_ONLY = "X-Twin-Shard-Local"      # admin calls: answer from this shard only (fan-out legs)
DOWN_MEMORY_S = 1.0
STREAM_CHUNK = 256 * 1024
# hop-by-hop headers (RFC 9110 7.6.1) and those the HTTP stack sets itself
_SKIP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
         "transfer-encoding", "upgrade", "host", "content-length"}


class ShardDown(Exception):
    """The owning shard did not answer; ``status`` is 503 (unreachable) or 504 (timed out)."""

    def __init__(self, shard: Shard, reason: str, status: int = 503) -> None:
        super().__init__(f"shard '{shard.name}' ({shard.url}) does not answer: {reason}")
        self.shard = shard
        self.status = status


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body) if self.body else None

    def response(self, shard: str) -> web.Response:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP}
        headers[SHARD_HEADER] = shard
        return web.Response(status=self.status, body=self.body, headers=headers)


class Peers:
    """The HTTP client a shard reaches the other shards with."""

    def __init__(self, cluster: ClusterMap, me: str, admin_token: str | None = None) -> None:
        self.cluster = cluster
        self.me = me
        self.admin_token = admin_token
        self._session: aiohttp.ClientSession | None = None
        self._down_until: dict[str, float] = {}
        self.forwarded = 0
        self.failures = 0

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.cluster.request_timeout,
                                            sock_connect=self.cluster.connect_timeout)
            self._session = aiohttp.ClientSession(
                timeout=timeout, auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=128, enable_cleanup_closed=True))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _failed(self, shard: Shard, exc: BaseException) -> ShardDown:
        """The ShardDown for a failed exchange with ``shard`` (and a second of not trying it again)."""
        self.failures += 1
        if isinstance(exc, asyncio.TimeoutError):
            return ShardDown(shard, f"no answer within {self.cluster.request_timeout:g} s "
                                    f"(connect timeout {self.cluster.connect_timeout:g} s)", 504)
        self._down_until[shard.name] = time.monotonic() + DOWN_MEMORY_S
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ShardDown(shard, exc.strerror or str(exc.os_error) or "connection failed")
        return ShardDown(shard, f"{type(exc).__name__}: {exc}".rstrip(": "))

    def _check_up(self, shard: Shard) -> None:
        if self._down_until.get(shard.name, 0.0) > time.monotonic():
            raise ShardDown(shard, "it failed less than a second ago")

    async def send(self, shard: Shard, method: str, path_qs: str, *, headers: Mapping[str, str] | None = None,
                   body: bytes | None = None, local_only: bool = False) -> Answer:
        """One request to ``shard``; ``ShardDown`` when it cannot be reached or does not answer in time."""
        self._check_up(shard)
        out = {k: v for k, v in (headers or {}).items() if k.lower() not in _SKIP}
        out[FORWARDED_BY] = self.me
        if local_only:
            out[LOCAL_ONLY] = "1"
            if self.admin_token and "X-Twin-Admin-Token" not in out:
                out["X-Twin-Admin-Token"] = self.admin_token
        self.forwarded += 1
        try:
            async with self.session().request(method, shard.url + path_qs, headers=out, data=body,
                                              allow_redirects=False) as r:
                return Answer(r.status, r.headers.copy(), await r.read())
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise self._failed(shard, exc) from None

    async def forward(self, request: web.Request, shard: Shard, body: bytes | None) -> web.StreamResponse:
        """Pass ``request`` to ``shard`` and stream its answer back as it comes: an image upload or
        download (up to Glance's size cap) goes through without being held in memory here."""
        self._check_up(shard)
        out = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP}
        out[FORWARDED_BY] = self.me
        data: Any = body if body is not None else (request.content if request.body_exists else None)
        if data is not None and body is None and request.content_length is not None:
            out["Content-Length"] = str(request.content_length)
        self.forwarded += 1
        answer: web.StreamResponse | None = None
        try:
            async with self.session().request(request.method, shard.url + request.path_qs, headers=out, data=data,
                                              allow_redirects=False) as upstream:
                answer = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP})
                answer.headers[SHARD_HEADER] = shard.name
                if upstream.content_length is not None:
                    answer.content_length = upstream.content_length
                await answer.prepare(request)
                async for chunk in upstream.content.iter_chunked(STREAM_CHUNK):
                    await answer.write(chunk)
                await answer.write_eof()
                return answer
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            if answer is not None and answer.prepared:   # the status line is out: all we can do is cut
                raise ConnectionResetError(str(self._failed(shard, exc))) from None
            raise self._failed(shard, exc) from None

    async def everywhere(self, method: str, path_qs: str, *, headers: Mapping[str, str],
                         body: bytes | None = None, shards: list[Shard] | None = None
                         ) -> tuple[dict[str, Answer], dict[str, str]]:
        """The same admin call on every shard (or on ``shards``), at once: (answers, unreachable)."""
        targets = shards if shards is not None else list(self.cluster.shards.values())
        results = await asyncio.gather(*(self.send(s, method, path_qs, headers=headers, body=body,
                                                   local_only=True) for s in targets),
                                       return_exceptions=True)
        answers: dict[str, Answer] = {}
        down: dict[str, str] = {}
        for shard, result in zip(targets, results):
            if isinstance(result, ShardDown):
                down[shard.name] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                answers[shard.name] = result
        return answers, down
