"""The OpenStack services Cloud-Twin speaks: ``register`` puts each service's per-region state into
``clouds.REGION_STATES``; ``load_modules`` gives the modules whose ``add_routes`` the app calls."""

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


def register() -> None:
    """Put every service's per-region state class into ``clouds.REGION_STATES`` (the twin calls it
    before it makes a cloud; importing this package alone has no side effects)."""
    for service, mod in load_modules().items():
        state = getattr(mod, "STATE", None)
        if state is not None:
            REGION_STATES[STATE_KEYS[service]] = state
