"""Nova's noVNC proxy for the twin's servers: the console URL a ``novnc`` remote console returns opens
the noVNC page, whose websocket (``console/websockify?token=...``) speaks RFB 3.8 to a virtual screen.

As nova-novncproxy does, a token is good for one server for ``TOKEN_TTL`` seconds (Nova's
``[consoleauth] token_ttl``); an unknown or expired token gets the websocket closed before any byte is
sent. The screen is the server's: its name is the desktop name, and framebuffer update requests are
answered with an empty update (the twin draws no pixels).
"""

from __future__ import annotations

import secrets
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlparse

from aiohttp import WSMsgType, web

from cloudtwin.routing import Call, Router

if TYPE_CHECKING:
    from cloudtwin.services.nova.models import NovaState, Server

TOKEN_TTL = 600.0
RFB_VERSION = b"RFB 003.008\n"
WIDTH, HEIGHT = 1024, 768
# 32 bits per pixel, depth 24, little-endian, true colour, 8 bits per channel, shifts 16/8/0
PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
SECURITY_NONE = 1
FRAMEBUFFER_UPDATE_REQUEST = 3

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>noVNC - {name}</title></head>
<body>
<div id="status">noVNC: connecting to {name}...</div>
<script type="module">
  // The console of a Cloud-Twin server: an RFB 3.8 websocket at the path below (noVNC's ?path=).
  const path = new URLSearchParams(window.location.search).get("path") || "websockify";
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/" + path,
                           ["binary"]);
  ws.onopen = () => {{ document.getElementById("status").textContent = "noVNC: connected to {name}"; }};
  ws.onclose = () => {{ document.getElementById("status").textContent = "noVNC: disconnected"; }};
</script>
</body>
</html>
"""


@dataclass(frozen=True)
class ConsoleToken:
    server_id: str
    kind: str
    expires: float


def issue(nova: "NovaState", s: "Server", kind: str, root: str) -> str:
    """A console URL for ``s`` with a fresh token (``root``: the compute endpoint without /v2.1)."""
    token = secrets.token_urlsafe(16)
    now = time.time()
    tokens = nova.console_tokens
    for old in [t for t, v in tokens.items() if v.expires < now]:
        del tokens[old]
    tokens[token] = ConsoleToken(s.id, kind, now + TOKEN_TTL)
    ws_path = urlparse(root).path.lstrip("/") + f"/console/websockify?token={token}"
    return f"{root}/console/vnc_auto.html?path={quote(ws_path, safe='')}"


def _server_of_token(call: Call, token: str | None) -> "Server | None":
    from cloudtwin.services.nova.handlers import nova_of
    nova = nova_of(call)
    entry = nova.console_tokens.get(token or "")
    if entry is None or entry.expires < time.time():
        return None
    return nova.servers.get(entry.server_id)


def _token(call: Call) -> str | None:
    req = call.request
    if "token" in req.query:
        return req.query["token"]
    cookie = req.headers.get("Cookie", "")
    for part in cookie.replace("&", ";").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "token":
            return value
    return None


async def page(call: Call) -> web.Response:
    """``vnc_auto.html``: the noVNC page (the token rides in its ``path``)."""
    token = None
    path = call.request.query.get("path", "")
    if "token=" in path:
        token = path.split("token=", 1)[1].split("&", 1)[0]
    s = _server_of_token(call, token or _token(call))
    name = s.name if s is not None else "an unknown server"
    return web.Response(status=200, text=PAGE.format(name=name.replace("<", "&lt;")), content_type="text/html")


def server_init(name: str) -> bytes:
    raw = name.encode()[:200]
    return struct.pack(">HH", WIDTH, HEIGHT) + PIXEL_FORMAT + struct.pack(">L", len(raw)) + raw


async def websockify(call: Call) -> web.StreamResponse:
    """The RFB session: version, security None, ServerInit, then empty framebuffer updates."""
    s = _server_of_token(call, _token(call))
    if s is None:      # nova-novncproxy refuses a bad token before the websocket carries anything
        resp = web.Response(status=403)
        resp.force_close()
        return resp
    ws = web.WebSocketResponse(protocols=("binary",), autoping=True)
    await ws.prepare(call.request)
    await ws.send_bytes(RFB_VERSION)
    step = "version"
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
            continue
        data = bytes(msg.data)
        if step == "version":
            if not data.startswith(b"RFB 003."):
                break
            await ws.send_bytes(bytes((1, SECURITY_NONE)))
            step = "security"
        elif step == "security":
            if data[:1] != bytes((SECURITY_NONE,)):
                await ws.send_bytes(struct.pack(">L", 1))
                break
            await ws.send_bytes(struct.pack(">L", 0))
            step = "init"
        elif step == "init":
            await ws.send_bytes(server_init(s.name))
            step = "session"
        elif data[:1] == bytes((FRAMEBUFFER_UPDATE_REQUEST,)):
            await ws.send_bytes(struct.pack(">BxH", 0, 0))     # FramebufferUpdate with no rectangle
    await ws.close()
    return ws


def add_routes(r: Router) -> None:
    r.add("compute", "GET", "/console/vnc_auto.html", page, "compute:console:page", auth=False)
    r.add("compute", "GET", "/console/vnc_lite.html", page, "compute:console:page", auth=False)
    r.add("compute", "GET", "/console/websockify", websockify, "compute:console:websocket", auth=False)
