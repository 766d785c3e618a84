"""Report viewers: sgtest runs (the 4-way expected / model / observed matrix with coloured cells, plus the
API read-back) and load runs (figure tables and the chart files ``reports`` writes, whatever their
format), read from report directories (``result.json`` from ``reports.writer``).

Where reports are: ``SPIDER_REPORT_DIRS`` (directories separated by ``os.pathsep``), else the server's
working directory and ``$SPIDER_ROOT/reports``; each is searched two levels down for ``result.json``.
Only files inside a found report directory are served, by plain name, with a content type by extension.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from reports.document import read_document
from reports.model import SuiteResult
from spider_core.adminweb.web import BASE, page
from spider_core.errors import SpiderError
from spider_core.rest.transport import spider

routes = web.RouteTableDef()

RESULT = "result.json"
IMAGES = {".png": "image/png", ".svg": "image/svg+xml"}
TEXTS = {".md", ".csv", ".xml", ".json", ".out", ".txt", ".log"}
HTML = {".html", ".htm"}
DEPTH = 2


def roots(request: web.Request) -> list[Path]:
    configured = os.environ.get("SPIDER_REPORT_DIRS", "")
    if configured:
        return [Path(p).expanduser() for p in configured.split(os.pathsep) if p]
    sp = spider(request)
    return [Path.cwd(), Path(sp.settings.root) / "reports"]


def discover(bases: list[Path]) -> list[Path]:
    """Report directories (holding ``result.json``) under the roots, newest first."""
    found: set[Path] = set()
    for base in bases:
        if not base.is_dir():
            continue
        for depth in range(DEPTH + 1):
            pattern = "/".join(["*"] * depth + [RESULT])
            for result in base.glob(pattern):
                if result.is_file():
                    found.add(result.parent.resolve())
    return sorted(found, key=lambda d: (d / RESULT).stat().st_mtime, reverse=True)


def report_id(directory: Path) -> str:
    return base64.urlsafe_b64encode(str(directory).encode()).decode().rstrip("=")


def directory_of(request: web.Request) -> Path:
    """The report directory an id names, only if discovery finds it (no path from the URL is trusted)."""
    rid = request.match_info["rid"]
    try:
        wanted = Path(base64.urlsafe_b64decode(rid + "=" * (-len(rid) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise web.HTTPNotFound() from None
    if wanted not in discover(roots(request)):
        raise SpiderError(f"No report directory with id '{rid}' (it may have been removed).")
    return wanted


@dataclass
class Listed:
    id: str
    path: str
    kind: str
    status: str
    generated_at: str
    suites: list[str]


def summary(directory: Path) -> Listed:
    try:
        doc = read_document(directory / RESULT)
        suites = doc.get("suites", [])
        kind = "sgtest" if any(s.get("sg") for s in suites) else ("load" if any(s.get("tables") or s.get("charts")
                                                                               for s in suites) else "other")
        return Listed(report_id(directory), str(directory), kind, str(doc.get("status", "")),
                      str(doc.get("generated_at", "")), [str(s.get("name", "")) for s in suites])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Listed(report_id(directory), str(directory), "unreadable", f"unreadable: {exc}", "", [])


@routes.get(BASE + "/reports")
@page("reports.html.j2")
async def report_list(request: web.Request) -> dict[str, Any]:
    bases = roots(request)
    return {"reports": [summary(d) for d in discover(bases)], "roots": [str(b) for b in bases]}


def charts_of(names: list[str]) -> list[dict[str, Any]]:
    """One entry per chart (the same stem in PNG and SVG is one chart): the file to show (SVG first:
    it stays sharp) and every format to open."""
    stems: dict[str, list[str]] = {}
    for name in names:
        if Path(name).suffix.lower() in IMAGES:
            stems.setdefault(Path(name).stem, []).append(name)
    out = []
    for stem, files in sorted(stems.items()):
        shown = next((f for f in files if f.lower().endswith(".svg")), files[0])
        out.append({"title": stem, "shown": shown, "files": sorted(files)})
    return out


def files_of(directory: Path) -> dict[str, Any]:
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    return {"charts": charts_of(names),
            "html": [n for n in names if Path(n).suffix.lower() in HTML],
            "texts": [n for n in names if Path(n).suffix.lower() in TEXTS]}


@routes.get(BASE + "/reports/{rid}")
@page("report.html.j2")
async def report_view(request: web.Request) -> dict[str, Any]:
    directory = directory_of(request)
    try:
        doc = read_document(directory / RESULT)
        suites = [SuiteResult.from_dict(s) for s in doc["suites"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpiderError(f"{directory / RESULT}: cannot be read as a report ({exc})") from None
    return {"rid": request.match_info["rid"], "directory": str(directory), "doc": doc, "suites": suites,
            "files": files_of(directory), "generated": _when(doc.get("generated_at"))}


def _when(text: Any) -> str:
    try:
        return datetime.fromisoformat(str(text)).strftime("%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return str(text or "")


# A sandboxed document may not touch localStorage (reading it throws); Locust's report reads it for its
# theme and would render nothing. This stands in with a per-page memory store.
STORAGE_SHIM = ("<script>try{window.localStorage}catch(e){const m=new Map();const s={getItem:k=>m.has(String(k))?"
                "m.get(String(k)):null,setItem:(k,v)=>{m.set(String(k),String(v))},removeItem:k=>{m.delete(String(k))},"
                "clear:()=>m.clear(),key:i=>[...m.keys()][i]??null,get length(){return m.size}};"
                "for(const n of ['localStorage','sessionStorage'])Object.defineProperty(window,n,{value:s,"
                "configurable:true})}</script>")


def with_storage_shim(html: str) -> str:
    """``html`` with ``STORAGE_SHIM`` as the first thing in its head (or its very start)."""
    match = re.search(r"<head[^>]*>", html, re.IGNORECASE)
    at = match.end() if match else 0
    return html[:at] + STORAGE_SHIM + html[at:]


@routes.get(BASE + "/reports/{rid}/file/{name}")
async def report_file(request: web.Request) -> web.StreamResponse:
    try:
        directory = directory_of(request)
    except SpiderError:
        raise web.HTTPNotFound() from None
    name = request.match_info["name"]
    path = directory / name
    suffix = path.suffix.lower()
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if suffix in IMAGES:
        # an SVG opened on its own runs no script and loads nothing
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        return web.FileResponse(path, headers={**headers, "Content-Type": IMAGES[suffix]})
    if suffix in HTML:
        # Locust's report runs its own scripts: sandboxed (an opaque origin), so it cannot reach AdminWeb's
        # session, pages or forms; it gets an in-memory storage, as a sandbox has none
        headers["Content-Security-Policy"] = "sandbox allow-scripts"
        return web.Response(text=with_storage_shim(path.read_text(encoding="utf-8", errors="replace")),
                            content_type="text/html", charset="utf-8", headers=headers)
    if suffix in TEXTS:
        return web.FileResponse(path, headers={**headers, "Content-Type": "text/plain; charset=utf-8"})
    raise web.HTTPNotFound()
