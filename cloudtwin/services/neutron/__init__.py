"""Neutron v2.0: networks, subnets, ports, security groups and rules, floating IPs, routers, quotas, tags,
virtual agents, availability zones and service providers."""

from cloudtwin.services.neutron.routes import add_routes
from cloudtwin.services.neutron.models import NeutronState

STATE = NeutronState

__all__ = ["STATE", "add_routes", "NeutronState"]
