"""Keystone v3: version discovery, password/token authentication, the per-cloud, per-region catalog."""

from cloudtwin.services.keystone.handlers import add_routes

__all__ = ["add_routes"]
