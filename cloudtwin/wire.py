"""OpenStack wire conventions shared by every service: JSON bodies, timestamps, ids, request ids, paging.

Kept apart from the models so that the state classes never see HTTP, and the handlers never format a
timestamp or a link by hand.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from aiohttp import web

JSON = "application/json"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(body: Any) -> bytes:
    return _dumps(body).encode()


def json_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response; ``body=None`` gives an empty body (204s, 202 actions)."""
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, body=dumps(body), content_type=JSON, headers=headers)


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


def iso(ts: float | None) -> str | None:
    """Neutron/Octavia/Nova ``2026-11-25T10:00:00Z`` (no fraction)."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_micro(ts: float) -> str:
    """Keystone ``expires_at``: ``2026-11-25T10:00:00.000000Z``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    return None


def boolean(value: object) -> bool | None:
    """A JSON boolean, or a string that spells one ("true", "0", "on", ...); None for anything else."""
    if isinstance(value, bool):
        return value
    return truthy(value) if isinstance(value, str) else None


HUGE = 10 ** 18   # stands for a count beyond any list


def count(text: str) -> int:
    """A decimal count from a query parameter (limit, offset); digits past 18 mean "more
    than any list holds" (``int()`` itself refuses 4,300+ digits with a ValueError). ValueError when
    ``text`` is not an integer."""
    digits = text.strip().lstrip("+-")
    if len(digits) > 18 and digits.isdigit():
        return -HUGE if text.strip().startswith("-") else HUGE
    return int(text)


def page(items: Sequence[Any], query: Any, *, key: str = "id", max_limit: int = 0,
         marker_error: str | None = None) -> tuple[list[Any], Any | None]:
    """OpenStack paging: ``?limit=N&marker=<id>``. Returns the page and the marker of the next page.

    Neutron and Octavia are lenient (an unknown marker starts at the top, a bad limit means all).
    Nova and Glance are strict: give ``marker_error`` (the 400 text, ``{marker}`` filled in) and their
    page cap ``max_limit``; a non-integer or negative limit is then a 400 too.
    """
    strict = marker_error is not None
    marker = query.get("marker")
    start = 0
    if marker:
        for i, item in enumerate(items):
            if _attr(item, key) == marker:
                start = i + 1
                break
        else:
            if strict:
                raise _bad_request(marker_error.format(marker=marker))
    limit_text = query.get("limit")
    if strict:
        limit = max_limit or len(items)
        if limit_text not in (None, ""):
            try:
                limit = count(limit_text)
            except ValueError:
                raise _bad_request("limit param must be an integer") from None
            if limit < 0:
                raise _bad_request("limit param must be positive")
    else:
        try:
            limit = count(limit_text) if limit_text else 0
        except ValueError:
            limit = 0
        if limit <= 0:
            limit = max_limit or len(items)
    if max_limit:
        limit = min(limit, max_limit)
    chunk = list(items[start:start + limit])
    more = start + limit < len(items)
    return chunk, (_attr(chunk[-1], key) if more and chunk else None)


class ApiError(Exception):
    """An OpenStack API error; ``cloudtwin.errors.render`` renders it per service (it lives here so
    that the wire parsers can raise it while ``errors`` builds on this module)."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


def _bad_request(message: str) -> Exception:
    return ApiError(400, message)


def next_link(request: web.Request, marker: str, limit: str | None) -> str:
    q = dict(request.query)
    q["marker"] = marker
    if limit:
        q["limit"] = limit
    return str(request.url.with_query(q))


def _attr(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, dict) else getattr(item, key)


def filter_by(items: Iterable[dict[str, Any]], query: Any, fields: Sequence[str]) -> list[dict[str, Any]]:
    """Server-side filtering on plain fields (``?name=x&network_id=y``). Unknown values just match nothing."""
    wanted = {f: query.getall(f) for f in fields if f in query}
    if not wanted:
        return list(items)
    out = []
    for item in items:
        ok = True
        for f, values in wanted.items():
            v = item.get(f)
            if isinstance(v, bool):
                v = "true" if v else "false"
                values = [x.lower() for x in values]
            if str(v) not in values and v not in values:
                ok = False
                break
        if ok:
            out.append(item)
    return out
