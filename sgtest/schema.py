"""Case files: loading and validation, with errors that name the file, the case and the field.

A case file is YAML (one suite per file). The schema, field by field:

.. code-block:: yaml

    suite: my-suite                 # required: the suite's name (reports and --suite use it)
    title: What this suite proves   # optional
    kind: traffic                   # traffic (default: a VM and probes) | readback (API only, no VM)
    skip_rules: prober              # prober (default): skip only what the prober cannot observe |
                                    # cbspider: CB-Spider's rules (UDP never expected fail -> skip;
                                    # all outbound columns skip while inbound TCP 22 is closed)
    script: "{id}.my-case-{id}.sh"  # optional: the header name of each case in the CB-Spider .out file
    initial_rules:                  # the rules SG-Rules-Test-SG01 is created with (CB-Spider JSON)
      - {Direction: inbound, IPProtocol: TCP, FromPort: "22", ToPort: "22"}
    columns: cbspider               # cbspider (the 8 probes) or a list of
                                    #   {direction: inbound|outbound, proto: tcp|udp|icmp, port: 1000, name: opt}
    cases:                          # run in order; each case starts from the previous case's rules
      - id: "01"                    # required, unique within the file
        title: open TCP 1000 to my client only
        steps:                      # each step is exactly one of:
          - add:    [<rule>, ...]   #   one AddRules call (POST .../securitygroup/SG-Rules-Test-SG01/rules)
          - remove: [<rule>, ...]   #   one RemoveRules call (DELETE on the same path)
          - get: 2                  #   throw-away GETs of the group
          - list: 1                 #   throw-away LISTs of the connection's groups
        columns: ...                # optional: this case's own columns (same form as above)
        probe: true                 # optional: false = API steps and read-back only
        cbspider_expected: "pass fail skip fail | pass pass pass pass"
                                    # optional: a documented expectation, one value per column; the
                                    # run flags every cell where it disagrees with the rule model
        cbspider_readback: [<rule>, ...]   # optional: a documented read-back (checked by the tests)

A ``<rule>`` is CB-Spider's rule JSON: ``Direction``, ``IPProtocol``, ``FromPort``, ``ToPort`` (strings
or numbers) and optionally ``CIDR`` (omitted = ``0.0.0.0/0``); keys are case-insensitive. Values may use
``${CLIENT1_IP}``, ``${CLIENT1_NET24}`` and ``${CLIENT1_NET16}`` (the test client, known at run time).

Expected results are never written in a case file: the rule model computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sgtest.cases import (CBSPIDER, CHECK_CONTEXT, Case, Column, RuleTemplate, Step, Suite, column_name,
                          parse_tuple)
from sgtest.rules import DIRECTIONS, PROBE_PROTOCOLS, RuleError

RULE_KEYS = {"direction": "Direction", "ipprotocol": "IPProtocol", "fromport": "FromPort", "toport": "ToPort",
             "cidr": "CIDR"}
REQUIRED_RULE_KEYS = ("direction", "ipprotocol", "fromport", "toport")
SUITE_KEYS = {"suite", "title", "description", "kind", "skip_rules", "script", "initial_rules", "columns", "cases"}
CASE_KEYS = {"id", "title", "steps", "columns", "probe", "cbspider_expected", "cbspider_readback"}


class CaseFileError(ValueError):
    """A malformed case file; the message reads ``<file>: case '<id>': field '<path>': <problem>``."""

    def __init__(self, file: str, case: str | None, field: str | None, problem: str) -> None:
        self.file, self.case, self.field, self.problem = file, case, field, problem
        where = [file]
        if case is not None:
            where.append(f"case '{case}'")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join(where) + ": " + problem)


class _Ctx:
    """Who is being validated, so every error names the place."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.case: str | None = None

    def fail(self, field: str | None, problem: str) -> CaseFileError:
        return CaseFileError(self.file, self.case, field, problem)


