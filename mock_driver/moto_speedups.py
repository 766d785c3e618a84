"""Speed-ups for the moto behind the MOCK provider, each small enough to offer upstream.

Why they exist: plain moto answers a VPC create + subnet create in ~14 ms, which caps MOCK near 70
creates/s; four of its hot spots are O(everything in the region) or redo work per request that never
changes. Each fix below replaces one moto function by an equivalent that is cheaper, and nothing more:

* ``memoise_method_names`` - ``moto.core.utils.method_names_from_class`` runs ``inspect.getmembers``
  over the whole response class on every request; the answer depends on the class only.
* ``ec2_tags_by_resource`` - ``TaggedEC2Resource.get_tags`` filters every tag of the region through
  regexes to find one resource's tags (called per object serialised); the backend keeps them in
  ``tags[resource_id]`` already.
* ``ec2_exact_filters`` - EC2's ``generic_filter`` runs ``fnmatch`` per object and filter value; for
  plain string values without a wildcard that is string equality, so a set lookup gives the same list.
* ``ec2_security_group_by_id`` - ``get_security_group_from_id`` copies and scans every group of the
  region; the groups are stored as ``groups[vpc_id][group_id]``, so one ``dict.get`` per VPC finds it.

And one on the botocore side: ``cache_user_agent(client)`` builds a MOCK client's User-Agent once
(botocore rebuilds it per request; only moto reads it).

How they stay safe on the next moto release: no version list. Each function checks that the code it
replaces has the shape it expects (names, signature, storage); if not, it leaves moto alone, logs
once and reports False, and MOCK runs on plain moto (slower, never wrong). Each replacement keeps
moto's original as ``__wrapped__``; ``tests/drivers/test_moto_speedups.py`` compares the two on the
same state with whatever moto is installed, and CI runs that suite on the newest moto release.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from typing import Any, Callable

log = logging.getLogger(__name__)

_applied: dict[str, bool] = {}
_WILDCARDS = frozenset("*?[")
_MARK = "_spidertwin"


def _once(name: str, fn: Callable[[], bool]) -> bool:
    """Run one speed-up at most once per process; any surprise means 'not applied', never an error."""
    if name not in _applied:
        try:
            _applied[name] = bool(fn())
        except Exception as exc:  # noqa: BLE001 - a speed-up must never break the backend
            log.info("moto speed-up %s not applied: %s", name, exc)
            _applied[name] = False
        if not _applied[name]:
            log.warning("moto speed-up %s not applied on this moto; MOCK runs on plain moto there", name)
    return _applied[name]


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _mark(replacement: Any, original: Any) -> Any:
    replacement.__wrapped__ = original
    setattr(replacement, _MARK, True)
    return replacement


def _replace_module_global(name: str, original: Any, replacement: Any) -> int:
    """Point every loaded ``moto.*`` module's global ``name`` that is ``original`` at ``replacement``
    (moto imports these helpers by name, so each importer holds its own reference)."""
    count = 0
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("moto.") and getattr(mod, name, None) is original:
            setattr(mod, name, replacement)
            count += 1
    return count


# ---------------------------------------------------------------- method_names_from_class
def memoise_method_names() -> bool:
    def apply() -> bool:
        import moto.core.responses  # noqa: F401 - the importer must be loaded before it is repointed
        import moto.core.utils as utils
        original = getattr(utils, "method_names_from_class", None)
        if getattr(original, _MARK, False):
            return True
        if not callable(original) or _params(original) != ["clazz"]:
            return False

        @functools.lru_cache(maxsize=None)
        def cached(clazz: Any) -> tuple[str, ...]:
            return tuple(original(clazz))

        def method_names_from_class(clazz: Any) -> list[str]:
            try:
                return list(cached(clazz))
            except TypeError:  # an unhashable argument: moto's own answer
                return original(clazz)

        return _replace_module_global("method_names_from_class", original,
                                      _mark(method_names_from_class, original)) > 0

    return _once("method_names", apply)


# ---------------------------------------------------------------- TaggedEC2Resource.get_tags
def ec2_tags_by_resource() -> bool:
    def apply() -> bool:
        from moto.ec2.models.core import TaggedEC2Resource
        from moto.ec2.models.tags import TagBackend
        from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
        original = TaggedEC2Resource.get_tags
        if getattr(original, _MARK, False):
            return True
        if _params(original) != ["self"] or not callable(getattr(TagBackend, "describe_tags", None)):
            return False

        def get_tags(self: Any) -> list[dict[str, str]]:
            rid = getattr(self, "id", None)
            store = getattr(getattr(self, "ec2_backend", None), "tags", None)
            if not rid or not isinstance(store, dict):
                return original(self)
            tags = store.get(rid)
            if not tags:
                return []
            rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
            return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype}
                    for k, v in tags.items()]

        TaggedEC2Resource.get_tags = _mark(get_tags, original)  # type: ignore[method-assign]
        return True

    return _once("ec2_tags_by_resource", apply)


# ---------------------------------------------------------------- EC2 generic_filter
def _exact_values(value: Any) -> frozenset[str] | None:
    """The filter's values as a set when every one is a plain string without a wildcard, else None."""
    patterns = [value] if isinstance(value, str) else value
    if isinstance(patterns, list) and all(type(p) is str and not (_WILDCARDS & set(p))  # noqa: E721
                                          for p in patterns):
        return frozenset(patterns)
    return None


