"""schemathesis against a running server's own OpenAPI description, with a per-route tally.

Used by ``tests/test_openapi.py`` (a bounded pass in CI) and ``bench/api_fuzz.py`` (a larger one).
Each operation gets ``max_examples`` generated cases (positive, then negative data); every answer is
checked against the description (status documented, content type, response schema). A 5xx counts
as a *crash* when it is not the server's documented error: for Spider, a 5xx whose body is not
``{"message": text}`` or is the catch-all ``Internal Server Error`` (an unhandled exception); for
Cloud-Twin's admin API, any 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Tally:
    """What one operation's cases did."""

    operation: str
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_errors: int = 0
    crashes: list[str] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)  # distinct 5xx texts (the documented failures)
    mismatches: list[str] = field(default_factory=list)


def spider_crash(response: requests.Response) -> bool:
    """Spider's documented failure is ``{"message": text}`` (CB-Spider's 500s); anything else, or the
    catch-all text of an unhandled exception, is a crash."""
    if response.status_code < 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and isinstance(body.get("message"), str)) or \
        body["message"] == "Internal Server Error"


def any_5xx(response: requests.Response) -> bool:
    return response.status_code >= 500


def fuzz(spec_url: str, base_url: str, *, max_examples: int, auth: tuple[str, str] | None = None,
         headers: dict[str, str] | None = None, exclude: dict[str, str] | None = None,
         crashed: Callable[[requests.Response], bool] = spider_crash, seed: int = 1,
         connection: str = "", connection_only: bool = False, negative: bool = True) -> list[Tally]:
    """Run schemathesis on every operation of the description at ``spec_url`` except ``exclude``
    (``"METHOD /path"`` -> why); return one ``Tally`` per operation. With ``connection``, positive
    cases name that connection in the ``ConnectionName`` query (a body's own ConnectionName still
    wins), so they reach past "does not exist" into the handlers; ``connection_only`` fuzzes only the
    operations that take a connection (the others do not reach a driver); ``negative`` adds cases of
    invalid data where an input can be made invalid."""
    schema = schemathesis.openapi.from_url(spec_url)
    session = requests.Session()
    if auth:
        session.auth = auth
    tallies: list[Tally] = []
    skip = exclude or {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        takes_connection = _has_query(operation, "ConnectionName")
        if label in skip or (connection_only and not takes_connection):
            continue
        tally = Tally(label)
        tallies.append(tally)
        pinned = {"ConnectionName": connection} if connection and takes_connection else None
        raw = operation.definition.raw
        modes = [GenerationMode.POSITIVE]
        breakable = raw.get("requestBody") or any(_breakable(p.get("schema", {})) for p in raw.get("parameters", []))
        if negative and breakable:
            modes.append(GenerationMode.NEGATIVE)  # free strings cannot be made invalid
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode,
                                             query=pinned if mode is GenerationMode.POSITIVE else None)
            _run(strategy, mode, tally, session, base_url, headers or {}, crashed, max(1, max_examples // 2), seed)
    session.close()
    return tallies


def _breakable(schema: dict) -> bool:
    return schema.get("type") != "string" or "enum" in schema or "pattern" in schema


def _has_query(operation: Any, name: str) -> bool:
    return any(p.get("in") == "query" and p.get("name") == name
               for p in operation.definition.raw.get("parameters", []))


def _run(strategy: Any, mode: GenerationMode, tally: Tally, session: requests.Session, base_url: str,
         headers: dict[str, str], crashed: Callable[[requests.Response], bool], examples: int, seed: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @hypothesis.seed(seed)
    @given(case=strategy)
    def one(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        tally.cases += 1
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            tally.server_errors += 1
            tally.messages.add(response.text[:160])
            if crashed(response):
                tally.crashes.append(_describe(case, response))
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:  # record and go on: the table counts them all
            tally.mismatches.append(f"{_describe(case, response)}\n    {_titles(exc)}")

    try:
        one()
    except hypothesis.errors.Unsatisfiable:
        pass  # negative data for an operation whose only inputs cannot be broken (e.g. free strings)


def _titles(exc: FailureGroup) -> str:
    return "; ".join(f"{f.title}: {getattr(f, 'message', '')}"[:400] for f in exc.exceptions)


def _describe(case: Any, response: requests.Response) -> str:
    body = case.body if not isinstance(case.body, bytes) else case.body[:200]
    text = json.dumps(body, default=str)[:300] if body is not None and not _is_unset(body) else "-"
    return (f"{case.method} {response.request.path_url[:200]} body={text} -> {response.status_code} "
            f"{response.text[:300]!r}")


def _is_unset(value: Any) -> bool:
    return type(value).__name__ == "NotSet"


def table(tallies: list[Tally]) -> str:
    """The per-route figures: cases, status counts, 5xx, crashes, response-schema mismatches."""
    width = max([len(t.operation) for t in tallies] + [9])
    lines = [f"{'operation':<{width}}  cases  5xx  crash  mismatch  statuses"]
    for t in tallies:
        statuses = " ".join(f"{code}:{n}" for code, n in sorted(t.statuses.items()))
        lines.append(f"{t.operation:<{width}}  {t.cases:5d}  {t.server_errors:3d}  {len(t.crashes):5d}  "
                     f"{len(t.mismatches):8d}  {statuses}")
    lines.append(f"{'total (' + str(len(tallies)) + ' operations)':<{width}}  {sum(t.cases for t in tallies):5d}  "
                 f"{sum(t.server_errors for t in tallies):3d}  {sum(len(t.crashes) for t in tallies):5d}  "
                 f"{sum(len(t.mismatches) for t in tallies):8d}")
    return "\n".join(lines)


def server_errors(tallies: list[Tally], limit: int = 12) -> str:
    """The distinct 5xx answers and how many operations gave each (what the 500s say)."""
    seen: dict[str, int] = {}
    for t in tallies:
        for text in t.messages:
            key = text.strip()[:100]
            seen[key] = seen.get(key, 0) + 1
    top = sorted(seen.items(), key=lambda kv: -kv[1])[:limit]
    return "5xx answers (operations giving each):\n" + "\n".join(f"  {n:4d}  {text}" for text, n in top)


def problems(tallies: list[Tally], limit: int = 20) -> list[str]:
    out = [f"{t.operation}: crash: {c}" for t in tallies for c in t.crashes]
    out += [f"{t.operation}: mismatch: {m}" for t in tallies for m in t.mismatches]
    return out[:limit]