def _rule(ctx: _Ctx, field: str, body: Any) -> RuleTemplate:
    if not isinstance(body, dict):
        raise ctx.fail(field, f"a rule must be a mapping with Direction, IPProtocol, FromPort, ToPort[, CIDR], "
                              f"got {type(body).__name__}")
    low: dict[str, Any] = {}
    for key, value in body.items():
        k = str(key).lower()
        if k not in RULE_KEYS:
            raise ctx.fail(f"{field}.{key}", f"unknown rule key (allowed: {', '.join(RULE_KEYS.values())})")
        if isinstance(value, (dict, list)) or value is None:
            raise ctx.fail(f"{field}.{key}", "must be a string or a number")
        low[k] = value
    for k in REQUIRED_RULE_KEYS:
        if k not in low:
            raise ctx.fail(f"{field}.{RULE_KEYS[k]}", "missing")
    template = RuleTemplate.of({RULE_KEYS[k]: v for k, v in low.items()})
    try:
        template.rule(CHECK_CONTEXT)
    except KeyError as exc:
        raise ctx.fail(field, f"unknown placeholder ${{{exc.args[0]}}} (use CLIENT1_IP, CLIENT1_NET24, "
                              "CLIENT1_NET16)") from None
    except ValueError as exc:  # RuleError, bad $ syntax
        which = _rule_field_of(exc)
        raise ctx.fail(f"{field}.{which}" if which else field, str(exc)) from None
    return template


def _rule_field_of(exc: Exception) -> str:
    text = str(exc)
    for needle, name in (("Direction", "Direction"), ("IPProtocol", "IPProtocol"), ("CIDR", "CIDR"),
                         ("port", "FromPort")):
        if needle in text:
            return name
    return ""


def _rules(ctx: _Ctx, field: str, body: Any) -> tuple[RuleTemplate, ...]:
    if not isinstance(body, list) or not body:
        raise ctx.fail(field, "must be a non-empty list of rules")
    return tuple(_rule(ctx, f"{field}[{i}]", r) for i, r in enumerate(body))


def _steps(ctx: _Ctx, body: Any) -> tuple[Step, ...]:
    if body is None:
        return ()
    if not isinstance(body, list):
        raise ctx.fail("steps", "must be a list of steps")
    out = []
    for i, step in enumerate(body):
        field = f"steps[{i}]"
        if not isinstance(step, dict) or len(step) != 1:
            raise ctx.fail(field, "each step is a mapping with exactly one key: add, remove, get or list")
        [(action, value)] = step.items()
        if action in ("add", "remove"):
            out.append(Step(action, _rules(ctx, f"{field}.{action}", value)))
        elif action in ("get", "list"):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
                raise ctx.fail(f"{field}.{action}", "must be a count 1..100")
            out.append(Step(action, count=value))
        else:
            raise ctx.fail(f"{field}.{action}", "unknown step (add, remove, get or list)")
    return tuple(out)


def _columns(ctx: _Ctx, field: str, body: Any) -> tuple[Column, ...]:
    if body == "cbspider":
        return CBSPIDER
    if not isinstance(body, list) or not body:
        raise ctx.fail(field, "must be 'cbspider' or a non-empty list of {direction, proto, port}")
    out: list[Column] = []
    for i, col in enumerate(body):
        f = f"{field}[{i}]"
        if not isinstance(col, dict):
            raise ctx.fail(f, "a column is a mapping {direction, proto, port[, name]}")
        unknown = set(col) - {"direction", "proto", "port", "name"}
        if unknown:
            raise ctx.fail(f"{f}.{sorted(unknown)[0]}", "unknown column key (direction, proto, port, name)")
        direction, proto = str(col.get("direction", "")).lower(), str(col.get("proto", "")).lower()
        if direction not in DIRECTIONS:
            raise ctx.fail(f"{f}.direction", f"must be inbound or outbound, got {col.get('direction')!r}")
        if proto not in PROBE_PROTOCOLS:
            raise ctx.fail(f"{f}.proto", f"must be tcp, udp or icmp, got {col.get('proto')!r}")
        port = col.get("port")
        if proto == "icmp":
            if port not in (None, -1):
                raise ctx.fail(f"{f}.port", "an icmp column has no port")
            port = None
        elif not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ctx.fail(f"{f}.port", f"must be a port 1..65535, got {port!r}")
        name = str(col.get("name") or column_name(direction, proto, port))
        if any(c.name == name for c in out):
            raise ctx.fail(f"{f}.name", f"duplicate column name {name!r}")
        out.append(Column(name, direction, proto, port))
    return tuple(out)


