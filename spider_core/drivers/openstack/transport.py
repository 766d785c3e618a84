"""The HTTP leg of every OpenStack call: aiohttp on the server's own event loop.

openstacksdk + keystoneauth + requests cost about 2.5 ms of CPU per request (session plumbing, header
building, urllib3, logging) plus a hop to a worker thread and back. At 200 concurrent creates that was
Spider's floor, not the cloud (``bench/splock_vs_global.py``). The SDK keeps the jobs it does well and
rarely — authentication, the service catalog, version discovery, token renewal — and hands this module
a token and the service endpoints; the requests themselves go out here, with no thread in between.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import aiohttp

USER_AGENT = "spidertwin openstack-driver"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, decoded body (JSON, text, or None when empty), headers and reason."""

    status: int
    body: Any
    headers: Mapping[str, str]
    reason: str


class TransportError(Exception):
    """No HTTP answer: ``kind`` is ``timeout`` or ``unreachable``; the message names the cause."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def join_url(endpoint: str, path: str) -> str:
    """keystoneauth's rule: a path is relative to the versioned endpoint, whatever slashes it has."""
    return endpoint.rstrip("/") + "/" + path.lstrip("/")


def ssl_context(verify: Any, cert: Any) -> ssl.SSLContext | bool:
    """The keystoneauth session's TLS settings as aiohttp's: ``verify`` True/False/CA path, ``cert``
    None, a path, or (cert, key)."""
    if verify is False:
        return False
    ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else (cert[0], cert[1])
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would use for ``url`` (``http_proxy``/``https_proxy``/``no_proxy``)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class HttpTransport:
    """One pooled aiohttp client per Spider connection, (re)made on the loop that uses it."""

    def __init__(self, *, limit: int, timeout: float, verify: Any = True, cert: Any = None) -> None:
        self._limit = limit
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl_context(verify, cert)
        self._client: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[str, str | None] = {}  # scheme://host:port -> proxy, resolved once

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.closed or self._loop is not loop:
            # a connection used from a second loop (tests, a restarted server) gets its own client
            connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._ssl, ttl_dns_cache=300)
            # trust_env=False: aiohttp would re-read the environment (and ~/.netrc, in a thread) on
            # every request; proxies are resolved once per endpoint in ``_proxy`` instead
            self._client = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False,
                                                 json_serialize=json.dumps,
                                                 headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
            self._loop = loop
        return self._client

    async def request(self, method: str, url: str, *, token: str, body: Any = None,
                      headers: Mapping[str, str] | None = None) -> Answer:
        """Send one request; an answer of any status is returned, never raised."""
        h = {"X-Auth-Token": token}
        if headers:
            h.update(headers)
        try:
            async with self._session().request(method, url, json=body, headers=h, proxy=self._proxy(url)) as resp:
                raw = await resp.read()
                return Answer(resp.status, _decode(raw, resp.content_type), resp.headers, resp.reason or "")
        except asyncio.TimeoutError:
            raise TransportError("timeout", f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransportError("unreachable", f"{type(exc).__name__}: {exc}") from None

    def _proxy(self, url: str) -> str | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._proxies:
            self._proxies[key] = proxy_for(url)
        return self._proxies[key]

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.closed:
            try:
                await client.close()
            except RuntimeError:  # its loop is gone already: nothing left to release
                pass


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if content_type == "application/json" or text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
