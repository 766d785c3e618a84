"""Role enforcement: OpenStack's policy defaults (``data/policy.yaml``) checked before each handler,
and the helpers services use to decide whose objects a caller may see.

The dispatcher calls ``enforce`` once a token is authenticated: the route's operation (with the action
for ``.../action`` routes: ``compute:server:action:migrate``) is looked up in the policy file (first
matching glob, else the service's read/write default) and its check string is evaluated against the
token. A refusal is a 403 in the addressed service's own words. Services then use ``is_admin`` and
``project_scope`` for ownership (OpenStack's ``project_id:%(project_id)s`` part of a rule), and
``authorize`` for attribute-level rules (``network:network:create:shared``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from cloudtwin.errors import ApiError

if TYPE_CHECKING:
    from cloudtwin.clouds import Token
    from cloudtwin.routing import Call

POLICY_FILE = Path(__file__).with_name("data") / "policy.yaml"
_TOKEN = re.compile(r"[^\s()]*%\(\w+\)s[^\s()]*|\(|\)|[^\s()]+")   # kind:%(param)s is one atom

Check = Callable[["Token", dict[str, str], "Rules"], bool]


class PolicyError(ValueError):
    """The policy file is malformed (the message says where)."""


# ---- the check language
def _atom(text: str) -> Check:
    if text == "@":
        return lambda tok, params, rules: True
    if text == "!":
        return lambda tok, params, rules: False
    kind, sep, value = text.partition(":")
    if not sep:
        raise PolicyError(f"'{text}' is not a check (kind:value)")
    if kind == "role":
        return lambda tok, params, rules: value in tok.role_names
    if kind == "rule":
        return lambda tok, params, rules: rules.check(value, tok, params)
    if kind == "scope":
        return lambda tok, params, rules: tok.scope == value
    attrs: dict[str, Callable[["Token"], str | None]] = {
        "user_id": lambda t: t.user_id,
        "project_id": lambda t: t.project.id if t.scope == "project" else None,
        "domain_id": lambda t: t.domain_id if t.scope == "domain" else None,
        "project_domain_id": lambda t: t.project.domain_id if t.scope == "project" else None}
    if kind not in attrs:
        raise PolicyError(f"unknown check kind '{kind}' in '{text}'")
    m = re.fullmatch(r"%\((\w+)\)s", value)
    if m is None:
        return lambda tok, params, rules: attrs[kind](tok) == value
    param = m.group(1)
    return lambda tok, params, rules: params.get(param) is not None and attrs[kind](tok) == params.get(param)


def parse(text: str) -> Check:
    """An oslo.policy check string: atoms joined by ``and``/``or``/``not`` with parentheses; ``""`` = always."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return lambda tok, params, rules: True
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def expr() -> Check:
        left = term()
        while peek() == "or":
            take()
            right = term()
            left = (lambda a, b: lambda t, p, r: a(t, p, r) or b(t, p, r))(left, right)
        return left

    def term() -> Check:
        left = factor()
        while peek() == "and":
            take()
            right = factor()
            left = (lambda a, b: lambda t, p, r: a(t, p, r) and b(t, p, r))(left, right)
        return left

    def factor() -> Check:
        tok = peek()
        if tok is None:
            raise PolicyError(f"'{text}' ends too early")
        if tok == "not":
            take()
            inner = factor()
            return lambda t, p, r: not inner(t, p, r)
        if tok == "(":
            take()
            inner = expr()
            if peek() != ")":
                raise PolicyError(f"'{text}': unbalanced parentheses")
            if take() != ")":
                raise PolicyError(f"'{text}': unbalanced parentheses")
            return inner
        return _atom(take())

    out = expr()
    if pos != len(tokens):
        raise PolicyError(f"'{text}': unexpected '{tokens[pos]}'")
    return out


@dataclass
class Rules:
    named: dict[str, Check]
    defaults: dict[str, dict[str, Check]]
    operations: list[tuple[str, str, Check]]    # (glob, check string, check)

    def check(self, name: str, tok: "Token", params: dict[str, str]) -> bool:
        rule = self.named.get(name)
        return rule is not None and rule(tok, params, self)

    def lookup(self, operation: str, read: bool) -> tuple[str, Check]:
        """The check string and check for an operation: the first matching pattern, else the default."""
        for glob, text, check in self.operations:
            if fnmatch.fnmatchcase(operation, glob):
                return text, check
        service = operation.split(":", 1)[0]
        kind = "read" if read else "write"
        default = self.defaults.get(service, {}).get(kind)
        if default is None:
            return "@", lambda t, p, r: True
        return f"{service} {kind} default", default


