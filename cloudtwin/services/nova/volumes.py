"""Nova's volume attachments (``/servers/{id}/os-volume_attachments``) over the region's Cinder."""

from __future__ import annotations

from cloudtwin.routing import Router


def add_routes(r: Router) -> None:
    pass
