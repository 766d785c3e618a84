"""Cinder v3 (block storage): volumes and their lifecycle, attachments, volume types, limits and quotas."""

from cloudtwin.services.cinder.handlers import add_routes
from cloudtwin.services.cinder.models import CinderState as STATE

__all__ = ["STATE", "add_routes"]
