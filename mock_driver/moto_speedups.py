"""Guarded speed-ups for the in-process moto backend of the MOCK provider (moto 5.2.x, botocore 1.4x).

Each ``patch_*`` function checks that the internals it replaces look as expected; if not, it leaves
moto/botocore untouched, logs once (INFO) and returns False. Every patch keeps observable behaviour
(responses, errors, validation) identical; ``tests/drivers/test_moto_speedups.py`` compares results
with and without each patch. Applied by ``MotoBackend(speedups=True)`` through ``apply_all()``.

Measured on the create/describe hot paths (see the commit message / report for figures):

* ``patch_ec2_generic_filter`` - moto's EC2 ``generic_filter`` runs ``fnmatch`` (regex translate +
  match) for every object x every filter value; ``describe_vpcs``/``describe_subnets`` with a
  ``vpc-id`` filter and ``create_subnet``'s CIDR-conflict check (``describe_subnets(vpc-id)``) are
  therefore O(all objects of the region) with a large constant. The patch keeps the scan but compares
  plain strings with a set lookup when no filter value contains a wildcard (``*?[``); every other case
  (wildcards, bools, ints, sets, dict keys, datetimes) goes to moto's own ``is_filter_matching``.
* ``patch_ec2_security_group_by_id`` - ``get_security_group_from_id`` copies every per-VPC group dict
  and scans all groups (called by every create_security_group - the name is first tried as an id - and
  by every authorize/revoke). The groups are stored as ``groups[vpc_id][group_id]`` (the only insert is
  in ``create_security_group``), so a per-VPC ``dict.get`` finds the same object.
* ``cache_user_agent(client)`` - botocore rebuilds the User-Agent string (≈30 components, sanitised one
  by one) twice per call. Only moto reads it (to guess a region when the URL has none - ours always
  has one), so each MOCK client builds it once.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

log = logging.getLogger(__name__)

_applied: dict[str, bool] = {}
_WILDCARDS = frozenset("*?[")


def _once(name: str, fn: Callable[[], bool]) -> bool:
    if name not in _applied:
        try:
            _applied[name] = bool(fn())
        except Exception as exc:  # noqa: BLE001 - a speed-up must never break the backend
            log.info("moto speed-up %s not applied: %s", name, exc)
            _applied[name] = False
    return _applied[name]


# ---------------------------------------------------------------- 1. EC2 generic_filter
def _make_fast_generic_filter(original: Callable[..., Any], is_filter_matching: Callable[..., Any]
                              ) -> Callable[..., Any]:
    def generic_filter(filters: dict[str, Any], objects: list[Any]) -> list[Any]:
        if not filters:
            return objects
        for name, value in filters.items():
            patterns = [value] if isinstance(value, str) else value
            exact: frozenset[str] | None = None
            if isinstance(patterns, list) and all(
                    isinstance(p, str) and not (_WILDCARDS & set(p)) for p in patterns):
                exact = frozenset(patterns)
            if exact is None:
                objects = [o for o in objects if is_filter_matching(o, name, value)]
                continue
            kept = []
            for o in objects:
                v = o.get_filter_value(name)
                if type(v) is str:  # noqa: E721 - exactly str (bool/int/... take moto's path)
                    if v in exact:
                        kept.append(o)
                elif is_filter_matching(o, name, value):
                    kept.append(o)
            objects = kept
        return objects

    generic_filter.__wrapped__ = original  # type: ignore[attr-defined]
    generic_filter._spidertwin = True  # type: ignore[attr-defined]
    return generic_filter


def patch_ec2_generic_filter() -> bool:
    def apply() -> bool:
        import sys

        import moto.ec2.models  # noqa: F401 - load every module that imported generic_filter
        import moto.ec2.utils as utils
        original = getattr(utils, "generic_filter", None)
        matching = getattr(utils, "is_filter_matching", None)
        if getattr(original, "_spidertwin", False):
            return True
        if not callable(original) or not callable(matching):
            log.info("moto internals changed: ec2 generic_filter/is_filter_matching missing, not patched")
            return False
        if os.path.normcase("Ab") != "Ab":  # fnmatch is case-insensitive here: keep moto's path
            log.info("case-insensitive fnmatch on this OS: ec2 generic_filter not patched")
            return False
        fast = _make_fast_generic_filter(original, matching)
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("moto.") and \
                    getattr(mod, "generic_filter", None) is original:
                mod.generic_filter = fast  # type: ignore[attr-defined]
        return True

    return _once("ec2_generic_filter", apply)


# ---------------------------------------------------------------- 2. security group by id
def patch_ec2_security_group_by_id() -> bool:
    def apply() -> bool:
        from moto.ec2.models.security_groups import SecurityGroupBackend
        original = getattr(SecurityGroupBackend, "get_security_group_from_id", None)
        if getattr(original, "_spidertwin", False):
            return True
        if original is None:
            log.info("moto internals changed: get_security_group_from_id missing, not patched")
            return False

        def get_security_group_from_id(self: Any, group_id: str) -> Any:
            groups = getattr(self, "groups", None)
            if not isinstance(groups, dict):
                return original(self, group_id)
            for by_id in groups.values():
                group = by_id.get(group_id)
                if group is not None and group.id == group_id:
                    return group
            return None

        get_security_group_from_id.__wrapped__ = original  # type: ignore[attr-defined]
        get_security_group_from_id._spidertwin = True  # type: ignore[attr-defined]
        SecurityGroupBackend.get_security_group_from_id = get_security_group_from_id  # type: ignore[method-assign]
        return True

    return _once("ec2_security_group_by_id", apply)


# ---------------------------------------------------------------- 3. botocore User-Agent
def cache_user_agent(client: Any) -> bool:
    """Build the client's User-Agent once (per client; only moto sees it)."""
    creator = getattr(client, "_user_agent_creator", None)
    build = getattr(creator, "to_string", None)
    if not callable(build):
        if "user_agent" not in _applied:
            _applied["user_agent"] = False
            log.info("botocore internals changed: no _user_agent_creator.to_string, UA not cached")
        return False
    if getattr(build, "_spidertwin", False):
        return True
    ua = build()

    def to_string() -> str:
        return ua

    to_string._spidertwin = True  # type: ignore[attr-defined]
    creator.to_string = to_string
    _applied["user_agent"] = True
    return True


def apply_all() -> dict[str, bool]:
    """Apply every moto-level patch (idempotent). Returns name -> active."""
    patch_ec2_generic_filter()
    patch_ec2_security_group_by_id()
    return dict(_applied)