def load(path: Path = POLICY_FILE) -> Rules:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: a mapping with rules, services and operations")

    def parsed(where: str, text: Any) -> Check:
        if not isinstance(text, str):
            raise PolicyError(f"{path}: {where}: a check string")
        try:
            return parse(text)
        except PolicyError as exc:
            raise PolicyError(f"{path}: {where}: {exc}") from None
    named = {str(k): parsed(f"rules.{k}", v) for k, v in (doc.get("rules") or {}).items()}
    defaults = {}
    for svc, kinds in (doc.get("services") or {}).items():
        if not isinstance(kinds, dict) or set(kinds) != {"read", "write"}:
            raise PolicyError(f"{path}: services.{svc}: read and write are required")
        defaults[str(svc)] = {k: parsed(f"services.{svc}.{k}", v) for k, v in kinds.items()}
    operations = []
    for i, item in enumerate(doc.get("operations") or []):
        if not isinstance(item, dict) or not isinstance(item.get("match"), str):
            raise PolicyError(f"{path}: operations[{i}]: needs match and rule")
        operations.append((item["match"], str(item.get("rule")), parsed(f"operations[{i}]", item.get("rule"))))
    texts = [*(str(v) for v in (doc.get("rules") or {}).values()), *(o[1] for o in operations),
             *(str(v) for kinds in (doc.get("services") or {}).values() for v in kinds.values())]
    for text in texts:   # every rule:NAME must resolve
        for ref in re.findall(r"rule:([\w-]+)", text):
            if ref not in named:
                raise PolicyError(f"{path}: '{text}' names rule '{ref}', which is not defined")
    return Rules(named, defaults, operations)


@lru_cache(maxsize=1)
def rules() -> Rules:
    return load()


# ---- enforcement
def operation(call: "Call") -> str:
    """The route's operation, with the action of an action route (``compute:server:action:migrate``)."""
    op = call.route.operation
    if op.endswith(":action"):
        body = call.body(required=False)
        if isinstance(body, dict) and len(body) == 1:
            op += ":" + next(iter(body))
    return op


def allowed(call: "Call", op: str | None = None) -> bool:
    tok = call.token
    if tok is None:
        return False
    op = op or operation(call)
    _, check = rules().lookup(op, call.request.method in ("GET", "HEAD"))
    return check(tok, call.params, rules())


def refusal(call: "Call", op: str) -> ApiError:
    """A 403 worded the way the addressed service words it."""
    service = call.route.service
    if service == "identity":
        return ApiError(403, f"You are not authorized to perform the requested action: {op}.")
    if service == "network":
        return ApiError(403, f"({op}) is disallowed by policy", code="PolicyNotAuthorized")
    if service == "image":
        return ApiError(403, f"You are not authorized to complete {op} action.")
    if service == "load-balancer":
        return ApiError(403, "Policy does not allow this request to be performed.")
    return ApiError(403, f"Policy doesn't allow {op} to be performed.")


def enforce(call: "Call") -> None:
    """Refuse (403) a call the token's roles do not allow."""
    op = operation(call)
    if not allowed(call, op):
        raise refusal(call, op)


def authorize(call: "Call", op: str) -> None:
    """An attribute-level rule inside a handler, e.g. ``authorize(call, "network:network:create:shared")``
    when the body sets ``shared``: a 403 unless the policy allows it (an operation the file does not
    name falls back to its service's write default)."""
    if not allowed(call, op):
        raise refusal(call, op)


# ---- helpers for the services
def is_admin(call: "Call") -> bool:
    """The token holds the admin role: it may see and act on every project's objects."""
    return bool(call.token is not None and call.token.is_admin)


def project_scope(call: "Call", *, all_param: str = "all_tenants", admin_sees_all: bool = False,
                  project_params: tuple[str, ...] = ("project_id", "tenant_id")) -> set[str] | None:
    """Which projects' objects a listing shows: ``None`` for every project, else a set of project ids.

    A non-admin gets only the token's project, whatever the query says. An admin gets: the projects
    named by ``project_id``/``tenant_id`` if any; else every project when ``all_param`` is true
    (Nova's and Cinder's ``all_tenants``, ``all_projects``) or when the service shows admins everything
    by default (``admin_sees_all``: Neutron, Glance); else the token's project."""
    assert call.token is not None
    own = {call.token.project.id}
    if not is_admin(call):
        return own
    q = call.query
    named = {q[p] for p in project_params if p in q}
    if named:
        return named
    if admin_sees_all or (all_param in q and q[all_param].lower() not in ("0", "false", "no", "off")):
        return None
    return own
