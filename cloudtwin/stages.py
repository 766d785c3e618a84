"""Lifecycle stages: states, timed transitions with jitter, weighted alternatives and failures.

The data lives in ``cloudtwin/data/stages.yaml`` (profiles override parts of it). ``Scheduler`` keeps
one heap of due transitions for the whole twin and one task that applies them, so 10,000 servers cost
10,000 heap entries, not 10,000 timers. Randomness comes from a generator seeded with
(twin seed, object id, transition number): a replay under the same seed takes the same paths no matter
how requests interleave.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import yaml

from cloudtwin.background import Background
from cloudtwin.profiles import ProfileError, deep_merge

STAGES_FILE = Path(__file__).with_name("data") / "stages.yaml"
GONE = "DELETED"


@dataclass(frozen=True)
class Stage:
    delay: float
    jitter: float
    next: tuple[tuple[str, float], ...]   # (state, weight)
    fail_probability: float = 0.0
    fail_to: str = "ERROR"
    fail_message: str = ""


@dataclass(frozen=True)
class Action:
    allowed: tuple[str, ...]
    enter: str


@dataclass(frozen=True)
class KindLifecycle:
    kind: str
    states: dict[str, dict[str, Any]]
    stages: dict[str, Stage]
    actions: dict[str, Action]

    def attrs(self, state: str) -> dict[str, Any]:
        return self.states.get(state, {})


class Tracked(Protocol):
    """What the scheduler needs of an object: an id, a state, and a transition counter."""

    id: str
    state: str
    transitions: int


@dataclass(frozen=True)
class Placement:
    """Where an object lives; faults (stuck transitions, AZ outages) match on it."""

    cloud: str
    region: str
    zone: str = ""
    project: str = ""


OnEnter = Callable[[Any, str, str], None]
"""``on_enter(obj, state, message)``: called after a timed transition put ``obj`` in ``state`` (its
next stage is already scheduled). For ``DELETED`` the service removes the object. ``message`` is the
failure text when the transition failed (e.g. a server's ``fault``)."""

TransitionHook = Callable[[Placement, str, Any, str], "tuple[str, str, str] | None"]
"""``hook(placement, kind, obj, from_state) -> ("stuck"|"fail", rule_id, message) | None`` (faults)."""


def _parse_next(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if isinstance(value, str):
        return ((value, 1.0),)
    if isinstance(value, list) and value:
        out = []
        for alt in value:
            if not isinstance(alt, dict) or "to" not in alt:
                raise ProfileError(f"{where}.next: items need 'to' (and optional 'weight')")
            w = float(alt.get("weight", 1))
            if w < 0:
                raise ProfileError(f"{where}.next: weights must be >= 0")
            out.append((str(alt["to"]), w))
        if sum(w for _, w in out) <= 0:
            raise ProfileError(f"{where}.next: at least one weight must be > 0")
        return tuple(out)
    raise ProfileError(f"{where}.next: a state name or a list of {{to, weight}}")


def build_lifecycles(doc: dict[str, Any], source: str = str(STAGES_FILE)) -> dict[str, KindLifecycle]:
    out: dict[str, KindLifecycle] = {}
    for kind, spec in doc.items():
        where = f"{source}: {kind}"
        if not isinstance(spec, dict):
            raise ProfileError(f"{where}: a mapping with states/stages/actions")
        states = {str(k): dict(v or {}) for k, v in (spec.get("states") or {}).items()}
        stages: dict[str, Stage] = {}
        for state, st in (spec.get("stages") or {}).items():
            w = f"{where}.stages.{state}"
            if not isinstance(st, dict) or "next" not in st:
                raise ProfileError(f"{w}: needs 'next'")
            try:
                delay, jitter = float(st.get("delay", 0)), float(st.get("jitter", 0))
            except (TypeError, ValueError):
                raise ProfileError(f"{w}: delay and jitter are numbers of seconds") from None
            if delay < 0 or jitter < 0:
                raise ProfileError(f"{w}: delay and jitter must be >= 0")
            fail = st.get("fail") or {}
            p = float(fail.get("probability", 0))
            if not 0 <= p <= 1:
                raise ProfileError(f"{w}.fail.probability: between 0 and 1")
            nxt = _parse_next(st["next"], w)
            for target, _ in nxt:
                if target != GONE and target not in states:
                    raise ProfileError(f"{w}.next: unknown state '{target}'")
            stages[str(state)] = Stage(delay, jitter, nxt, p, str(fail.get("to", "ERROR")),
                                       str(fail.get("message", "")))
        actions = {}
        for name, act in (spec.get("actions") or {}).items():
            if not isinstance(act, dict) or "to" not in act:
                raise ProfileError(f"{where}.actions.{name}: needs 'from' and 'to'")
            actions[str(name)] = Action(tuple(act.get("from") or ()), str(act["to"]))
        out[str(kind)] = KindLifecycle(str(kind), states, stages, actions)
    return out


_BUILT: dict[str, dict[str, KindLifecycle]] = {}
_SECTIONS = ("states", "stages", "actions")


def _as_stage_doc(overrides: dict[str, Any]) -> dict[str, Any]:
    """A profile writes ``stages: {server: {BUILD: {delay: 5}}}``; the stage file nests timed stages
    under ``stages``. Both forms are accepted (``server: {stages: ..., actions: ...}`` too)."""
    out: dict[str, Any] = {}
    for kind, spec in overrides.items():
        if not isinstance(spec, dict):
            raise ProfileError(f"stages.{kind}: a mapping of state -> {{delay, jitter, next, fail}}")
        if set(spec) & set(_SECTIONS):
            out[kind] = spec
        else:
            out[kind] = {"stages": spec}
    return out


def load_lifecycles(overrides: dict[str, Any] | None = None) -> dict[str, KindLifecycle]:
    """The built-in stages, with a profile's ``stages:`` overrides merged in (cached: the result is
    immutable, and a twin creates many clouds from few profiles)."""
    key = json.dumps(overrides or {}, sort_keys=True, default=str)
    found = _BUILT.get(key)
    if found is None:
        doc = yaml.load(STAGES_FILE.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if overrides:
            doc = deep_merge(doc, _as_stage_doc(overrides))
        found = _BUILT[key] = build_lifecycles(doc)
    return found


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    obj: Any = field(compare=False)
    generation: int = field(compare=False)
    target: str = field(compare=False)
    message: str = field(compare=False)
    life: KindLifecycle = field(compare=False)
    placement: Placement = field(compare=False)
    on_enter: OnEnter = field(compare=False)


class Scheduler:
    """Applies timed transitions for every object of every cloud."""

    def __init__(self, *, seed: int = 0, time_scale: float = 1.0,
                 hook: TransitionHook | None = None) -> None:
        self.seed = seed
        self.time_scale = time_scale
        self.hook = hook
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._background = Background("cloudtwin-stages", self._run)
        self.applied = 0

    def rng(self, obj: Tracked) -> random.Random:
        return random.Random(f"{self.seed}/{obj.id}/{obj.transitions}")

    def enter(self, obj: Any, life: KindLifecycle, state: str, placement: Placement,
              on_enter: OnEnter) -> None:
        """Put ``obj`` in ``state`` now and schedule the stage that leaves it, if any."""
        obj.state = state
        obj.transitions += 1
        obj.due_at = None
        obj.due_state = None
        stage = life.stages.get(state)
        if stage is None:
            return
        rng = self.rng(obj)
        verdict = self.hook(placement, life.kind, obj, state) if self.hook else None
        if verdict is not None and verdict[0] == "stuck":
            return
        delay = max(0.0, stage.delay + (rng.uniform(-stage.jitter, stage.jitter) if stage.jitter else 0.0))
        failed = rng.random() < stage.fail_probability
        message = stage.fail_message
        if verdict is not None and verdict[0] == "fail":
            failed, message = True, verdict[2] or stage.fail_message
        if failed:
            target = stage.fail_to
        else:
            states, weights = zip(*stage.next)
            target = states[0] if len(states) == 1 else rng.choices(states, weights)[0]
        self.schedule(obj, life, placement, target, delay * self.time_scale, message if failed else "",
                      on_enter)

    def schedule(self, obj: Any, life: KindLifecycle, placement: Placement, target: str, delay: float,
                 message: str, on_enter: OnEnter) -> None:
        """Move ``obj`` to ``target`` after ``delay`` seconds (also used by snapshot restore)."""
        at = time.monotonic() + delay
        obj.due_at = at
        obj.due_state = target
        heapq.heappush(self._heap, _Due(at, next(self._seq), obj, obj.transitions, target, message, life,
                                        placement, on_enter))
        if self._heap[0].at == at:
            self._wake.set()

    def cancel(self, obj: Any) -> None:
        """Forget ``obj``'s pending transition (it was deleted or moved by an API call)."""
        obj.transitions += 1
        obj.due_at = None
        obj.due_state = None

    def pending(self) -> int:
        return len(self._heap)

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    def run_due(self, now: float | None = None) -> int:
        """Apply every transition due by ``now``; returns how many were applied."""
        now = time.monotonic() if now is None else now
        n = 0
        while self._heap and self._heap[0].at <= now:
            due = heapq.heappop(self._heap)
            obj = due.obj
            if obj.transitions != due.generation or getattr(obj, "removed", False):
                continue  # superseded by an API call, or the object is gone
            obj.due_at = None
            if due.target != GONE:
                self.enter(obj, due.life, due.target, due.placement, due.on_enter)
            due.on_enter(obj, due.target, due.message)
            n += 1
        self.applied += n
        return n

    async def _run(self) -> None:
        while True:
            self.run_due()
            timeout = (self._heap[0].at - time.monotonic()) if self._heap else None
            self._wake.clear()
            if timeout is not None and timeout <= 0:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
