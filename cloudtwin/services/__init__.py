"""The OpenStack services Cloud-Twin speaks. Importing this package registers each service's
per-region state (``clouds.REGION_STATES``) and its routes (``ROUTE_MODULES``)."""

from __future__ import annotations

import importlib

from cloudtwin.clouds import REGION_STATES

# service name -> module with ``STATE`` (per-region state class, optional) and ``add_routes(router)``
SERVICE_MODULES = {
    "identity": "cloudtwin.services.keystone",
    "compute": "cloudtwin.services.nova",
    "network": "cloudtwin.services.neutron",
    "image": "cloudtwin.services.glance",
    "load-balancer": "cloudtwin.services.octavia",
    "volume": "cloudtwin.services.cinder",
}
STATE_KEYS = {"compute": "nova", "network": "neutron", "image": "glance", "load-balancer": "octavia",
              "volume": "cinder"}


def load_modules() -> dict[str, object]:
    mods = {}
    for service, name in SERVICE_MODULES.items():
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if hasattr(mod, "add_routes"):  # a package still being written has no routes yet
            mods[service] = mod
    return mods


for _service, _mod in load_modules().items():
    _state = getattr(_mod, "STATE", None)
    if _state is not None:
        REGION_STATES[STATE_KEYS[_service]] = _state
