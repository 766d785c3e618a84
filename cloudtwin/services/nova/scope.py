"""Who may see what in Nova: an admin (the token's ``admin`` role) acts on every project's servers and
on the operator APIs; a member or reader on its own project's."""

from __future__ import annotations

from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.routing import Call


def is_admin(call: Call) -> bool:
    return call.token is not None and call.token.is_admin


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
