"""The OpenStack call path: one wrapper every REST call to a cloud goes through.

``OsSession.call`` sends a raw REST call (``GET {compute}/servers/detail``…) on the server's event
loop through ``transport.HttpTransport``, inside ``call_log.timed`` (so every CSP call is recorded)
and the connection's ``CallLimiter``, and maps failures onto ``OpenStackError`` /
``OpenStackNotFound`` with the service's own message.

Raw JSON, not SDK resource objects (an SDK resource costs ~8 ms of CPU to build), and not through
keystoneauth's ``requests`` session either (~2.5 ms of CPU and a thread hop per call). openstacksdk
still does authentication, the service catalog, endpoint discovery and token renewal — in the
driver's bounded thread pool, once per token, not once per call.

Credentials never appear in messages: errors name the endpoint, never the password.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Executor
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from spider_core.calllog import call_log
from spider_core.drivers.openstack.transport import HttpTransport, TransportError, join_url
from spider_core.errors import DriverError, DriverNotFound
from spider_core.limits import CallLimiter


# proxy attribute of an openstack.connection.Connection per service word used by the handlers
SERVICES = {"compute": "compute", "network": "network", "image": "image", "volume": "block_storage",
            "load-balancer": "load_balancer", "identity": "identity"}

THROTTLE_STATUSES = (413, 429, 503)
TOKEN_MARGIN = 180.0  # seconds before a token's expiry at which a new one is fetched
MAX_PAGES = 1000      # pages one list may take (a million items at Nova's 1,000 a page)


class OpenStackError(DriverError):
    """A failed OpenStack call. ``http_status`` (0 when no HTTP answer), ``error_type`` (Neutron type
    or Nova fault name) and ``retry_after`` (seconds, or None) stay reachable for retry policies."""

    def __init__(self, message: str, *, http_status: int = 0, error_type: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, http_status=http_status, error_code=error_type, retry_after=retry_after)
        self.error_type = error_type


class OpenStackNotFound(DriverNotFound):
    def __init__(self, message: str, *, http_status: int = 404, error_type: str = "") -> None:
        super().__init__(message, http_status=http_status, error_code=error_type)
        self.error_type = error_type


def status_of(exc: BaseException) -> int:
    return int(getattr(exc, "http_status", 0) or 0)


def type_of(exc: BaseException) -> str:
    return str(getattr(exc, "error_type", "") or "")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:  # HTTP-date
        from email.utils import parsedate_to_datetime
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def parse_error_body(body: Any) -> tuple[str, str]:
    """(type, message) from any OpenStack error envelope (Nova, Neutron, Octavia, Keystone)."""
    if not isinstance(body, dict):
        return "", str(body or "").strip()
    if "NeutronError" in body and isinstance(body["NeutronError"], dict):
        e = body["NeutronError"]
        return str(e.get("type", "")), str(e.get("message", "")).strip()
    if "faultstring" in body:  # Octavia (WSME)
        return "", str(body.get("faultstring") or "").strip()
    if "error" in body and isinstance(body["error"], dict):  # Keystone
        e = body["error"]
        return str(e.get("title", "")), str(e.get("message", "")).strip()
    for key, value in body.items():  # Nova {"itemNotFound": {"code", "message"}}
        if isinstance(value, dict) and "message" in value:
            return str(key), str(value.get("message", "")).strip()
    if "message" in body:
        return "", str(body["message"]).strip()
    return "", ""


def error_from_response(service: str, method: str, status: int, body: Any,
                        headers: dict[str, str] | None = None, reason: str = "", connection: str = "") -> DriverError:
    """An HTTP error answer -> OpenStackNotFound (404) or OpenStackError with status, type and text
    (naming the Spider connection, when given, so a client of many clouds sees which one failed)."""
    etype, msg = parse_error_body(body)
    msg = msg or reason or f"HTTP {status}"
    label = f"{etype}: {msg}" if etype else msg
    if status == 404:
        return OpenStackNotFound(f"OpenStack {service} {status} NotFound: {label}", error_type=etype)
    retry_after = None
    text = f"OpenStack {service} {method} failed ({status}) {label}"
    if connection:
        text += f" [connection '{connection}']"
    if status in THROTTLE_STATUSES:
        raw = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
        if raw is None and isinstance(body, dict):  # Nova's overLimit body mirrors it
            for v in body.values():
                if isinstance(v, dict) and v.get("retryAfter") is not None:
                    raw = str(v["retryAfter"])
        retry_after = _retry_after(raw)
        if raw is not None:
            text += f" (Retry-After: {raw})"
    return OpenStackError(text, http_status=status, error_type=etype, retry_after=retry_after)


def next_marker(doc: Any, key: str) -> str | None:
    """The marker of the next page of a list answer: Nova, Neutron and Octavia link it under
    ``{key}_links`` (rel ``next``), Glance under ``next``; None on the last page."""
    if not isinstance(doc, dict):
        return None
    href = None
    for link in doc.get(f"{key}_links") or []:
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
    if href is None and isinstance(doc.get("next"), str):
        href = doc["next"]
    if not href:
        return None
    markers = [v for k, v in parse_qsl(urlsplit(str(href)).query) if k == "marker"]
    return markers[-1] if markers else None


def with_marker(path: str, marker: str) -> str:
    """``path`` asking for the page after ``marker`` (our own path: a cloud's link is never followed to
    another host with our token)."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "marker"]
    return f"{parts.path}?{urlencode(query + [('marker', marker)])}"


