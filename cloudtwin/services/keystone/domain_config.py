"""``/v3/domains/{id}/config``: a domain's own identity back-end options (Keystone's domain-specific
configuration). Only the ``identity`` and ``ldap`` groups and Keystone's whitelisted options are
accepted; the twin keeps them (its users stay in its own store) and gives them back."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.keystone import common

DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {"url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com", "query_scope": "one",
             "page_size": 0, "alias_dereferencing": "default", "debug_level": None, "chase_referrals": None,
             "user_tree_dn": None, "group_tree_dn": None},
}


def _check(doc: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise ApiError(400, "Invalid input for field 'config': an object of groups of options")
    for group, options in doc.items():
        if group not in DEFAULTS or not set(options) <= set(DEFAULTS[group]):
            raise ApiError(403, f"Invalid domain specific configuration: group '{group}' or one of its options "
                                "is not supported.")
    return doc


def _configs(call: Call) -> dict[str, Any]:
    return common.store(call).records.setdefault("domain_config", {})


def _domain(call: Call) -> str:
    did = call.params["id"]
    common.store(call).domain(did)
    return did


def _config(call: Call) -> dict[str, dict[str, Any]]:
    found = _configs(call).get(_domain(call))
    if found is None:
        raise ApiError(404, f"Could not find domain config: {call.params['id']}.")
    return found  # type: ignore[no-any-return]


def _group(call: Call) -> dict[str, Any]:
    found = _config(call).get(call.params["group"])
    if found is None:
        raise ApiError(404, f"Could not find domain config group: {call.params['group']}.")
    return found


async def put(call: Call) -> web.Response:
    did = _domain(call)
    doc = _check(call.body("config"))
    created = did not in _configs(call)
    _configs(call)[did] = copy.deepcopy(doc)
    return wire.json_response(201 if created else 200, {"config": doc})


async def get(call: Call) -> web.Response:
    return wire.json_response(200, {"config": _config(call)})


async def patch(call: Call) -> web.Response:
    cfg = _config(call)
    for group, options in _check(call.body("config")).items():
        cfg.setdefault(group, {}).update(options)
    return wire.json_response(200, {"config": cfg})


async def delete(call: Call) -> web.Response:
    _config(call)
    del _configs(call)[call.params["id"]]
    return wire.json_response(204)


async def get_group(call: Call) -> web.Response:
    return wire.json_response(200, {"config": {call.params["group"]: _group(call)}})


async def patch_group(call: Call) -> web.Response:
    cfg = _config(call)
    group = call.params["group"]
    doc = _check(call.body("config"))
    if set(doc) != {group}:
        raise ApiError(400, f"The body may change group '{group}' only.")
    cfg.setdefault(group, {}).update(doc[group])
    return wire.json_response(200, {"config": cfg})


async def delete_group(call: Call) -> web.Response:
    _group(call)
    del _config(call)[call.params["group"]]
    return wire.json_response(204)


def _option(call: Call) -> tuple[dict[str, Any], str]:
    group, option = _group(call), call.params["option"]
    if option not in group:
        raise ApiError(404, f"Could not find domain config option: {option}.")
    return group, option


async def get_option(call: Call) -> web.Response:
    group, option = _option(call)
    return wire.json_response(200, {"config": {option: group[option]}})


async def patch_option(call: Call) -> web.Response:
    cfg = _config(call)
    group, option = call.params["group"], call.params["option"]
    doc = _check({group: call.body("config")})
    if set(doc[group]) != {option}:
        raise ApiError(400, f"The body may change option '{option}' only.")
    cfg.setdefault(group, {}).update(doc[group])
    return wire.json_response(200, {"config": cfg})


async def delete_option(call: Call) -> web.Response:
    group, option = _option(call)
    del group[option]
    return wire.json_response(204)


def _default_group(call: Call) -> dict[str, Any]:
    group = DEFAULTS.get(call.params["group"])
    if group is None:
        raise ApiError(404, f"Could not find domain config group: {call.params['group']}.")
    return group


async def defaults(call: Call) -> web.Response:
    return wire.json_response(200, {"config": DEFAULTS})


async def default_group(call: Call) -> web.Response:
    return wire.json_response(200, {"config": {call.params["group"]: _default_group(call)}})


async def default_option(call: Call) -> web.Response:
    group, option = _default_group(call), call.params["option"]
    if option not in group:
        raise ApiError(404, f"Could not find domain config option: {option}.")
    return wire.json_response(200, {"config": {option: group[option]}})


def add_routes(r: Router) -> None:
    s, base = "identity", "/v3/domains/{id}/config"
    r.add(s, "GET", "/v3/domains/config/default", defaults, "identity:domain_config_default:get")
    r.add(s, "GET", "/v3/domains/config/{group}/default", default_group, "identity:domain_config_default:get")
    r.add(s, "GET", "/v3/domains/config/{group}/{option}/default", default_option,
          "identity:domain_config_default:get")
    for path, handlers in ((base, (get, patch, delete)), (base + "/{group}", (get_group, patch_group, delete_group)),
                           (base + "/{group}/{option}", (get_option, patch_option, delete_option))):
        r.add(s, "GET", path, handlers[0], "identity:domain_config:get")
        r.add(s, "PATCH", path, handlers[1], "identity:domain_config:update")
        r.add(s, "DELETE", path, handlers[2], "identity:domain_config:delete")
    r.add(s, "PUT", base, put, "identity:domain_config:create")
