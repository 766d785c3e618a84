"""Octavia v2 (load-balancer): load balancers, listeners, pools, members, health monitors, status trees.

``STATE`` is the per-region state class (``region.octavia``); ``add_routes`` registers every route under
both ``/v2`` and ``/v2.0`` (the SDK uses ``/v2.0``, the API reference documents ``/v2``).
"""

from cloudtwin.services.octavia.handlers import add_routes
from cloudtwin.services.octavia.models import OctaviaState as STATE

__all__ = ["STATE", "add_routes"]
