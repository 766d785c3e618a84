"""Cinder v3 (block storage): volumes and their lifecycle, attachments, snapshots, backups, transfers,
volume types and QoS specs, limits, quotas, services and user messages."""

from cloudtwin.services.cinder.routes import add_routes
from cloudtwin.services.cinder.models import CinderState as STATE

__all__ = ["STATE", "add_routes"]
