"""Driver discovery: CloudDriver classes registered under the ``spidertwin.drivers`` entry points.

A third party adds a cloud by installing a package that declares, in its pyproject::

    [project.entry-points."spidertwin.drivers"]
    MYCLOUD = "mycloud_driver:MyCloudDriver"

Spider selects the implementation by a connection config's driver ProviderName (upper-cased), as
CB-Spider does. Drivers are imported on first use (moto, for MOCK, takes a second to import).
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import entry_points

from spider_core.drivers.base import CloudDriver
from spider_core.errors import not_supported_driver

log = logging.getLogger(__name__)

GROUP = "spidertwin.drivers"


class DriverRegistry:
    def __init__(self, extra: dict[str, type[CloudDriver] | CloudDriver] | None = None) -> None:
        self._points = {ep.name.upper(): ep for ep in entry_points(group=GROUP)}
        self._loaded: dict[str, CloudDriver] = {}
        self._extra = {k.upper(): v for k, v in (extra or {}).items()}
        self._lock = asyncio.Lock()

    def providers(self) -> list[str]:
        return sorted(set(self._points) | set(self._extra))

    def has(self, provider: str) -> bool:
        return provider.upper() in self._points or provider.upper() in self._extra

    async def get(self, provider: str) -> CloudDriver:
        key = provider.upper()
        driver = self._loaded.get(key)
        if driver is not None:
            return driver
        if not self.has(key):
            raise not_supported_driver(provider)
        async with self._lock:
            driver = self._loaded.get(key)
            if driver is None:
                # Importing a driver (moto!) can take seconds: keep the event loop free meanwhile.
                driver = await asyncio.get_running_loop().run_in_executor(None, self._load, key)
                self._loaded[key] = driver
        return driver

    def _load(self, key: str) -> CloudDriver:
        target = self._extra.get(key)
        if target is None:
            target = self._points[key].load()
        driver = target() if isinstance(target, type) else target
        log.info("loaded cloud driver %s (%s)", key, type(driver).__name__)
        return driver

    async def prepare(self, provider: str) -> None:
        """Load a provider's driver and let it warm up; unknown providers and failures are only logged."""
        if not self.has(provider):
            return
        try:
            driver = await self.get(provider)
            await driver.prepare()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the first real request will report it
            log.warning("warming up the %s driver failed", provider, exc_info=True)

    def loaded(self) -> dict[str, CloudDriver]:
        return dict(self._loaded)

    async def close(self) -> None:
        for driver in self._loaded.values():
            try:
                await driver.close()
            except Exception:  # noqa: BLE001 - shutting down; keep closing the others
                log.exception("closing driver %s", driver.provider_name)