def _make_exact_filter(original: Callable[..., Any], is_filter_matching: Callable[..., Any]
                       ) -> Callable[..., Any]:
    def generic_filter(filters: dict[str, Any], objects: list[Any]) -> list[Any]:
        if not filters:
            return objects
        for name, value in filters.items():
            exact = _exact_values(value)
            if exact is None:
                objects = [o for o in objects if is_filter_matching(o, name, value)]
                continue
            kept = []
            for o in objects:
                v = o.get_filter_value(name)
                if type(v) is str:  # noqa: E721 - exactly str: bool/int/datetime/... take moto's path
                    if v in exact:
                        kept.append(o)
                elif is_filter_matching(o, name, value):
                    kept.append(o)
            objects = kept
        return objects

    return _mark(generic_filter, original)


def ec2_exact_filters() -> bool:
    def apply() -> bool:
        import moto.ec2.models  # noqa: F401 - load every module that imported generic_filter
        import moto.ec2.utils as utils
        original = getattr(utils, "generic_filter", None)
        matching = getattr(utils, "is_filter_matching", None)
        if getattr(original, _MARK, False):
            return True
        if not callable(original) or not callable(matching) \
                or _params(original) != ["filters", "objects"] \
                or _params(matching) != ["obj", "_filter", "filter_value"]:
            return False
        if os.path.normcase("Ab") != "Ab":  # fnmatch ignores case on this OS: equality would differ
            return False
        return _replace_module_global("generic_filter", original, _make_exact_filter(original, matching)) > 0

    return _once("ec2_exact_filters", apply)


# ---------------------------------------------------------------- security group by id
def ec2_security_group_by_id() -> bool:
    def apply() -> bool:
        from moto.ec2.models.security_groups import SecurityGroupBackend
        original = getattr(SecurityGroupBackend, "get_security_group_from_id", None)
        if getattr(original, _MARK, False):
            return True
        if original is None or _params(original) != ["self", "group_id"]:
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

        SecurityGroupBackend.get_security_group_from_id = _mark(  # type: ignore[method-assign]
            get_security_group_from_id, original)
        return True

    return _once("ec2_security_group_by_id", apply)


# ---------------------------------------------------------------- botocore User-Agent
def cache_user_agent(client: Any) -> bool:
    """Build the client's User-Agent once (per client; only moto sees it)."""
    creator = getattr(client, "_user_agent_creator", None)
    build = getattr(creator, "to_string", None)
    if not callable(build):
        if "user_agent" not in _applied:
            _applied["user_agent"] = False
            log.info("botocore internals changed: no _user_agent_creator.to_string, UA not cached")
        return False
    if getattr(build, _MARK, False):
        return True
    ua = build()

    def to_string() -> str:
        return ua

    creator.to_string = _mark(to_string, build)
    _applied["user_agent"] = True
    return True


MOTO_SPEEDUPS: tuple[Callable[[], bool], ...] = (
    memoise_method_names, ec2_tags_by_resource, ec2_exact_filters, ec2_security_group_by_id)


def apply_all() -> dict[str, bool]:
    """Apply every moto-level speed-up (idempotent). Returns name -> active."""
    for speedup in MOTO_SPEEDUPS:
        speedup()
    return dict(_applied)
