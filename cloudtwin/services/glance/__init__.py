"""Glance v2: version discovery, the cloud's profile images and users' registered images."""

from cloudtwin.services.glance.handlers import add_routes
from cloudtwin.services.glance.models import GlanceState as STATE

__all__ = ["STATE", "add_routes"]
