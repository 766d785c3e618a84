"""Nova v2.1: servers and their lifecycle, actions, flavors, keypairs, zones, limits and quotas
(``handlers``); block devices and volume attachments (``block_devices``, ``volumes``); server tags
(``tags``); and the proxy APIs that Nova serves below microversion 2.36 over Neutron's and Glance's
objects (``proxies``)."""

from cloudtwin.routing import Router
from cloudtwin.services.nova import action_handlers, handlers, proxies, tags, volumes
from cloudtwin.services.nova.models import NovaState as STATE


def add_routes(r: Router) -> None:
    handlers.add_routes(r)
    action_handlers.add_routes(r)
    volumes.add_routes(r)
    tags.add_routes(r)
    proxies.add_routes(r)


__all__ = ["STATE", "add_routes"]
