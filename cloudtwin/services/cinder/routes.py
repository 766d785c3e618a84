"""Every Cinder v3 route: volumes and attachments, snapshots/backups/transfers, types and QoS, admin, groups."""

from __future__ import annotations

from cloudtwin.routing import Router
from cloudtwin.services.cinder import (admin_handlers, group_handlers, handlers, manage_handlers, snapshot_handlers,
                                      type_handlers)


def add_routes(r: Router) -> None:
    handlers.add_routes(r)
    snapshot_handlers.add_routes(r)
    type_handlers.add_routes(r)
    admin_handlers.add_routes(r)
    group_handlers.add_routes(r)
    manage_handlers.add_routes(r)
