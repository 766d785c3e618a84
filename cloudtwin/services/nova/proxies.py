"""Nova's proxy APIs (removed at microversion 2.36): security groups, floating IPs, images and
networks, served over the region's Neutron and Glance objects in Nova's own format."""

from __future__ import annotations

from cloudtwin.routing import Router


def add_routes(r: Router) -> None:
    pass
