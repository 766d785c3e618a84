"""What every AdminWeb page shares: templates, the session and its CSRF token, flash messages, paging,
and the two handler shapes (``page`` renders a GET, ``action`` runs a POST form and redirects back).

Errors never reach the browser as tracebacks: a ``SpiderError`` becomes its message (CB-Spider's text)
on the page, anything else a short "see the server log" note while the traceback goes to the log.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from aiohttp import web

from spider_core.errors import SpiderError
from spider_core.secrets import KEY_FILE_NAME, load_or_create_key
from spider_core.rest.transport import spider

log = logging.getLogger(__name__)

BASE = "/spider/adminweb"
STATIC_DIR = Path(__file__).with_name("static")
SESSION_COOKIE = "spider_adminweb_session"
FLASH_COOKIE = "spider_adminweb_flash"
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
PAGE_SIZES = (20, 50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 50
INTERNAL = "Internal error while preparing this page; the server log has the details."

TEMPLATES_KEY: web.AppKey[jinja2.Environment] = web.AppKey("adminweb_templates", jinja2.Environment)
SECRET_KEY: web.AppKey[bytes] = web.AppKey("adminweb_secret", bytes)

T = TypeVar("T")


class Refused(Exception):
    """A state-changing request without a valid session and CSRF token (answered 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def setup_templates(app: web.Application, root: Path | None = None) -> None:
    env = jinja2.Environment(loader=jinja2.PackageLoader("spider_core.adminweb", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["BASE"] = BASE
    env.filters["iid"] = lambda iid: getattr(iid, "name_id", "") or ""
    env.filters["seg"] = lambda text: quote(str(text), safe="")
    env.filters["kvs"] = lambda kvs: ", ".join(f"{kv.key}={kv.value}" for kv in kvs or [])
    app[TEMPLATES_KEY] = env
    app[SECRET_KEY] = form_secret(root)


def form_secret(root: Path | None) -> bytes:
    """The key CSRF tokens are HMACs under: derived from the installation key (``$SPIDER_ROOT/secret.key``,
    which every replica of a cluster shares), so a form one replica wrote posts to another behind a
    load balancer and survives a restart. Without a root (a bare app in a test), a per-process key."""
    if root is None:
        return secrets.token_bytes(32)
    key = load_or_create_key(root / KEY_FILE_NAME)
    return hmac.new(key, b"spidertwin adminweb csrf v1", hashlib.sha256).digest()


# ---- session and CSRF ------------------------------------------------------------------------------

def session_of(request: web.Request) -> str | None:
    sid = request.cookies.get(SESSION_COOKIE, "")
    return sid if _SESSION_RE.match(sid) else None


def csrf_token(request: web.Request, sid: str) -> str:
    return hmac.new(request.app[SECRET_KEY], sid.encode(), hashlib.sha256).hexdigest()


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


async def checked_form(request: web.Request) -> dict[str, Any]:
    """The POSTed form once its CSRF token matches the session cookie (``Refused`` otherwise).

    Values are lists when a field repeats (multi-selects, checkboxes), strings otherwise."""
    sid = session_of(request)
    if sid is None:
        raise Refused("Refused: this form came without the AdminWeb session cookie (cookies blocked, or the page "
                      "is older than the server). Reload the page and submit again.")
    if not _same_origin(request):
        raise Refused("Refused: the form was posted from another site (Origin "
                      f"'{request.headers.get('Origin')}').")
    post = await request.post()
    given = post.get("csrf_token")
    if not isinstance(given, str) or not hmac.compare_digest(given, csrf_token(request, sid)):
        raise Refused("Refused: the form's CSRF token is missing or wrong (the page may be from before a server "
                      "restart). Reload the page and submit again.")
    form: dict[str, Any] = {}
    for key in post.keys():
        values = [v for v in post.getall(key) if isinstance(v, str)]
        form[key] = values if len(values) > 1 else (values[0] if values else "")
    return form


def field(form: dict[str, Any], key: str) -> str:
    value = form.get(key, "")
    return (value[0] if isinstance(value, list) else value).strip()


def fields(form: dict[str, Any], key: str) -> list[str]:
    value = form.get(key, [])
    items = value if isinstance(value, list) else [value]
    return [v.strip() for v in items if v.strip()]


# ---- flash messages --------------------------------------------------------------------------------

def _set_flash(response: web.StreamResponse, level: str, text: str) -> None:
    raw = json.dumps([level, text[:1500]]).encode()
    response.set_cookie(FLASH_COOKIE, base64.urlsafe_b64encode(raw).decode(), path=BASE, httponly=True,
                        samesite="Strict", max_age=60)


def _take_flash(request: web.Request, response: web.StreamResponse) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if raw is None:
        return None
    response.del_cookie(FLASH_COOKIE, path=BASE)
    try:
        level, text = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError, TypeError):
        return None
    return (str(level), str(text))


# ---- rendering -------------------------------------------------------------------------------------

def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    sid = session_of(request)
    new_session = sid is None
    if sid is None:
        sid = secrets.token_urlsafe(32)
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    flash = _take_flash(request, response)
    env = request.app[TEMPLATES_KEY]
    values = {"csrf_token": csrf_token(request, sid), "flash": flash, "request_path": request.path_qs, **context}
    page = env.get_template(template).render(**values)
    response.text = page
    if new_session:
        response.set_cookie(SESSION_COOKIE, sid, path=BASE, httponly=True, samesite="Strict")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                                   "script-src 'self'; frame-ancestors 'self'")
    return response


def render_error(request: web.Request, message: str, status: int = 200, **context: Any) -> web.Response:
    return render(request, "error.html.j2", {"message": message, **context}, status=status)


async def nav(request: web.Request) -> dict[str, Any]:
    """The menu's connection chooser: every connection config's name, and the one this page is about."""
    try:
        configs = await spider(request).db.list_connections()
    except Exception:  # noqa: BLE001 - the menu must not take the page down with it
        log.exception("AdminWeb menu")
        configs = []
    return {"connections": sorted(c.config_name for c in configs), "conn": request.match_info.get("conn", "")}


def page(template: str) -> Callable[[Callable[[web.Request], Awaitable[dict[str, Any]]]],
                                    Callable[[web.Request], Awaitable[web.Response]]]:
    """A GET page: the wrapped function returns the template's context; Spider's errors become the
    page's message (the connection menu stays, so the user can go on)."""
    def decorate(fn: Callable[[web.Request], Awaitable[dict[str, Any]]]):
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.Response:
            menu = await nav(request)
            try:
                return render(request, template, {**menu, **await fn(request)})
            except SpiderError as exc:
                return render_error(request, exc.message, **menu)
            except web.HTTPException:
                raise
            except Exception:  # noqa: BLE001 - never a traceback to the browser
                log.exception("AdminWeb page %s", request.path)
                return render_error(request, INTERNAL, **menu)
        return handler
    return decorate


def safe_next(target: str, fallback: str) -> str:
    """Only redirect inside AdminWeb (no open redirect through the ``next`` field)."""
    if target.startswith(BASE) and not target.startswith("//") and "\\" not in target and "\n" not in target:
        return target
    return fallback


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def action(fn: Callable[[web.Request, dict[str, Any]], Awaitable[str]]
           ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST form: check its CSRF token, run it, and go back (``next``) with the outcome as a message."""
    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.Response:
        try:
            form = await checked_form(request)
        except Refused as exc:
            return render_error(request, exc.message, status=403)
        back = safe_next(field(form, "next"), BASE)
        try:
            text, level = await fn(request, form), "ok"
        except SpiderError as exc:
            text, level = exc.message, "error"
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001
            log.exception("AdminWeb action %s", request.path)
            text, level = INTERNAL, "error"
        response = redirect(back)
        _set_flash(response, level, text)
        return response
    return handler


def form_page(template: str):
    """A POST form whose answer is a page of its own (results that must not travel in a cookie, such as
    a new key pair's private key, or a multi-cloud run's per-step table)."""
    def decorate(fn: Callable[[web.Request, dict[str, Any]], Awaitable[dict[str, Any]]]):
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.Response:
            menu = await nav(request)
            try:
                form = await checked_form(request)
            except Refused as exc:
                return render_error(request, exc.message, status=403, **menu)
            try:
                return render(request, template, {**menu, **await fn(request, form)})
            except SpiderError as exc:
                return render_error(request, exc.message, **menu)
            except web.HTTPException:
                raise
            except Exception:  # noqa: BLE001
                log.exception("AdminWeb form %s", request.path)
                return render_error(request, INTERNAL, **menu)
        return handler
    return decorate


# ---- paging ----------------------------------------------------------------------------------------

@dataclass
class Pager:
    """One page of a filtered, sorted list, and the links to the others."""

    items: list[Any]
    number: int
    size: int
    total: int
    query: str
    base_query: dict[str, str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size

    def link(self, number: int) -> str:
        return "?" + urlencode({**self.base_query, "page": str(number), "size": str(self.size)})


def _int_query(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(request.query.get(key, default))
    except ValueError:
        return default
    return min(max(value, lo), hi)


def paginate(request: web.Request, items: Iterable[T], key: Callable[[T], str]) -> Pager:
    """Filter by ``?q=`` (substring of ``key``, any case), sort by ``key``, cut ``?page=``/``?size=``."""
    text = request.query.get("q", "").strip()
    wanted = text.lower()
    chosen = sorted((i for i in items if wanted in key(i).lower()), key=key)
    size = _int_query(request, "size", DEFAULT_PAGE_SIZE, 1, max(PAGE_SIZES))
    pages = max(1, -(-len(chosen) // size))
    number = _int_query(request, "page", 1, 1, pages)
    start = (number - 1) * size
    base = {k: v for k, v in request.query.items() if k not in ("page", "size")}
    return Pager(chosen[start:start + size], number, size, len(chosen), text, base)
