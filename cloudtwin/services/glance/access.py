"""Who is calling Glance: the region's state and whether the caller holds the admin role."""

from __future__ import annotations

from cloudtwin.routing import Call
from cloudtwin.services.glance.models import GlanceState


def state(call: Call) -> GlanceState:
    assert call.region is not None
    return call.region.glance  # type: ignore[no-any-return]


def is_admin(call: Call) -> bool:
    """True when the token carries Keystone's admin role (an admin on any scope is the cloud's admin)."""
    return bool(getattr(call.token, "is_admin", False))
