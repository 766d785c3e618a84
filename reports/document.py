"""`result.json`: the machine-readable run, stable across releases through `schema_version`.

Layout (version 1):
    {"schema_version": 1, "generated_at": ISO-8601, "status": "pass|fail|error", "exit_code": 0|1|2,
     "counts": {"tests", "pass", "fail", "skip", "error"},
     "suites": [SuiteResult.to_dict() ...],   # each with "cases" -> "checks", and "sg" (SgSuite) or null
     "baseline": BaselineComparison.to_dict() or null}
Readers accept any document whose version they know; a newer one is refused with a clear error
rather than half-read.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Sequence

from reports.model import STATUSES, SuiteResult

SCHEMA_VERSION = 1


class SerialisableSection(Protocol):
    """What the document needs of a section it embeds (a ``baseline.BaselineComparison``): the file
    format sits below the comparison that is read back from it, so it names no class of its."""

    def to_dict(self) -> dict[str, Any]: ...


def build_document(suites: Sequence[SuiteResult], *, status: str, exit_code: int,
                   baseline: SerialisableSection | None = None,
                   generated_at: datetime | None = None) -> dict[str, Any]:
    counts = {s: 0 for s in STATUSES}
    for suite in suites:
        for key, value in suite.counts().items():
            if key in counts:
                counts[key] += value
    return {"schema_version": SCHEMA_VERSION,
            "generated_at": (generated_at or datetime.now().astimezone()).isoformat(),
            "status": status, "exit_code": exit_code,
            "counts": {"tests": sum(counts.values()), **counts},
            "suites": [s.to_dict() for s in suites],
            "baseline": baseline.to_dict() if baseline is not None else None}


def dumps_document(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def read_document(path: str | Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    version = document.get("schema_version") if isinstance(document, dict) else None
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"{path}: result schema_version {version!r} is not supported "
                         f"(this reader knows 1..{SCHEMA_VERSION})")
    return document


def read_suites(path: str | Path) -> list[SuiteResult]:
    return [SuiteResult.from_dict(s) for s in read_document(path)["suites"]]
