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


# ---------------------------------------------------------------- 4. URL -> handler route cache
def make_url_router(original: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """A drop-in for ``BotocoreStubber.process_request`` that caches the handler per clean URL.

    moto matches the URL against every service's pattern (~54 regexes), builds ``backend.urls`` and
    compiles each backend URL pattern again on every request. The route depends only on the clean URL
    (scheme://host/path) and moto's passthrough/whitelist config, which the MOCK never changes, so the
    first request of a URL resolves it exactly as moto does and later ones call the handler directly
    (the same steps as moto after the match: header decode, recorder, HTTPException -> response).
    URLs moto does not route (None or the 404 fallback) are never cached. Returns None (use
    ``original``) if moto's internals look different."""
    try:
        import re

        import moto.backend_index as backend_index
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.base_backend import BackendDict
        from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
        from moto.core.exceptions import HTTPException
        from moto.core.utils import get_equivalent_url_in_aws_domain
        from moto.moto_api import recorder
        patterns = backend_index.backend_url_patterns
        if not callable(getattr(recorder, "_record_request", None)) or not isinstance(patterns, list):
            raise AttributeError("recorder._record_request / backend_url_patterns")
    except Exception as exc:  # noqa: BLE001
        log.info("moto internals changed: URL router not used (%s)", exc)
        _applied["url_router"] = False
        return None

    routes: dict[str, Callable[..., Any]] = {}

    def resolve(clean_url: str) -> Callable[..., Any] | None:
        if passthrough_url(clean_url):
            return None
        for service, pattern in patterns:
            if pattern.match(clean_url):
                if passthrough_service(service) or not service_whitelisted(service):
                    return None  # let moto answer (passthrough / ServiceNotWhitelisted)
                backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
                if isinstance(backend_dict, BackendDict):
                    if "us-east-1" in backend_dict[DEFAULT_ACCOUNT_ID]:
                        backend = backend_dict[DEFAULT_ACCOUNT_ID]["us-east-1"]
                    else:
                        backend = backend_dict[DEFAULT_ACCOUNT_ID]["aws"]
                else:
                    backend = backend_dict["global"]
                for url, handler in backend.urls.items():
                    if re.compile(url).match(clean_url):
                        return handler
                # moto goes on with the next service pattern: so does it, uncached
                return None
        return None

    def process_request(request: Any) -> Any:
        parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        handler = routes.get(clean_url)
        if handler is None:
            handler = resolve(clean_url)
            if handler is None:
                return original(request)
            routes[clean_url] = handler
        for header, value in request.headers.items():
            if isinstance(value, bytes):
                request.headers[header] = value.decode("utf-8")
        try:
            recorder._record_request(request)
            status, headers, body = handler(request, request.url, request.headers)
        except HTTPException as e:
            status = e.code
            headers = e.get_headers()
            body = e.get_body()
        return status, headers, body

    process_request.__wrapped__ = original  # type: ignore[attr-defined]
    process_request._spidertwin = True  # type: ignore[attr-defined]
    process_request.routes = routes  # type: ignore[attr-defined]
    _applied["url_router"] = True
    return process_request


# ---------------------------------------------------------------- 5. light form-body request
_FORM_TYPES = ("application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded")


def light_form_values(query: str, body: bytes) -> Any:
    """``Request.values`` as werkzeug builds it for a urlencoded form body: a ``CombinedMultiDict`` of
    the query args then the form fields, parsed the same way (``parse_qsl``, blank values kept,
    werkzeug's error handler)."""
    from urllib.parse import parse_qsl

    import werkzeug.urls  # noqa: F401 - registers the "werkzeug.url_quote" codec error handler
    from werkzeug.datastructures import CombinedMultiDict, MultiDict
    args = MultiDict(parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"))
    form = MultiDict(parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
    return CombinedMultiDict([args, form])


def patch_light_form_request() -> bool:
    """``BaseResponse.parse_parameters`` turns each botocore request into a werkzeug ``Request``
    (``Request.from_values``: an environ, a stream, werkzeug's form parser) only to hand its ``values``
    to the protocol parser. For the query/EC2 protocols - whose parsers read nothing but ``values`` -
    and a plain botocore POST form body (urlencoded utf-8, no gzip, within moto's form size limit),
    build ``values`` directly (``light_form_values``); every other request takes moto's path."""
    def apply() -> bool:
        from urllib.parse import urlparse

        import moto.core.responses as responses
        from botocore.awsrequest import AWSPreparedRequest
        from moto.core.parse import PROTOCOL_PARSERS, EC2QueryParser, QueryParser
        from moto.settings import MAX_FORM_MEMORY_SIZE
        base = responses.BaseResponse
        original = base.__dict__.get("parse_parameters")
        if getattr(original, "_spidertwin", False):
            return True
        get_service_model = getattr(responses, "get_service_model", None)
        determine = getattr(responses, "determine_request_protocol", None)
        if original is None or not callable(get_service_model) or not callable(determine) \
                or PROTOCOL_PARSERS.get("query") is not QueryParser \
                or PROTOCOL_PARSERS.get("ec2") is not EC2QueryParser \
                or "_do_parse" in EC2QueryParser.__dict__:
            log.info("moto internals changed: parse_parameters/parsers differ, light form request not used")
            return False
        limit = MAX_FORM_MEMORY_SIZE

        def parse_parameters(self: Any, request: Any) -> None:
            if type(request) is AWSPreparedRequest and request.method == "POST":  # noqa: E721
                headers = request.headers
                ctype = headers.get("Content-Type")
                body = request.body
                if isinstance(body, str):  # what botocore hands over; werkzeug encodes it as utf-8
                    body = body.encode("utf-8")
                if (isinstance(ctype, str) and ctype in _FORM_TYPES and isinstance(body, bytes)
                        and not headers.get("Content-Encoding") and (limit is None or len(body) <= limit)):
                    service_model = get_service_model(self.boto3_service_name)
                    protocol = determine(service_model, ctype)
                    parser_cls = PROTOCOL_PARSERS[protocol]
                    if parser_cls is QueryParser or parser_cls is EC2QueryParser:
                        try:
                            values = light_form_values(urlparse(request.url).query, body)
                        except UnicodeDecodeError:
                            return original(self, request)
                        operation_model = service_model.operation_model(self._get_action())
                        parser = parser_cls(operation_model, map_type=self.PROTOCOL_PARSER_MAP_TYPE)
                        # the query parsers read only "values"
                        self.params = parser.parse({"method": "POST", "values": values, "headers": headers,
                                                    "body": b"", "url_path": urlparse(request.url).path,
                                                    "url_params": self.uri_match.groupdict()
                                                    if self.uri_match else {}})
                        return None
            return original(self, request)

        parse_parameters.__wrapped__ = original  # type: ignore[attr-defined]
        parse_parameters._spidertwin = True  # type: ignore[attr-defined]
        base.parse_parameters = parse_parameters  # type: ignore[method-assign]
        return True

    return _once("light_form_request", apply)


def apply_all() -> dict[str, bool]:
    """Apply every moto-level patch (idempotent). Returns name -> active."""
    patch_ec2_generic_filter()
    patch_ec2_security_group_by_id()
    patch_light_form_request()
    return dict(_applied)
