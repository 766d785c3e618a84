"""Compare a run with a previous `result.json`: what broke, what got fixed, what got slower.

Cases are matched by (suite name, case id), so renaming a script does not look like a new case,
and a suite-level error counts as the `(suite)` case. A timing change must pass both thresholds —
relative (default ±50 %) and absolute (default 100 ms) — so millisecond noise on fast cases and
small drifts on slow ones are not reported.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from reports.document import read_suites
from reports.model import SUITE_CASE_ID, CaseResult, SuiteResult

BROKEN = ("fail", "error")
DEFAULT_REL_THRESHOLD = 0.5
DEFAULT_ABS_THRESHOLD_S = 0.1


@dataclass
class CaseChange:
    suite: str
    case_id: str
    case_name: str
    before: str | None      # None: the case is new
    after: str
    details: list[str] = field(default_factory=list)


@dataclass
class TimingChange:
    suite: str
    case_id: str
    case_name: str
    before_s: float
    after_s: float


@dataclass
class BaselineComparison:
    available: bool = True
    source: str = ""
    new_failures: list[CaseChange] = field(default_factory=list)
    fixed: list[CaseChange] = field(default_factory=list)
    still_failing: int = 0
    timing_changes: list[TimingChange] = field(default_factory=list)
    added: list[str] = field(default_factory=list)     # "suite/case-id"
    removed: list[str] = field(default_factory=list)
    rel_threshold: float = DEFAULT_REL_THRESHOLD
    abs_threshold_s: float = DEFAULT_ABS_THRESHOLD_S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BaselineComparison":
        values = dict(data)
        values["new_failures"] = [CaseChange(**c) for c in data.get("new_failures", [])]
        values["fixed"] = [CaseChange(**c) for c in data.get("fixed", [])]
        values["timing_changes"] = [TimingChange(**t) for t in data.get("timing_changes", [])]
        return cls(**values)


def _index(suites: Sequence[SuiteResult]) -> dict[tuple[str, str], CaseResult]:
    return {(s.name, c.id): c for s in suites for c in s.reported_cases()}


def compare_suites(current: Sequence[SuiteResult], previous: Sequence[SuiteResult], *,
                   source: str = "", rel_threshold: float = DEFAULT_REL_THRESHOLD,
                   abs_threshold_s: float = DEFAULT_ABS_THRESHOLD_S) -> BaselineComparison:
    now, before = _index(current), _index(previous)
    cmp = BaselineComparison(source=source, rel_threshold=rel_threshold, abs_threshold_s=abs_threshold_s)
    for (suite, case_id), case in now.items():
        old = before.get((suite, case_id))
        if old is None and case_id != SUITE_CASE_ID:
            cmp.added.append(f"{suite}/{case_id}")
        after = case.status
        was = old.status if old is not None else None
        if after in BROKEN and was not in BROKEN:
            cmp.new_failures.append(CaseChange(suite, case_id, case.name, was, after, case.problems()))
        elif after in BROKEN:
            cmp.still_failing += 1
        elif was in BROKEN and after == "pass":
            cmp.fixed.append(CaseChange(suite, case_id, case.name, was, after))
        if old is not None and _timing_changed(old.duration_s, case.duration_s, rel_threshold, abs_threshold_s):
            cmp.timing_changes.append(TimingChange(suite, case_id, case.name, old.duration_s, case.duration_s))
    cmp.removed = [f"{suite}/{case_id}" for suite, case_id in before
                   if (suite, case_id) not in now and case_id != SUITE_CASE_ID]
    return cmp


def _timing_changed(before: float, after: float, rel: float, abs_s: float) -> bool:
    delta = abs(after - before)
    if delta < abs_s:
        return False
    return before <= 0 or delta / before >= rel


def compare_with_file(current: Sequence[SuiteResult], path: str | Path, **thresholds: Any) -> BaselineComparison:
    """A missing baseline file is normal on a first CI run: say so instead of failing."""
    path = Path(path)
    if not path.exists():
        return BaselineComparison(available=False, source=str(path), **thresholds)
    return compare_suites(current, read_suites(path), source=str(path), **thresholds)
