"""Count a Tempest run honestly: per test, per group, with a failed class setup failing its tests.

Tempest (stestr) reports a class whose ``setUpClass`` raised as one failed pseudo-test named
``setUpClass (module.Class)``; its tests never run and never appear. Here each test the run *listed*
(``tempest run --list-tests``) gets exactly one outcome:

* its own result (passed, failed, skipped);
* else its class's setup result (a failed setup fails it, a skipped setup skips it);
* else ``failed`` too: a listed test that never reported (a crashed worker) did not pass.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

GROUPS = ("compute", "network", "image", "volume", "identity")
_FIXTURE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((?P<target>[\w.]+)\)$")
_ATTRS = re.compile(r"\[.*\]$")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
_STATUS = {"success": PASSED, "xfail": PASSED, "fail": FAILED, "uxsuccess": FAILED, "skip": SKIPPED}


def test_id(raw: str) -> str:
    """A test id without its ``[id-...,smoke]`` attributes."""
    return _ATTRS.sub("", raw.strip())


def group_of(tid: str) -> str:
    """``compute`` for ``tempest.api.compute....``; scenario and other tests keep their second part."""
    parts = tid.split(".")
    if len(parts) > 2 and parts[1] == "api":
        return parts[2]
    return parts[1] if len(parts) > 1 else tid


def class_of(tid: str) -> str:
    return tid.rsplit(".", 1)[0]


@dataclass
class Outcome:
    test: str
    status: str          # passed | failed | skipped
    reason: str = ""     # the failure's last traceback lines, the skip's reason, or why it counts failed


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    fixture_failures: dict[str, str] = field(default_factory=dict)   # class or module -> reason

    def counts(self, group: str | None = None) -> Counter[str]:
        return Counter(o.status for o in self.outcomes if group is None or group_of(o.test) == group)

    def groups(self) -> list[str]:
        seen = {group_of(o.test) for o in self.outcomes}
        return [g for g in GROUPS if g in seen] + sorted(seen - set(GROUPS))

    @staticmethod
    def ratio(c: Counter[str]) -> float | None:
        ran = c[PASSED] + c[FAILED]
        return c[PASSED] / ran if ran else None

    def report(self) -> str:
        rows = [("group", "passed", "failed", "skipped", "ratio")]
        for g in [*self.groups(), None]:
            c = self.counts(g)
            r = self.ratio(c)
            rows.append((g or "total", str(c[PASSED]), str(c[FAILED]), str(c[SKIPPED]),
                         f"{r:.2f}" if r is not None else "-"))
        width = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join("  ".join(cell.ljust(width[0]) if i == 0 else cell.rjust(width[i])
                                   for i, cell in enumerate(row)) for row in rows)

    def by_class(self, status: str = FAILED) -> list[tuple[str, int]]:
        return Counter(class_of(o.test) for o in self.outcomes if o.status == status).most_common()

    def to_json(self) -> dict:
        return {"groups": {g or "total": dict(self.counts(g)) for g in [*self.groups(), None]},
                "tests": [vars(o) for o in self.outcomes], "fixture_failures": self.fixture_failures}


def parse_results(lines: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``{test id or fixture name: (status, reason)}`` from ``subunit_dump``'s JSON lines; a test that
    reported twice (a retry) keeps its last outcome."""
    out: dict[str, tuple[str, str]] = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        status = _STATUS.get(rec["status"])
        if status is not None:
            out[test_id(rec["id"])] = (status, rec.get("reason", ""))
    return out


def tally(listed: Iterable[str], results: dict[str, tuple[str, str]]) -> Tally:
    """One outcome per listed test (module docstring)."""
    fixtures: dict[str, tuple[str, str]] = {}
    for name, res in results.items():
        m = _FIXTURE.match(name)
        if m and m.group(1).startswith("setUp"):
            fixtures[m.group("target")] = res
    out = Tally(fixture_failures={t: r for t, (s, r) in fixtures.items() if s == FAILED})
    for raw in listed:
        tid = test_id(raw)
        if not tid:
            continue
        if tid in results:
            status, reason = results[tid]
        else:
            cls = class_of(tid)
            setup = fixtures.get(cls) or fixtures.get(cls.rsplit(".", 1)[0])
            if setup is not None:
                status, reason = setup[0], f"class setup: {setup[1]}"
            else:
                status, reason = FAILED, "listed but never reported (worker crash or timeout)"
        out.outcomes.append(Outcome(tid, status, reason))
    return out
