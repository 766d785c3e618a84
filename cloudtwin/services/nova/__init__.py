"""Nova v2.1: servers and their lifecycle, flavors, keypairs (``handlers``); server actions and consoles
(``action_handlers`` over ``operations``); metadata and interfaces (``subresource_handlers``); block
devices and volume attachments (``block_devices``, ``volumes``); server tags (``tags``); hosts,
hypervisors, services, aggregates and zones (``host_handlers`` over ``hosts``); server groups
(``group_handlers`` over ``groups``); instance actions, migrations, usage, diagnostics and external
events (``record_handlers`` over ``records``); flavor management (``flavor_handlers``); limits and
quotas (``quota_handlers``); the extension list (``extension_handlers``); and the proxy APIs that Nova
serves below microversion 2.36 over Neutron's and Glance's objects (``proxies``) and Cinder's
(``volume_proxies``); the noVNC console proxy (``vnc``)."""

from cloudtwin.routing import Router
from cloudtwin.services.nova import (action_handlers, extension_handlers, flavor_handlers, group_handlers,
                                     handlers, host_handlers, proxies, quota_handlers, record_handlers,
                                     subresource_handlers, tags, vnc, volume_proxies, volumes)
from cloudtwin.services.nova.models import NovaState as STATE


def add_routes(r: Router) -> None:
    handlers.add_routes(r)
    action_handlers.add_routes(r)
    vnc.add_routes(r)
    subresource_handlers.add_routes(r)
    flavor_handlers.add_routes(r)
    host_handlers.add_routes(r)
    group_handlers.add_routes(r)
    record_handlers.add_routes(r)
    quota_handlers.add_routes(r)
    extension_handlers.add_routes(r)
    volumes.add_routes(r)
    tags.add_routes(r)
    proxies.add_routes(r)
    volume_proxies.add_routes(r)


__all__ = ["STATE", "add_routes"]