def _case(ctx: _Ctx, index: int, body: Any, default_columns: tuple[Column, ...], script: str) -> Case:
    if not isinstance(body, dict):
        raise ctx.fail(f"cases[{index}]", "a case must be a mapping with at least 'id'")
    if "id" not in body or str(body["id"]).strip() == "":
        raise ctx.fail(f"cases[{index}].id", "missing")
    ctx.case = str(body["id"])
    unknown = set(body) - CASE_KEYS
    if unknown:
        raise ctx.fail(sorted(unknown)[0], f"unknown case key (allowed: {', '.join(sorted(CASE_KEYS))})")
    steps = _steps(ctx, body.get("steps"))
    columns = _columns(ctx, "columns", body["columns"]) if "columns" in body else default_columns
    probe = body.get("probe", True)
    if not isinstance(probe, bool):
        raise ctx.fail("probe", "must be true or false")
    documented = None
    if body.get("cbspider_expected") is not None:
        try:
            documented = parse_tuple(str(body["cbspider_expected"]))
        except ValueError as exc:
            raise ctx.fail("cbspider_expected", str(exc)) from None
        if len(documented) != len(columns):
            raise ctx.fail("cbspider_expected", f"has {len(documented)} values for {len(columns)} columns")
    readback = None
    if body.get("cbspider_readback") is not None:
        readback = _rules(ctx, "cbspider_readback", body["cbspider_readback"])
    case_id = ctx.case
    try:
        script_name = script.format(id=case_id)
    except (KeyError, IndexError, ValueError) as exc:
        raise CaseFileError(ctx.file, None, "script", f"bad pattern: {exc}") from None
    return Case(id=case_id, title=str(body.get("title", "")), steps=steps, columns=columns, script=script_name,
                cbspider_expected=documented, cbspider_readback=readback, probe=probe)


def parse_suite(data: Any, file: str) -> Suite:
    ctx = _Ctx(file)
    if not isinstance(data, dict):
        raise ctx.fail(None, "a case file is a YAML mapping with 'suite' and 'cases'")
    unknown = set(data) - SUITE_KEYS
    if unknown:
        raise ctx.fail(sorted(unknown)[0], f"unknown key (allowed: {', '.join(sorted(SUITE_KEYS))})")
    name = data.get("suite")
    if not isinstance(name, str) or not name.strip():
        raise ctx.fail("suite", "missing (the suite's name)")
    kind = data.get("kind", "traffic")
    if kind not in ("traffic", "readback"):
        raise ctx.fail("kind", f"must be traffic or readback, got {kind!r}")
    skip_rules = data.get("skip_rules", "prober")
    if skip_rules not in ("cbspider", "prober"):
        raise ctx.fail("skip_rules", f"must be cbspider or prober, got {skip_rules!r}")
    script = str(data.get("script") or "{id}." + name + "-case-{id}.sh")
    initial = _rules(ctx, "initial_rules", data["initial_rules"]) if data.get("initial_rules") else ()
    columns = _columns(ctx, "columns", data.get("columns", "cbspider"))
    cases_body = data.get("cases")
    if not isinstance(cases_body, list) or not cases_body:
        raise ctx.fail("cases", "must be a non-empty list of cases")
    cases: list[Case] = []
    for i, body in enumerate(cases_body):
        ctx.case = None
        case = _case(ctx, i, body, columns, script)
        if any(c.id == case.id for c in cases):
            raise CaseFileError(file, case.id, "id", "duplicate case id")
        cases.append(case)
    return Suite(name=name.strip(), title=str(data.get("title", "")), cases=tuple(cases), initial_rules=initial,
                 kind=kind, skip_rules=skip_rules, source=file, description=str(data.get("description", "")))


def load_suite(path: str | Path) -> Suite:
    """Read and validate one case file (a :class:`CaseFileError` names what is wrong and where)."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CaseFileError(name, None, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise CaseFileError(name, None, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_suite(data, name)


def builtin_suite(name: str) -> Suite:
    """One of the shipped case files (``sgtest/cases/<name>.yaml``)."""
    from sgtest.cases import CASES_DIR

    return load_suite(CASES_DIR / f"{name}.yaml")


__all__ = ["CaseFileError", "builtin_suite", "load_suite", "parse_suite", "RuleError"]
