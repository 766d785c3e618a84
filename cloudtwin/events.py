"""The event log: every injected fault, throttled request and notable transition, with the request it hit.

Bounded (a ring of the newest ``maxlen`` events) and sequence-numbered, so a test or a CI job can ask
for "everything since event N" (``GET /_twin/events?since=N``).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from typing import Any, Iterable

from cloudtwin import wire


class EventLog:
    def __init__(self, maxlen: int = 100_000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)
        self.counts: Counter[str] = Counter()

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        event = {"seq": next(self._seq), "time": wire.iso_micro(now), "kind": kind}
        event.update({k: v for k, v in fields.items() if v is not None})
        self._events.append(event)
        self.counts[kind] += 1
        return event

    def query(self, *, since: int = 0, kinds: Iterable[str] = (), rule: str | None = None,
              cloud: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        want = set(kinds)
        out = []
        for e in self._events:
            if e["seq"] <= since:
                continue
            if want and e["kind"] not in want:
                continue
            if rule is not None and e.get("rule") != rule:
                continue
            if cloud is not None and e.get("cloud") != cloud:
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out

    def last_seq(self) -> int:
        return self._events[-1]["seq"] if self._events else 0

    def clear(self) -> None:
        self._events.clear()
        self.counts.clear()