def map_exception(exc: BaseException, endpoint: str) -> DriverError:
    """Exceptions raised before an HTTP answer (keystoneauth/openstacksdk/requests) -> DriverError."""
    if isinstance(exc, DriverError):
        return exc
    from keystoneauth1 import exceptions as ks

    try:
        from openstack import exceptions as sdk_exc
    except ImportError:  # pragma: no cover
        sdk_exc = None  # type: ignore[assignment]
    name = type(exc).__name__
    if isinstance(exc, ks.HttpError):  # auth request answered with an error
        status = int(getattr(exc, "http_status", 0) or 0)
        if status == 401:
            return OpenStackError(f"OpenStack authentication failed at {endpoint}: "
                                  "check the credential (user, password, domain, project)",
                                  http_status=401, error_type="Unauthorized")
        if status == 404:
            return OpenStackNotFound(f"OpenStack identity {status} NotFound: {exc.message}")
        return error_from_response("identity", "auth", status, {"message": getattr(exc, "message", str(exc))},
                                   dict(getattr(getattr(exc, "response", None), "headers", {}) or {}))
    if isinstance(exc, (ks.ConnectFailure, ks.ConnectionError)):
        kind = "timed out" if isinstance(exc, ks.ConnectTimeout) else "refused or unreachable"
        return OpenStackError(f"OpenStack endpoint {endpoint} {kind} ({name})", error_type=name)
    if isinstance(exc, ks.EndpointNotFound) or (sdk_exc and isinstance(exc, sdk_exc.EndpointNotFound)):
        return OpenStackError(f"OpenStack endpoint not found in the catalog of {endpoint}: {exc}",
                              error_type="EndpointNotFound")
    if isinstance(exc, ks.DiscoveryFailure):
        return OpenStackError(f"OpenStack identity discovery failed at {endpoint}: {exc}",
                              error_type="DiscoveryFailure")
    if isinstance(exc, ks.ClientException):
        return OpenStackError(f"OpenStack client error ({name}) at {endpoint}: {exc}", error_type=name)
    if sdk_exc is not None and isinstance(exc, sdk_exc.HttpException):
        status = int(exc.status_code or 0)
        body: Any = {"message": exc.details or exc.message}
        if status == 404:
            return OpenStackNotFound(f"OpenStack {status} NotFound: {exc.details or exc.message}")
        return error_from_response("openstack", "call", status, body,
                                   dict(getattr(exc.response, "headers", {}) or {}) if exc.response is not None
                                   else None)
    if sdk_exc is not None and isinstance(exc, sdk_exc.SDKException):
        return OpenStackError(f"OpenStack SDK error ({name}) at {endpoint}: {exc}", error_type=name)
    try:
        import requests
        if isinstance(exc, requests.RequestException):
            return OpenStackError(f"OpenStack endpoint {endpoint} unreachable ({name})", error_type=name)
    except ImportError:  # pragma: no cover
        pass
    return OpenStackError(f"{name}: {exc}", error_type=name)


T = TypeVar("T")

ConnectionFactory = Callable[[], Any]
"""``factory() -> openstack.connection.Connection`` (blocking; run in the executor)."""


