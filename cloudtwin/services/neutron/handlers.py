"""Neutron v2.0 wire format (work in progress)."""

from __future__ import annotations

from cloudtwin.routing import Router


def add_routes(router: Router) -> None:
    pass
