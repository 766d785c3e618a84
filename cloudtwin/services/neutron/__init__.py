"""Neutron v2.0: networks, subnets, ports, security groups and rules, floating IPs, routers, quotas."""

from cloudtwin.services.neutron.handlers import add_routes
from cloudtwin.services.neutron.models import NeutronState

STATE = NeutronState

__all__ = ["STATE", "add_routes", "NeutronState"]