class OsSession:
    """What every handler of one connection shares: the SDK connection, executor and call-log labels."""

    def __init__(self, *, connection_factory: ConnectionFactory, executor: Executor, cloud_os: str,
                 region_zone: str, endpoint: str, connection: str = "", region: str = "",
                 zone: str = "", limiter: CallLimiter | None = None, http_limit: int = 256,
                 timeout: float = 60.0) -> None:
        self._factory = connection_factory
        self._executor = executor
        self.limiter = limiter
        self._conn: Any = None
        self._lock = threading.Lock()
        self._endpoints: dict[str, str] = {}
        self._token = ""
        self._token_renew_at = 0.0  # time.monotonic() after which the token is fetched again
        self._http_limit = http_limit
        self._timeout = timeout
        self._transport: HttpTransport | None = None
        self._alock: asyncio.Lock | None = None
        self._alock_loop: asyncio.AbstractEventLoop | None = None
        self.cloud_os = cloud_os
        self.region_zone = region_zone
        self.endpoint = endpoint  # for messages: the identity endpoint (never credentials)
        self.connection = connection
        self.region = region
        self.zone = zone
        self.cache: dict[str, tuple[float, Any]] = {}  # short-lived lookups (images, flavors, ext net)
        self._filling: dict[str, asyncio.Future] = {}   # lookups on their way into the cache
        self.features: dict[str, bool] = {}  # what the cloud turned out to support (routers, …)

    # ---- the SDK connection (expensive: built once, in a worker thread)
    def sdk(self) -> Any:
        conn = self._conn
        if conn is None:
            with self._lock:
                conn = self._conn
                if conn is None:
                    try:
                        conn = self._factory()
                    except BaseException as exc:  # noqa: BLE001 - mapped
                        raise map_exception(exc, self.endpoint) from None
                    self._conn = conn
        return conn

    # ---- login: a token and the service endpoints, from the SDK (blocking; in the pool)
    def _login(self, renew: bool) -> tuple[str, float]:
        """(token, seconds it stays good); ``renew`` drops the current one first (refused or due)."""
        try:
            conn = self.sdk()
            if renew:
                conn.session.invalidate()
            token = conn.session.get_token()
            expires = conn.session.auth.get_access(conn.session).expires
        except DriverError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped
            raise map_exception(exc, self.endpoint) from None
        if not token:
            raise OpenStackError(f"OpenStack authentication at {self.endpoint} gave no token",
                                 error_type="Unauthorized")
        life = 3600.0 if expires is None else expires.timestamp() - time.time()
        return token, life

    def _endpoint_of(self, service: str) -> str:
        """The versioned endpoint of ``service`` (discovery; fetched once, under the login lock)."""
        try:
            ad = getattr(self.sdk(), SERVICES.get(service, service))
            if service == "identity":  # its proxy's get_endpoint wants arguments
                return str(ad.get_endpoint_data().url)
            return str(ad.get_endpoint())
        except DriverError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped
            raise map_exception(exc, self.endpoint) from None

    def _login_lock(self) -> asyncio.Lock:
        """One login at a time per loop: a burst that finds the token due or refused logs in once."""
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock_loop is not loop:
            self._alock, self._alock_loop = asyncio.Lock(), loop
        return self._alock

    async def _credentials(self, service: str, refused: str = "") -> tuple[str, str]:
        """(token, endpoint of ``service``); the pool is used only when one is missing or due, or
        when the cloud refused ``refused`` (then that token is dropped and a new one fetched)."""
        def fresh() -> bool:
            return bool(self._token) and self._token != refused and time.monotonic() < self._token_renew_at

        if not fresh() or service not in self._endpoints:
            loop = asyncio.get_running_loop()
            async with self._login_lock():
                if not fresh():  # nobody renewed it while this call waited for the lock
                    renew = bool(self._token)  # due or refused: make keystoneauth log in again
                    token, life = await loop.run_in_executor(self._executor, self._login, renew)
                    self._token = token
                    self._token_renew_at = time.monotonic() + max(life - TOKEN_MARGIN, life / 2, 0.0)
                if service not in self._endpoints:
                    self._endpoints[service] = await loop.run_in_executor(self._executor, self._endpoint_of,
                                                                          service)
        return self._token, self._endpoints[service]

    def _http(self) -> HttpTransport:
        if self._transport is None:
            session = getattr(self._conn, "session", None)  # keystoneauth's TLS settings, if any
            self._transport = HttpTransport(limit=self._http_limit, timeout=self._timeout,
                                            verify=getattr(session, "verify", True),
                                            cert=getattr(session, "cert", None))
        return self._transport

    async def _send(self, service: str, method: str, path: str, body: Any,
                    headers: dict[str, str] | None) -> Any:
        try:
            token, endpoint = await self._credentials(service)
            url = join_url(endpoint, path)
            answer = await self._http().request(method, url, token=token, body=body, headers=headers)
            if answer.status == 401:  # expired or revoked early: log in again (once per burst), retry once
                token, endpoint = await self._credentials(service, refused=token)
                answer = await self._http().request(method, url, token=token, body=body, headers=headers)
        except DriverError as exc:
            raise self._named(exc) from None
        except TransportError as exc:
            what = "timed out" if exc.kind == "timeout" else "refused or unreachable"
            raise self._named(OpenStackError(f"OpenStack {service} endpoint {what} ({exc})",
                                             error_type="ConnectTimeout" if exc.kind == "timeout"
                                             else "ConnectFailure")) from None
        if answer.status >= 400:
            raise error_from_response(service, f"{method} {path.split('?')[0]}", answer.status, answer.body,
                                      dict(answer.headers), answer.reason, self.connection)
        return answer.body

    def _named(self, err: DriverError) -> DriverError:
        """Add the Spider connection's name to a failure that is not a plain not-found."""
        if self.connection and not isinstance(err, DriverNotFound) and self.connection not in err.message:
            err.message = f"{err.message} [connection '{self.connection}']"
            err.args = (err.message,)
        return err

    async def call(self, resource_type: str, resource_name: str, service: str, method: str, path: str,
                   body: Any = None, *, api: str = "", headers: dict[str, str] | None = None) -> Any:
        """``{METHOD} {service endpoint}{path}``; the JSON answer (None when empty)."""
        label = api or f"{method} {service}{path.split('?')[0]}"

        async def once() -> Any:
            with call_log.timed(cloud_os=self.cloud_os, region_zone=self.region_zone,
                                resource_type=resource_type, resource_name=resource_name, api=label,
                                connection=self.connection):
                return await self._send(service, method, path, body, headers)

        if self.limiter is None:
            return await once()
        return await self.limiter.run(once, "read" if method in ("GET", "HEAD") else "write")

    async def list_all(self, resource_type: str, resource_name: str, service: str, path: str,
                       key: str) -> list[dict[str, Any]]:
        """Every item of a paged list (``GET path`` answering ``{key: [...]}``), page after page: Nova
        caps a page at 1,000 servers, Glance at 25 images, and Neutron and Octavia page when the cloud
        sets a maximum. A list that came back short would make Spider think resources are gone."""
        items: list[dict[str, Any]] = []
        current, seen = path, set()
        for _ in range(MAX_PAGES):
            doc = await self.call(resource_type, resource_name, service, "GET", current)
            page = (doc or {}).get(key) or []
            items.extend(page)
            marker = next_marker(doc, key)
            if not marker or not page or marker in seen:
                return items
            seen.add(marker)
            current = with_marker(path, marker)
        raise OpenStackError(f"OpenStack {service} list {path.split('?')[0]} has more than {MAX_PAGES} pages",
                             error_type="TooManyPages")

    async def warm(self) -> None:
        """Build the SDK connection (authenticate) now instead of on the first call."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.sdk)

    async def project_id(self) -> str:
        """The token's project id ('' when the cloud does not say): list filters use it, since an
        admin token may otherwise see every project's networks and groups."""
        def get() -> str:
            try:
                return str(self.sdk().current_project_id or "")
            except DriverError:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped
                raise map_exception(exc, self.endpoint) from None

        async def fetch() -> str:
            return await asyncio.get_running_loop().run_in_executor(self._executor, get)

        return await self.memo("project_id", 3600, fetch)

    async def catalog_regions(self) -> list[str]:
        """Regions named in the token's service catalog (sorted, unique)."""
        def get() -> list[str]:
            try:
                conn = self.sdk()
                access = conn.session.auth.get_access(conn.session)
                names = set()
                for svc in access.service_catalog.catalog or []:
                    for ep in svc.get("endpoints", []):
                        region = ep.get("region_id") or ep.get("region")
                        if region:
                            names.add(str(region))
                return sorted(names)
            except DriverError:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped
                raise map_exception(exc, self.endpoint) from None

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, get)

    # ---- small TTL cache for lookups that rarely change
    async def memo(self, key: str, ttl: float, fetch: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``key`` if younger than ``ttl`` s, else ``fetch()``'s, remembered. Callers
        that miss at the same time share one fetch (a VM list's 200 gets need the flavors once)."""
        hit = self.cached(key, ttl)
        if hit is not None:
            return hit
        fut = self._filling.get(key)
        if fut is None or fut.get_loop() is not asyncio.get_running_loop():
            async def fill() -> Any:
                return self.remember(key, await fetch())

            fut = asyncio.ensure_future(fill())
            self._filling[key] = fut
            fut.add_done_callback(lambda f: self._filled(key, f))
        return await asyncio.shield(fut)

    def _filled(self, key: str, fut: asyncio.Future) -> None:
        if self._filling.get(key) is fut:
            del self._filling[key]
        if not fut.cancelled():
            fut.exception()  # retrieved: every waiter got it already

    def cached(self, key: str, ttl: float) -> Any:
        hit = self.cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        return None

    def remember(self, key: str, value: Any) -> Any:
        self.cache[key] = (time.monotonic(), value)
        return value

    def forget(self, key: str) -> None:
        self.cache.pop(key, None)

    async def aclose(self) -> None:
        """Release the HTTP pool (on the loop that owns it), then the SDK connection."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._endpoints.clear()
        self._token = ""
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - best effort
                pass


async def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.5,
                     max_interval: float = 2.0, what: str = "") -> Any:
    """Await ``check()`` until it returns a truthy value; DriverError after ``timeout`` seconds.

    The interval grows by half each round up to ``max_interval``."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise OpenStackError(f"timed out after {timeout:.0f} s waiting for {what}", error_type="Timeout")
        await asyncio.sleep(delay)
        delay = min(max_interval, delay * 1.5)
