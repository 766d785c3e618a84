"""Who is calling Glance: the region's state and whether the caller holds the admin role."""

from __future__ import annotations

from cloudtwin.policy import is_admin
from cloudtwin.routing import Call
from cloudtwin.services.glance.models import GlanceState

__all__ = ["is_admin", "state"]


def state(call: Call) -> GlanceState:
    assert call.region is not None
    return call.region.glance  # type: ignore[no-any-return]

