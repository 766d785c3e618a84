"""Who may see what in Nova: an admin acts on every project's servers, a member on its own project's.

The admin test reads the token's roles when Keystone gives it some; a token without roles counts as
admin only for the cloud's first profile user (the documented ``admin`` login) in the cloud's first
project (its admin project); the same login in another project acts as a member there.
"""

from __future__ import annotations

from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.routing import Call


def is_admin(call: Call) -> bool:
    tok = call.token
    if tok is None:
        return False
    roles = getattr(tok, "roles", None)
    if roles is not None:
        return any((r if isinstance(r, str) else getattr(r, "name", "")) == "admin" for r in roles)
    assert call.cloud is not None
    profile = call.cloud.profile
    admin_project = profile.projects[0] if profile.projects else "admin"
    return tok.user == (profile.users[0].name if profile.users else "admin") and tok.project.name == admin_project


def require_admin(call: Call, rule: str) -> None:
    """403 with Nova's policy message unless the caller is an admin."""
    if not is_admin(call):
        raise ApiError(403, f"Policy doesn't allow {rule} to be performed.")


def project_filter(call: Call) -> Any:
    """The project whose servers a list shows: the caller's, or (admin) ``all_tenants`` / ``project_id``.

    Returns a project id, or None for every project."""
    q = call.query
    if is_admin(call):
        wanted = q.get("project_id") or q.get("tenant_id")
        all_tenants = "all_tenants" in q and (q.get("all_tenants") or "1").lower() not in ("0", "false", "off", "no")
        if wanted:
            return wanted
        if all_tenants:
            return None
    return call.project_id
