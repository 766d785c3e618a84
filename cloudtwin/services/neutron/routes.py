"""Every Neutron v2.0 route: the core resources and tags, then the deployment's admin views (agents,
availability zones, service providers)."""

from __future__ import annotations

from cloudtwin.routing import Router
from cloudtwin.services.neutron import agents, handlers


def add_routes(router: Router) -> None:
    handlers.add_routes(router)
    agents.add_routes(router)
