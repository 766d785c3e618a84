"""Server groups (``os-server-groups``): a placement policy over a set of servers, which the scheduler
honours at boot and on every move. No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


@dataclass(kw_only=True)
class ServerGroup(Resource):
    user_id: str = ""
    policy: str = "affinity"
    rules: dict[str, Any] = field(default_factory=dict)      # {"max_server_per_host": n} (anti-affinity)
    members: list[str] = field(default_factory=list)


def check_policy(policy: Any, rules: Any) -> dict[str, Any]:
    """Validated ``rules`` for ``policy`` (Nova allows rules only with anti-affinity)."""
    if policy not in POLICIES:
        raise ApiError(400, f"Invalid input for field/attribute policy. Value: {policy}. "
                            f"{policy!r} is not one of {list(POLICIES)}")
    rules = rules or {}
    if not isinstance(rules, dict):
        raise ApiError(400, f"Invalid input for field/attribute rules. Value: {rules}. not an object")
    if rules and policy != "anti-affinity":
        raise ApiError(400, f"Only anti-affinity policy supports rules.")
    for k, v in rules.items():
        if k != "max_server_per_host":
            raise ApiError(400, f"Invalid input for field/attribute rules. Additional properties are not "
                                f"allowed ('{k}' was unexpected)")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ApiError(400, f"Invalid input for field/attribute max_server_per_host. Value: {v}. "
                                "must be a positive integer")
    return dict(rules)


def placement_hints(group: ServerGroup, host_of: dict[str, str],
                    moving: str | None = None) -> tuple[list[str], list[str]]:
    """(hosts a server must go to, hosts it must avoid) under ``group``'s hard policy, given where the
    other members run (``host_of``: member -> host). Soft policies constrain nothing."""
    others = [host_of[m] for m in group.members if m != moving and host_of.get(m)]
    if group.policy == "affinity":
        return (others[:1], [])
    if group.policy == "anti-affinity":
        limit = int(group.rules.get("max_server_per_host", 1))
        full = [h for h in set(others) if others.count(h) >= limit]
        return ([], full)
    return ([], [])
