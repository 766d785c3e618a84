"""Nova v2.1: servers and their lifecycle, actions, flavors, keypairs, zones, limits and quotas."""

from cloudtwin.services.nova.handlers import add_routes
from cloudtwin.services.nova.models import NovaState as STATE

__all__ = ["STATE", "add_routes"]
