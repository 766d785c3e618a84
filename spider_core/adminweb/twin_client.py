"""A small client of Cloud-Twin's ``/_twin`` admin API for the AdminWeb's Cloud-Twin page.

Which twin: the base URLs the registered CLOUDTWIN credentials name (``IdentityEndpoint``), or one the
user enters. An entered URL must be on this machine (a loopback host) or one of the registered ones:
the page must not become a way to make the server fetch arbitrary addresses.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from spider_core.errors import SpiderError
from spider_core.services.context import Spider

TIMEOUT = aiohttp.ClientTimeout(total=15)
PROVIDER = "CLOUDTWIN"


def base_of(endpoint: str) -> str:
    """``http://127.0.0.1:8192/v3/`` -> ``http://127.0.0.1:8192`` (the twin serves Keystone at ``/v3``)."""
    url = endpoint.strip().rstrip("/")
    return url[:-3].rstrip("/") if url.endswith("/v3") else url


async def registered(sp: Spider) -> list[str]:
    """Twin base URLs named by the CLOUDTWIN credentials, in name order, without repeats."""
    out: list[str] = []
    for cred in sorted(await sp.db.list_credentials(PROVIDER), key=lambda c: c.credential_name):
        full = await sp.db.get_credential(cred.credential_name, decrypt=True)
        for kv in full.key_values if full else []:
            if kv.key.lower() == "identityendpoint" and kv.value.strip():
                url = base_of(kv.value)
                if url not in out:
                    out.append(url)
    return out


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked(url: str, known: list[str]) -> str:
    """The entered base URL, refused unless it is http(s) on a loopback host or a registered twin."""
    url = base_of(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpiderError(f"Cloud-Twin URL '{url}': give http://host:port (for example http://127.0.0.1:8192)")
    if url not in known and not _loopback(parts.hostname):
        raise SpiderError(f"Cloud-Twin URL '{url}': only a twin on this machine (a loopback address) or one a "
                          "CLOUDTWIN credential names can be used here")
    return url


class TwinAdmin:
    """``await admin.get("/faults")`` -> the decoded JSON; errors become ``SpiderError`` with the twin's text."""

    def __init__(self, base: str) -> None:
        self.base = base
        token = os.environ.get("CLOUDTWIN_ADMIN_TOKEN", "")
        self.headers = {"X-Twin-Admin-Token": token} if token else {}

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base}/_twin{path}"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT, headers=self.headers) as session:
                async with session.request(method, url, json=body, params=params) as resp:
                    text = await resp.text()
                    data = json.loads(text) if text.strip() else None
                    if resp.status >= 400:
                        raise SpiderError(f"Cloud-Twin answered {resp.status}: {self._message(data, text)}")
                    return data
        except SpiderError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SpiderError(f"Cannot reach Cloud-Twin at {self.base}: {exc or type(exc).__name__}") from None
        except ValueError:
            raise SpiderError(f"Cloud-Twin at {self.base} did not answer JSON on {path}") from None

    @staticmethod
    def _message(data: Any, text: str) -> str:
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("message", text))
        return text[:300]

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.call("POST", path, body, params=params or None)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)
